/**
 * User login through the company's OpenID Connect provider (`auth.embedded.upstreamIdp`): the embedded
 * authorization server is an OIDC relying party of that provider for its login step, so teams keep no
 * local passwords. Authorization code flow with PKCE, state and nonce:
 *
 * - OpenID Connect Core 1.0 §3.1 (https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth),
 *   with PKCE S256 (RFC 7636) and `state` bound to the browser (RFC 9700 §4.7.1);
 * - RFC 9207 `iss` in the authorization response, checked against the issuer the request went to
 *   (mix-up defence, THREATS T06/T09);
 * - the ID token checked as §3.1.3.7 says: signature against the provider's JWKS, `iss`, `aud`, `azp`,
 *   `exp`, `iat`, `nonce`;
 * - every outbound request (discovery, JWKS, token endpoint) through the SSRF-guarded client
 *   (`src/secrets/outbound.ts`, THREATS T07): https only, plain http only to loopback with the
 *   development flag `allowInsecureMetadataUrls`.
 *
 * This module speaks the protocol; `interactions.ts` serves the pages and turns the identity into a
 * login, `index.ts` routes `/oauth/idp/callback` here. Pending logins live in memory (bounded, ten
 * minutes): a restart voids the ones in flight.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  createLocalJWKSet,
  type JSONWebKeySet,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import type { OutboundClient } from '../../secrets/outbound.ts';

/** Where the provider sends the browser back (register `<gateway origin>/oauth/idp/callback` there). */
export const IDP_CALLBACK_PATH = '/oauth/idp/callback';

/** What `auth.embedded.upstreamIdp` holds (the secret resolved). */
export interface UpstreamIdpSettings {
  issuer: string;
  name?: string | undefined;
  clientId: string;
  clientSecret: string | undefined;
  scopes: readonly string[];
  claims: { username: string; tenant?: string | undefined; groups?: string | undefined };
}

/** Why a login through the provider failed (audited as `authn.failure`). */
export type IdpFailureReason =
  | 'bad_state'
  | 'wrong_browser'
  | 'iss_mismatch'
  | 'iss_missing'
  | 'idp_error'
  | 'code_exchange_failed'
  | 'id_token_invalid'
  | 'claims_invalid'
  | 'account_conflict'
  | 'idp_unavailable';

/** The user the provider vouched for, mapped to Gatehouse's terms. */
export interface IdpIdentity {
  username: string;
  issuer: string;
  subject: string;
  tenant?: string | undefined;
  groups?: string[] | undefined;
}

/** The outcome of a callback: the identity, or why not (with the interaction to go back to, when known). */
export type IdpResult =
  | { ok: true; uid: string; clientId: string; identity: IdpIdentity }
  | {
      ok: false;
      reason: IdpFailureReason;
      uid?: string | undefined;
      clientId?: string | undefined;
      /** For logs and audit: which check failed (never a token or a code). */
      detail?: string | undefined;
    };

interface Metadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  issParameter: boolean;
  algorithms: string[];
  basicAuth: boolean;
}

interface Pending {
  uid: string;
  clientId: string;
  nonce: string;
  verifier: string;
  /** SHA-256 of the browser-binding cookie. */
  browser: Buffer;
  expiresAt: number;
}

/** Asymmetric algorithms accepted for ID tokens: never `none`, never HS* (the client secret is not a key here). */
const ID_TOKEN_ALGORITHMS = [
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
];
const PENDING_TTL_MS = 10 * 60_000;
const MAX_PENDING = 10_000;
const METADATA_TTL_MS = 60 * 60_000;
const JWKS_COOLDOWN_MS = 30_000;
const MAX_GROUPS = 256;
const MAX_NAME = 256;

const rnd = (n = 32): string => randomBytes(n).toString('base64url');
const sha256 = (v: string): Buffer => createHash('sha256').update(v).digest();
const s256 = (v: string): string => createHash('sha256').update(v).digest('base64url');

/** Own-property read of a claim (claim names come from the config, values from the provider). */
function claim(payload: JWTPayload, name: string): unknown {
  return Object.hasOwn(payload, name) ? payload[name] : undefined;
}

/** A printable name: no control characters or white space at all, bounded length. */
function validName(v: unknown, max = MAX_NAME): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max && !/[\s\p{Cc}]/u.test(v);
}

/** The relying-party side of one upstream OpenID Connect provider. */
export class UpstreamIdp {
  readonly #s: UpstreamIdpSettings;
  readonly #http: OutboundClient;
  readonly #redirectUri: string;
  readonly #allowHttp: boolean;
  readonly #now: () => number;
  readonly #pending = new Map<string, Pending>();
  #metadata: { value: Metadata; until: number } | undefined;
  #jwks: { set: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | undefined;

  constructor(o: {
    settings: UpstreamIdpSettings;
    http: OutboundClient;
    /** `<issuer of the gateway>/oauth/idp/callback`. */
    redirectUri: string;
    /** Development (loopback only): the provider's endpoints may be plain http. */
    allowHttp: boolean;
    now?: () => number;
  }) {
    this.#s = o.settings;
    this.#http = o.http;
    this.#redirectUri = o.redirectUri;
    this.#allowHttp = o.allowHttp;
    this.#now = o.now ?? Date.now;
  }

  /** Shown on the login page. */
  get name(): string {
    return this.#s.name ?? new URL(this.#s.issuer).host;
  }

  /** The provider's issuer (as configured; ID tokens and `iss` must equal it). */
  get issuer(): string {
    return this.#s.issuer;
  }

  /** Logins started and not yet completed (bounded). */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Starts a login for interaction `uid`: the provider's authorization URL and the value of the
   * browser-binding cookie (only its hash is kept). Rejects when the provider's metadata cannot be read.
   */
  async begin(uid: string, clientId: string): Promise<{ location: string; browser: string }> {
    const md = await this.#meta();
    this.#sweep();
    const state = rnd();
    const browser = rnd();
    const p: Pending = {
      uid,
      clientId,
      nonce: rnd(),
      verifier: rnd(),
      browser: sha256(browser),
      expiresAt: this.#now() + PENDING_TTL_MS,
    };
    this.#pending.set(state, p);
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: this.#s.clientId,
      redirect_uri: this.#redirectUri,
      scope: this.#s.scopes.join(' '),
      state,
      // "nonce: String value used to associate a Client session with an ID Token, and to mitigate
      // replay attacks" (OIDC Core §3.1.2.1).
      nonce: p.nonce,
      code_challenge: s256(p.verifier),
      code_challenge_method: 'S256',
    });
    const sep = md.authorization_endpoint.includes('?') ? '&' : '?';
    return { location: `${md.authorization_endpoint}${sep}${q}`, browser };
  }

  /** Handles the provider's answer at the callback: validates everything, returns the identity or why not. */
  async complete(query: URLSearchParams, browserCookie: string | undefined): Promise<IdpResult> {
    const state = query.get('state') ?? '';
    const p = this.#pending.get(state);
    // Single use: whatever follows, this state is spent (a replayed callback finds nothing).
    this.#pending.delete(state);
    if (!p || p.expiresAt <= this.#now()) return { ok: false, reason: 'bad_state' };
    const back = { uid: p.uid, clientId: p.clientId };
    const cookie = browserCookie ? sha256(browserCookie) : undefined;
    if (!cookie || !timingSafeEqual(cookie, p.browser))
      return { ok: false, reason: 'wrong_browser', ...back };
    let md: Metadata;
    try {
      md = await this.#meta();
    } catch (err) {
      return { ok: false, reason: 'idp_unavailable', detail: (err as Error).message, ...back };
    }
    // RFC 9207 §2.4: "Clients MUST then [...] compare the result to the issuer identifier of the
    // authorization server where the authorization request was sent to. [...] If the value does not
    // match the expected issuer identifier, clients MUST reject the authorization response" and
    // "Clients MUST reject authorization responses without the iss parameter from authorization
    // servers that require the parameter" (authorization_response_iss_parameter_supported).
    const iss = query.get('iss');
    if (iss !== null && iss !== md.issuer) return { ok: false, reason: 'iss_mismatch', ...back };
    if (iss === null && md.issParameter) return { ok: false, reason: 'iss_missing', ...back };
    const error = query.get('error');
    const code = query.get('code');
    if (error !== null || !code) {
      const detail = (error ?? 'no code').replace(/[^a-z_]/g, '').slice(0, 64);
      return { ok: false, reason: 'idp_error', detail, ...back };
    }
    let idToken: string;
    try {
      idToken = await this.#exchange(md, code, p.verifier);
    } catch (err) {
      return { ok: false, reason: 'code_exchange_failed', detail: (err as Error).message, ...back };
    }
    let payload: JWTPayload;
    try {
      payload = await this.#verifyIdToken(md, idToken, p.nonce);
    } catch (err) {
      const detail =
        err instanceof joseErrors.JOSEError ? `${err.code}: ${err.message}` : (err as Error).message;
      return { ok: false, reason: 'id_token_invalid', detail, ...back };
    }
    const mapped = this.#map(md, payload);
    if (typeof mapped === 'string') return { ok: false, reason: 'claims_invalid', detail: mapped, ...back };
    return { ok: true, ...back, identity: mapped };
  }

  #sweep(): void {
    const now = this.#now();
    for (const [k, p] of this.#pending) if (p.expiresAt <= now) this.#pending.delete(k);
    // Still full: the oldest logins in flight give way (Map iteration follows insertion order).
    while (this.#pending.size >= MAX_PENDING) {
      const oldest = this.#pending.keys().next();
      if (oldest.done) break;
      this.#pending.delete(oldest.value);
    }
  }

  #checkUrl(v: unknown, what: string): string {
    if (typeof v !== 'string') throw new Error(`provider metadata has no ${what}`);
    const u = new URL(v);
    // Only web URLs reach a browser or a socket (THREATS T08): no javascript:, file: or custom schemes.
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && this.#allowHttp))
      throw new Error(`provider ${what} must be https`);
    return v;
  }

  async #meta(): Promise<Metadata> {
    const now = this.#now();
    if (this.#metadata && this.#metadata.until > now) return this.#metadata.value;
    // OpenID Connect Discovery 1.0 §4: "[...] any terminating / MUST be removed before appending
    // /.well-known/openid-configuration".
    const url = `${this.#s.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const raw = await this.#http.getJson(url);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new Error('provider metadata is not an object');
    const get = (k: string): unknown =>
      Object.hasOwn(raw, k) ? (raw as Record<string, unknown>)[k] : undefined;
    // Discovery §4.3: "The issuer value returned MUST be identical to the Issuer URL that was used as
    // the prefix to /.well-known/openid-configuration to retrieve the configuration information."
    if (get('issuer') !== this.#s.issuer)
      throw new Error('provider metadata issuer does not match the configured issuer');
    const algs = get('id_token_signing_alg_values_supported');
    const offered = Array.isArray(algs) ? algs.filter((a): a is string => typeof a === 'string') : ['RS256'];
    const methods = get('token_endpoint_auth_methods_supported');
    const value: Metadata = {
      issuer: this.#s.issuer,
      authorization_endpoint: this.#checkUrl(get('authorization_endpoint'), 'authorization_endpoint'),
      token_endpoint: this.#checkUrl(get('token_endpoint'), 'token_endpoint'),
      jwks_uri: this.#checkUrl(get('jwks_uri'), 'jwks_uri'),
      issParameter: get('authorization_response_iss_parameter_supported') === true,
      algorithms: ID_TOKEN_ALGORITHMS.filter((a) => offered.includes(a)),
      // RFC 8414 §2: "If omitted, the default is client_secret_basic".
      basicAuth:
        !Array.isArray(methods) ||
        methods.includes('client_secret_basic') ||
        !methods.includes('client_secret_post'),
    };
    if (value.algorithms.length === 0) throw new Error('provider offers no asymmetric ID token algorithm');
    this.#metadata = { value, until: now + METADATA_TTL_MS };
    return value;
  }

  async #keys(md: Metadata, refresh: boolean): Promise<ReturnType<typeof createLocalJWKSet>> {
    const now = this.#now();
    if (this.#jwks && !(refresh && now - this.#jwks.fetchedAt >= JWKS_COOLDOWN_MS)) return this.#jwks.set;
    const jwks = await this.#http.getJson(md.jwks_uri);
    const set = createLocalJWKSet(jwks as JSONWebKeySet);
    this.#jwks = { set, fetchedAt: now };
    return set;
  }

  /** The token request (OIDC Core §3.1.3.1); resolves to the ID token. */
  async #exchange(md: Metadata, code: string, verifier: string): Promise<string> {
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.#redirectUri,
      code_verifier: verifier,
    });
    const headers: Record<string, string> = { accept: 'application/json' };
    const secret = this.#s.clientSecret;
    if (secret !== undefined && md.basicAuth) {
      // RFC 6749 §2.3.1: client id and secret are form-urlencoded before the Basic encoding.
      const id = encodeURIComponent(this.#s.clientId);
      headers['authorization'] =
        `Basic ${Buffer.from(`${id}:${encodeURIComponent(secret)}`).toString('base64')}`;
    } else {
      form.set('client_id', this.#s.clientId);
      if (secret !== undefined) form.set('client_secret', secret);
    }
    const res = await this.#http.postForm(md.token_endpoint, form, { headers });
    let body: unknown;
    try {
      body = JSON.parse(res.body.toString('utf8'));
    } catch {
      throw new Error(`token endpoint status ${res.status}, not JSON`);
    }
    const rec = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    if (res.status !== 200) {
      const error = typeof rec['error'] === 'string' ? rec['error'].replace(/[^a-z_]/g, '').slice(0, 64) : '';
      throw new Error(`token endpoint status ${res.status}${error ? ` ${error}` : ''}`);
    }
    // OIDC Core §3.1.3.3: the successful token response carries "id_token".
    const idToken = rec['id_token'];
    if (typeof idToken !== 'string') throw new Error('token response has no id_token');
    return idToken;
  }

  /** ID token validation, OIDC Core §3.1.3.7. */
  async #verifyIdToken(md: Metadata, idToken: string, nonce: string): Promise<JWTPayload> {
    const options = {
      // (2) "The Issuer Identifier for the OpenID Provider [...] MUST exactly match the value of the iss (issuer) Claim."
      issuer: md.issuer,
      // (3) "The Client MUST validate that the aud (audience) Claim contains its client_id value".
      audience: this.#s.clientId,
      // (6)-(8) the alg of the provider's keys; never none, never HMAC.
      algorithms: md.algorithms,
      // (9) "The current time MUST be before the time represented by the exp Claim"; (10) iat.
      requiredClaims: ['sub', 'exp', 'iat'],
      clockTolerance: 30,
    };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, await this.#keys(md, false), options));
    } catch (err) {
      // The provider may have rotated its keys: refetch once (rate limited), then give up.
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
      ({ payload } = await jwtVerify(idToken, await this.#keys(md, true), options));
    }
    const aud = payload.aud;
    const azp = claim(payload, 'azp');
    // (4) "If the ID Token contains multiple audiences, the Client SHOULD verify that an azp Claim is present."
    if (Array.isArray(aud) && aud.length > 1 && azp === undefined)
      throw new Error('several audiences and no azp');
    // (5) "If an azp (authorized party) Claim is present, the Client SHOULD verify that its client_id is the Claim Value."
    if (azp !== undefined && azp !== this.#s.clientId) throw new Error('azp is another client');
    // (11) "The value of the nonce Claim MUST be checked to verify that it is the same value as the one
    // that was sent in the Authentication Request."
    const got = claim(payload, 'nonce');
    if (typeof got !== 'string' || !timingSafeEqual(sha256(got), sha256(nonce)))
      throw new Error('nonce mismatch');
    return payload;
  }

  /** Claims → Gatehouse user; a string says what is wrong. */
  #map(md: Metadata, payload: JWTPayload): IdpIdentity | string {
    const names = this.#s.claims;
    const subject = claim(payload, 'sub');
    if (!validName(subject)) return 'sub is missing or not a plain string';
    const username = claim(payload, names.username);
    if (!validName(username, 128)) return `${names.username} is missing or not a plain name`;
    const identity: IdpIdentity = { username, issuer: md.issuer, subject };
    if (names.tenant !== undefined) {
      // Fail closed: with a tenant mapping configured, a user without a tenant could escape tenant rules.
      const tenant = claim(payload, names.tenant);
      if (!validName(tenant, 128)) return `${names.tenant} is missing or not a plain name`;
      identity.tenant = tenant;
    }
    if (names.groups !== undefined) {
      const raw = claim(payload, names.groups);
      const list = raw === undefined ? [] : typeof raw === 'string' ? [raw] : raw;
      if (!Array.isArray(list) || list.length > MAX_GROUPS)
        return `${names.groups} is not a list of at most ${MAX_GROUPS} names`;
      const groups = list.filter((g): g is string => validName(g));
      if (groups.length !== list.length) return `${names.groups} holds something that is not a plain name`;
      identity.groups = [...new Set(groups)];
    }
    return identity;
  }
}
