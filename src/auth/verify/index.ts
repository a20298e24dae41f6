/**
 * Access token verification for the gateway as an OAuth 2.1 resource server
 * (MCP authorization 2025-11-25): JWT access tokens (RFC 9068) against the
 * issuer's JWKS, opaque tokens via introspection (RFC 7662), audience binding to
 * our resource URL (RFC 8707), delegation chains (RFC 8693).
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#token-validation
 *
 * The verified-token cache is the hot path: a token seen before costs one
 * SHA-256 and one Map lookup instead of a signature verification. Entries never
 * outlive the token's `exp`; `isRevoked` and expiry are re-checked on every use;
 * failures are never cached.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { type Principal, TokenError, type TokenVerifier } from '../principal.ts';
import { tokenKey, VerifiedCache } from './cache.ts';
import { toPrincipal } from './claims.ts';
import { discoverIssuer } from './discovery.ts';
import { HTTP_TIMEOUT_MS, secureUrl } from './http.ts';
import { basicAuth, type IntrospectionOptions, introspect } from './introspect.ts';

export { discoverIssuer, type IssuerMetadata, metadataUrls } from './discovery.ts';
export type { IntrospectionOptions } from './introspect.ts';

/** Options of {@link createTokenVerifier}. */
export interface VerifierOptions {
  /** Expected `iss`, exact match. */
  issuer: string;
  /** Expected `aud`: our MCP resource URL (RFC 8707); `aud` may be a string or an array containing it. */
  audience: string;
  /** Remote JWKS; if absent and no `localJwks`, discovered from the issuer metadata. */
  jwksUri?: string;
  /** In-process key set (embedded authorization server): no HTTP. Called per verification; return the same object while keys are unchanged. */
  localJwks?: () => JSONWebKeySet;
  /** Allowed JWS algorithms; default {@link DEFAULT_ALGORITHMS}. Never `none`, never a symmetric (HS*) algorithm. */
  algorithms?: string[];
  /** Clock skew tolerated on `exp`, `nbf`, `iat`, seconds (default 30). */
  clockToleranceSec?: number;
  /** Introspection for opaque tokens (RFC 7662). */
  introspection?: IntrospectionOptions;
  /** Claim holding the tenant (default `tenant`). */
  tenantClaim?: string;
  /** Claim holding the user's groups (an array of strings); none read when absent. */
  groupsClaim?: string;
  /** Verified-token cache entries (default 10 000; 0 disables the cache). */
  cacheSize?: number;
  /**
   * Re-checked on every use, also for cached entries (the revocation list, src/auth/revocation.ts:
   * a few Map lookups, no I/O). Throwing fails closed (`unavailable`).
   */
  isRevoked?: (p: Principal) => boolean;
  /**
   * Longest lifetime accepted, seconds: a token whose lifetime (`exp` − `iat`, or `exp` − now when it
   * has no `iat`) exceeds this plus the clock skew is refused. The revocation list keeps an entry by
   * agent or user this long, so no token it covers can outlive it. Default: no bound.
   */
  maxTokenLifetimeSec?: number;
  /**
   * Minimum delay between two JWKS refetches triggered by an unknown `kid`,
   * seconds (default 30): the rate limit on key-rotation refreshes.
   */
  jwksCooldownSec?: number;
  /** Injectable for tests (default global fetch). */
  fetch?: typeof fetch;
}

/** Asymmetric JWS algorithms we can verify (RFC 7518 §3, RFC 8037, RFC 9864). */
const ASYMMETRIC = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

/** Algorithms allowed when {@link VerifierOptions.algorithms} is not set. */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze(['ES256', 'EdDSA', 'RS256', 'PS256']);

/** Tokens longer than this are refused before any work (bytes of the compact form). */
const MAX_TOKEN_LENGTH = 16 * 1024;
/**
 * Upper bound on how long a verified JWT stays cached even when `exp` is later,
 * so a signing key withdrawn at the issuer stops being honoured within about
 * this plus the JWKS cache age.
 */
const MAX_ENTRY_MS = 10 * 60_000;
/** After a failed discovery, verifications fail fast for this long before retrying. */
const DISCOVERY_RETRY_MS = 5_000;

/** Three base64url segments; the signature may be empty so that `alg: none` is refused by name. */
const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** RFC 6750 §2.1 (https://www.rfc-editor.org/rfc/rfc6750#section-2.1) `b64token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Resolves a verification key; absent when the issuer publishes no JWKS (introspection only). */
type KeySource = JWTVerifyGetKey | undefined;

function nonNegative(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a non-negative number`);
  return v;
}

/** Validates the algorithm allow-list: asymmetric algorithms only. */
function allowedAlgorithms(algs: readonly string[] | undefined): string[] {
  const list = [...(algs ?? DEFAULT_ALGORITHMS)];
  if (list.length === 0) throw new TypeError('algorithms must not be empty');
  for (const alg of list) {
    // RFC 8725 §3.1 (https://www.rfc-editor.org/rfc/rfc8725#section-3.1):
    // "Libraries MUST enable the caller to specify a supported set of algorithms
    // and MUST NOT use any other algorithms when performing cryptographic
    // operations." A public key is not a secret, so HS* can never be right here.
    if (!ASYMMETRIC.has(alg)) throw new TypeError(`algorithm not allowed: ${alg}`);
  }
  return list;
}

/** Maps a jose (or key-resolution) error to a TokenError with a fixed, token-free reason. */
function toTokenError(e: unknown): TokenError {
  if (e instanceof TokenError) return e;
  if (e instanceof errors.JWTExpired) return new TokenError('token expired');
  if (e instanceof errors.JWTClaimValidationFailed) {
    const missing = e.reason === 'missing';
    const failed = e.reason === 'check_failed';
    switch (e.claim) {
      case 'aud':
        return new TokenError(missing ? 'missing aud claim' : 'audience mismatch');
      case 'iss':
        return new TokenError(missing ? 'missing iss claim' : 'issuer mismatch');
      case 'exp':
        return new TokenError(missing ? 'missing exp claim' : failed ? 'token expired' : 'invalid exp claim');
      case 'sub':
        return new TokenError('missing sub claim');
      case 'nbf':
        return new TokenError(failed ? 'token not yet valid' : 'invalid nbf claim');
      case 'iat':
        return new TokenError('invalid iat claim');
      default:
        return new TokenError('invalid claims');
    }
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return new TokenError('algorithm not allowed');
  if (e instanceof errors.JWSSignatureVerificationFailed) return new TokenError('invalid signature');
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid)
    return new TokenError('malformed token');
  if (e instanceof errors.JOSENotSupported) return new TokenError('unsupported token');
  return new TokenError('invalid token');
}

/**
 * Wraps a JWKS resolver so that "no such key" stays a token error while any
 * failure to obtain keys becomes `unavailable` (fail closed, but say so).
 */
function guardKeys(resolve: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await resolve(header, token);
    } catch (e) {
      if (e instanceof errors.JWKSNoMatchingKey) throw new TokenError('unknown signing key');
      if (e instanceof errors.JWKSMultipleMatchingKeys) throw new TokenError('ambiguous signing key');
      if (e instanceof errors.JOSENotSupported) throw new TokenError('algorithm not allowed');
      throw new TokenError('signing keys unavailable', true);
    }
  };
}

/**
 * Accepted `typ` header values.
 * RFC 9068 §4 (https://www.rfc-editor.org/rfc/rfc9068#section-4): "Resource
 * servers receiving a JWT access token MUST validate that the "typ" header
 * value is "at+jwt" or "application/at+jwt" and reject tokens carrying any
 * other value." Deliberate deviation: many issuers (Entra ID, Okta, Auth0,
 * Keycloak) send `JWT` or no `typ`, so those are accepted too. The `aud` check
 * still refuses ID tokens (their audience is the client, not this resource).
 */
function typAccepted(typ: unknown): boolean {
  if (typ === undefined) return true;
  if (typeof typ !== 'string') return false;
  const t = typ.toLowerCase().replace(/^application\//, '');
  return t === 'at+jwt' || t === 'jwt';
}

/**
 * Creates the verifier. Throws a TypeError for invalid options (symmetric or
 * unknown algorithms, non-https endpoints other than loopback, bad numbers).
 */
export function createTokenVerifier(opts: VerifierOptions): TokenVerifier {
  if (typeof opts.issuer !== 'string' || opts.issuer === '') throw new TypeError('issuer is required');
  if (typeof opts.audience !== 'string' || opts.audience === '') throw new TypeError('audience is required');
  const issuer = opts.issuer;
  const audience = opts.audience;
  const algorithms = allowedAlgorithms(opts.algorithms);
  const allowed = new Set(algorithms);
  const tolerance = nonNegative(opts.clockToleranceSec, 30, 'clockToleranceSec');
  const cooldownMs = nonNegative(opts.jwksCooldownSec, 30, 'jwksCooldownSec') * 1000;
  const tenantClaim = opts.tenantClaim ?? 'tenant';
  const groupsClaim = opts.groupsClaim;
  const fetchImpl = opts.fetch ?? fetch;
  const cache = new VerifiedCache(Math.floor(nonNegative(opts.cacheSize, 10_000, 'cacheSize')));
  const isRevoked = opts.isRevoked;
  const maxLifetime =
    opts.maxTokenLifetimeSec === undefined
      ? Number.POSITIVE_INFINITY
      : nonNegative(opts.maxTokenLifetimeSec, 0, 'maxTokenLifetimeSec');
  /**
   * Refuses a token that could outlive the revocation entries that cover it: its lifetime is counted
   * from `iat`, or from now when it has none (then the bound is the issuer's promise, see docs/auth.md).
   */
  const checkLifetime = (exp: number, iat: number | undefined, nowSec: number): void => {
    if (exp - (iat ?? nowSec) > maxLifetime + tolerance) throw new TokenError('token lifetime too long');
  };
  const intro = opts.introspection;
  let introAuth = '';
  let introTtlMs = 0;
  if (intro) {
    secureUrl(intro.endpoint, 'introspection endpoint');
    if (!intro.clientId) throw new TypeError('introspection clientId is required');
    introAuth = basicAuth(intro.clientId, intro.clientSecret);
    introTtlMs = nonNegative(intro.cacheTtlSec, 30, 'introspection cacheTtlSec') * 1000;
  }

  const remote = (uri: string): JWTVerifyGetKey =>
    guardKeys(
      createRemoteJWKSet(secureUrl(uri, 'jwks_uri'), {
        timeoutDuration: HTTP_TIMEOUT_MS,
        cooldownDuration: cooldownMs,
        [customFetch]: fetchImpl,
      }),
    );

  // Key source: in-process set, configured JWKS URL, or discovered lazily.
  let keySource: KeySource;
  let keysReady = false;
  if (opts.localJwks) {
    const read = opts.localJwks;
    let lastSet: JSONWebKeySet | undefined;
    let lastResolver: JWTVerifyGetKey | undefined;
    keySource = guardKeys((header, token) => {
      const set = read();
      if (set !== lastSet || lastResolver === undefined) {
        lastResolver = createLocalJWKSet(set);
        lastSet = set;
      }
      return lastResolver(header, token);
    });
    keysReady = true;
  } else if (opts.jwksUri) {
    keySource = remote(opts.jwksUri);
    keysReady = true;
  } else {
    secureUrl(issuer, 'issuer');
  }
  let discovering: Promise<KeySource> | undefined;
  let discoveryFailedAt = Number.NEGATIVE_INFINITY;

  function discoverKeys(): Promise<KeySource> {
    if (discovering) return discovering;
    if (Date.now() - discoveryFailedAt < DISCOVERY_RETRY_MS) {
      return Promise.reject(new TokenError('signing keys unavailable', true));
    }
    discovering = (async (): Promise<KeySource> => {
      try {
        const md = await discoverIssuer(issuer, fetchImpl);
        // A non-https jwks_uri in the metadata is refused here (secureUrl throws).
        keySource = md.jwks_uri ? remote(md.jwks_uri) : undefined;
        keysReady = true;
        return keySource;
      } catch {
        discoveryFailedAt = Date.now();
        discovering = undefined;
        throw new TokenError('signing keys unavailable', true);
      }
    })();
    return discovering;
  }

  const cacheUntil = (until: number, now: number): number => Math.min(until, now + MAX_ENTRY_MS);

  async function verifyOpaque(token: string, key: string): Promise<Principal> {
    if (!intro) throw new TokenError('opaque tokens not accepted');
    const claims = await introspect(token, intro, introAuth, fetchImpl);
    const now = Date.now();
    const nowSec = now / 1000;
    // MCP 2025-11-25 (token validation): servers "MUST validate that access
    // tokens were issued specifically for them as the intended audience"; an
    // introspection answer without `aud` cannot show that, so fail closed.
    const aud = claims['aud'];
    if (aud === undefined) throw new TokenError('missing aud claim');
    if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
      throw new TokenError('audience mismatch');
    }
    if (claims['iss'] !== undefined && claims['iss'] !== issuer) throw new TokenError('issuer mismatch');
    const exp = claims['exp'];
    if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp))) {
      throw new TokenError('invalid exp claim');
    }
    if (exp !== undefined && exp <= nowSec - tolerance) throw new TokenError('token expired');
    const nbf = claims['nbf'];
    if (nbf !== undefined && (typeof nbf !== 'number' || nbf > nowSec + tolerance)) {
      throw new TokenError('token not yet valid');
    }
    const iat = claims['iat'];
    if (iat !== undefined && (typeof iat !== 'number' || iat > nowSec + tolerance)) {
      throw new TokenError('invalid iat claim');
    }
    if (exp !== undefined) checkLifetime(exp, iat, nowSec);
    // RFC 7662 §4 (https://www.rfc-editor.org/rfc/rfc7662#section-4): a cached
    // response "MUST NOT" be used past the token's expiration; `exp` is optional,
    // so without it the principal is valid only as long as the cache TTL.
    const until = exp === undefined ? now + introTtlMs : Math.min(now + introTtlMs, exp * 1000);
    const expiresAt = exp ?? Math.floor((now + introTtlMs) / 1000);
    const principal = toPrincipal(claims, {
      issuer,
      tenantClaim,
      groupsClaim,
      authMethod: 'introspection',
      expiresAt,
    });
    cache.set(key, principal, until, now);
    return principal;
  }

  async function verifyJwt(token: string, key: string): Promise<Principal> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new TokenError('malformed token');
    }
    // Refuse disallowed algorithms (`none`, HS*) before any key lookup or crypto.
    if (typeof header.alg !== 'string' || !allowed.has(header.alg))
      throw new TokenError('algorithm not allowed');
    if (!typAccepted(header.typ)) throw new TokenError('unexpected token type');
    const keys = keysReady ? keySource : await discoverKeys();
    if (keys === undefined) {
      // The issuer publishes no JWKS: its JWT-shaped tokens can only be introspected.
      if (intro) return verifyOpaque(token, key);
      throw new TokenError('signing keys unavailable', true);
    }
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      // RFC 9068 §4 (https://www.rfc-editor.org/rfc/rfc9068#section-4): "The
      // resource server MUST validate the signature of all incoming JWT access
      // tokens [...] using the algorithm specified in the JWT "alg" Header
      // Parameter" and "MUST reject the JWT if it does not contain the "exp"
      // claim" (via RFC 7519 §4.1.4 and §2.2 of RFC 9068); "iss" and "aud" MUST match.
      ({ payload } = await jwtVerify(token, keys, {
        issuer,
        audience,
        algorithms,
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (e) {
      throw toTokenError(e);
    }
    const now = Date.now();
    if (payload.iat !== undefined && payload.iat > now / 1000 + tolerance) {
      throw new TokenError('token issued in the future');
    }
    const exp = payload.exp;
    if (exp === undefined) throw new TokenError('missing exp claim');
    checkLifetime(exp, payload.iat, now / 1000);
    const principal = toPrincipal(payload, {
      issuer,
      tenantClaim,
      groupsClaim,
      authMethod: 'jwt',
      expiresAt: exp,
    });
    cache.set(key, principal, cacheUntil(exp * 1000, now), now);
    return principal;
  }

  function verifyFresh(token: string, key: string): Promise<Principal> {
    if (JWS_SHAPE.test(token)) return verifyJwt(token, key);
    if (!B64TOKEN.test(token)) return Promise.reject(new TokenError('malformed token'));
    return verifyOpaque(token, key);
  }

  /** Concurrent first sights of one token share one verification. */
  const inflight = new Map<string, Promise<Principal>>();

  /** Throws unless the principal may still be used (checked on every request, cache hits included). */
  function checkRevoked(principal: Principal): void {
    if (!isRevoked) return;
    let revoked: boolean;
    try {
      revoked = isRevoked(principal);
    } catch {
      throw new TokenError('revocation check failed', true);
    }
    if (revoked) throw new TokenError('token revoked');
  }

  return {
    async verify(token: string): Promise<Principal> {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
        throw new TokenError('malformed token');
      }
      const key = tokenKey(token);
      let principal = cache.get(key, Date.now());
      if (principal === undefined) {
        let pending = inflight.get(key);
        if (pending === undefined) {
          pending = verifyFresh(token, key);
          inflight.set(key, pending);
          const done = (): void => {
            inflight.delete(key);
          };
          pending.then(done, done);
        }
        principal = await pending;
      }
      checkRevoked(principal);
      return principal;
    },
    cached(token: string): Principal | undefined {
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH)
        return undefined;
      const principal = cache.get(tokenKey(token), Date.now());
      if (principal !== undefined) checkRevoked(principal);
      return principal;
    },
    async close(): Promise<void> {
      cache.clear();
      inflight.clear();
    },
  };
}
