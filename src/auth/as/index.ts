/**
 * The embedded OAuth 2.1 authorization server (auth.mode: embedded), built on
 * oidc-provider, per the MCP authorization specification:
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 *
 * It owns `/.well-known/oauth-authorization-server` (RFC 8414),
 * `/.well-known/openid-configuration` and everything under `/oauth/`. The
 * issuer is the gateway origin; access tokens are RFC 9068 JWTs whose audience
 * is the MCP resource. See docs/auth-server.md.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JWK } from 'jose';
import Provider, {
  type Configuration,
  errors,
  type JWKS,
  type KoaContextWithOIDC,
  type ResourceServer,
} from 'oidc-provider';
import als from 'oidc-provider/lib/helpers/als.js';
import type { Logger } from 'pino';
import type { EmbeddedAuthConfig } from '../../config/schema.ts';
import type { TaskGrantDeps } from '../../grants/task.ts';
import { OutboundClient } from '../../secrets/outbound.ts';
import type { Storage } from '../../storage/types.ts';
import { GROUPS_CLAIM, TENANT_CLAIM } from '../principal.ts';
import type { RevocationList } from '../revocation.ts';
import { storageAdapter } from './adapter.ts';
import { ClientIdMetadataDocuments } from './cimd.ts';
import { redirectUriProblem, resolveSecret, toClientMetadata } from './clients.ts';
import {
  esc,
  handleIdpCallback,
  handleInteraction,
  INTERACTION_PATH,
  type InteractionDeps,
  type LoginFailure,
  page,
} from './interactions.ts';
import { loadKeys, publicJwk, SIGNING_ALG } from './keys.ts';
import { AttemptLimiter, addressKey } from './login-limit.ts';
import { mintAccessToken } from './mint.ts';
import { dummyHash } from './passwords.ts';
import {
  grantRevoker,
  refuseRevokedSource,
  registerTokenRevocation,
  revokeRemovedClients,
} from './revocation.ts';
import { type SafeFetchOptions, safeFetch, toWebResponse } from './safe-fetch.ts';
import { decideScope, isOurResource } from './scope.ts';
import { registerTokenExchange } from './token-exchange.ts';
import { IDP_CALLBACK_PATH, UpstreamIdp } from './upstream-idp.ts';

export { demoAuthClients, resolveSecret, TOKEN_EXCHANGE } from './clients.ts';
export type { LoginFailure, LoginFailureReason } from './interactions.ts';
export { checkLocalPassword, hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.ts';
export { IDP_CALLBACK_PATH } from './upstream-idp.ts';

export interface EmbeddedAsOptions {
  /** The gateway's public origin, e.g. 'http://127.0.0.1:8080' (no trailing slash). */
  issuer: string;
  /** The MCP resource URL, e.g. 'http://127.0.0.1:8080/mcp': the default and only allowed token audience. */
  resource: string;
  /** Scopes the AS may issue (requiredScopes + toolScopes values), plus 'offline_access'. */
  scopes: string[];
  /**
   * What an authorization request that names no scope gets (RFC 6749 §3.3 "pre-defined default
   * value"): the gateway passes auth.requiredScopes. Empty or absent: such a request is invalid_scope.
   */
  defaultScopes?: string[];
  config: EmbeddedAuthConfig;
  storage: Storage;
  /** Signing and cookie keys live here (`oauth-keys.json`, generated on first start, mode 0600). */
  dataDir: string;
  log: Logger;
  /** True when the gateway is bound to loopback; devAutoConsent and allowInsecureMetadataUrls need it. */
  loopbackOnly: boolean;
  /** Tests only: extra options for the guarded fetch of client metadata documents. */
  fetchOptions?: SafeFetchOptions;
  /** Makes task grants for token exchange with a tool list (the gateway passes its router, policy and grants). */
  taskGrants?: TaskGrantDeps;
  /** Told about every failed login and client authentication (the gateway audits them as `authn.failure`). */
  onLoginFailure?: (f: LoginFailure) => void;
  /** Tests only: the clock of the failed-login throttle. */
  loginClock?: () => number;
  /** The gateway's token revocation list (RFC 7009 writes to it; minting from a revoked credential is refused). */
  revocations?: RevocationList;
}

export interface MintRequest {
  clientId: string;
  /** The user the token acts for; omitted for a client's own token. */
  user?: string;
  /** Space-separated; defaults to every issuable scope but offline_access. */
  scope?: string;
}

export interface EmbeddedAs {
  /** Handles the request if its path belongs to the AS; returns false (untouched) otherwise. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Public signing keys, for the in-process token verifier. */
  jwks(): { keys: JWK[] };
  /** The issuer (as given) and the discovery URL, for the resource server metadata. */
  readonly issuer: string;
  /**
   * Mints an access token directly with the signing key (used by tests and
   * tooling; same claims as the token endpoint). The client must be a
   * pre-registered client; the user, when given, must exist.
   */
  mintAccessToken(req: MintRequest): Promise<string>;
  close(): Promise<void>;
}

/** Paths under which requests belong to the AS. */
export function isAsPath(path: string): boolean {
  return (
    path === '/.well-known/oauth-authorization-server' ||
    path === '/.well-known/openid-configuration' ||
    path.startsWith('/oauth/')
  );
}

const PURGE_INTERVAL_MS = 10 * 60_000;
const OIDC_SCOPES = ['openid', 'offline_access'];

/**
 * Creates the embedded authorization server. Throws (before anything starts)
 * on unsafe development flags outside loopback, no way to log in, an http
 * upstream identity provider without the development flag, bad pre-registered
 * clients or a key file readable by others.
 */
export async function createEmbeddedAs(opts: EmbeddedAsOptions): Promise<EmbeddedAs> {
  const { config, storage, log, resource } = opts;
  const issuer = opts.issuer.replace(/\/+$/, '');
  // The dummy hash unknown users are checked against is made now, so the first failed login costs
  // what every other one does (passwords.ts).
  const warm = dummyHash();
  const login = config.login;
  const upstream = config.upstreamIdp;
  if (!login.localUsers && !upstream) {
    throw new Error(
      'auth.embedded.login.localUsers is false and no auth.embedded.upstreamIdp is configured: nobody could log in',
    );
  }
  if (upstream && new URL(upstream.issuer).protocol !== 'https:' && !config.allowInsecureMetadataUrls) {
    throw new Error(
      'auth.embedded.upstreamIdp.issuer must be https (http only on loopback with allowInsecureMetadataUrls)',
    );
  }
  if (config.devAutoConsent && !opts.loopbackOnly) {
    throw new Error(
      'auth.embedded.devAutoConsent is refused: the gateway is not bound to loopback (it would let any caller skip consent)',
    );
  }
  if (config.allowInsecureMetadataUrls && !opts.loopbackOnly) {
    throw new Error(
      'auth.embedded.allowInsecureMetadataUrls is refused: the gateway is not bound to loopback (it disables SSRF protection)',
    );
  }
  if (config.devAutoConsent) {
    log.warn('auth.embedded.devAutoConsent is ON: the consent page is skipped (development only)');
  }
  if (config.allowInsecureMetadataUrls) {
    log.warn(
      'auth.embedded.allowInsecureMetadataUrls is ON: client metadata and jwks_uri fetches may reach http and private addresses (development only)',
    );
  }

  const keys = await loadKeys(opts.dataDir);
  const signingKey = keys.signing[0] as JWK;
  const publicKeys = keys.signing.map(publicJwk);
  const ttl = config.accessTokenTtlSec;
  const secure = issuer.startsWith('https:');
  const allScopes = [...new Set([...OIDC_SCOPES, ...opts.scopes])];
  const resourceScopes = allScopes.filter((s) => !OIDC_SCOPES.includes(s));
  const insecure = config.allowInsecureMetadataUrls;

  const staticClients = config.clients.map(toClientMetadata);
  const staticIds = new Set(staticClients.map((c) => c.client_id));
  const revocations = opts.revocations;
  await revokeRemovedClients(storage, revocations, opts.taskGrants?.grants, staticIds, log);
  const trustedJwksUris = new Set(config.clients.flatMap((c) => (c.jwksUri ? [c.jwksUri] : [])));
  const cimd = config.clientIdMetadataDocuments
    ? new ClientIdMetadataDocuments({ allowInsecure: insecure, log, fetchOptions: opts.fetchOptions })
    : undefined;
  const extraClaims = new WeakMap<object, Record<string, unknown>>();

  const resourceServerInfo = (): ResourceServer => ({
    scope: resourceScopes.join(' '),
    audience: resource,
    accessTokenTTL: ttl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: SIGNING_ALG } },
  });
  const grantIndexKey = (accountId: string, clientId: string): string =>
    JSON.stringify([accountId, clientId]);

  const configuration: Configuration = {
    adapter: storageAdapter(storage, cimd, grantRevoker(storage, revocations)),
    clients: staticClients,
    // jose's JWK and oidc-provider's JWK describe the same JSON; the key file holds private EC JWKs.
    jwks: { keys: keys.signing as JWKS['keys'] },
    cookies: {
      keys: keys.cookies,
      // `__Host-` requires Secure and Path=/ (RFC 6265bis §4.1.3.2): only the session cookie
      // has Path=/; the interaction cookies are path-scoped, so they get `__Secure-`.
      // On plain-http loopback (development) the prefixes cannot be used at all.
      names: secure
        ? {
            session: '__Host-gatehouse_session',
            interaction: '__Secure-gatehouse_interaction',
            resume: '__Secure-gatehouse_resume',
          }
        : { session: 'gatehouse_session', interaction: 'gatehouse_interaction', resume: 'gatehouse_resume' },
      long: { httpOnly: true, sameSite: 'lax', signed: true, path: '/' },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    scopes: allScopes,
    claims: { openid: ['sub'] },
    responseTypes: ['code'],
    // "PKCE is REQUIRED for all clients" and "Authorization servers MUST support the S256
    // code challenge method" (https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1-13#section-4.1.1);
    // oidc-provider 9 implements S256 only.
    pkce: { required: () => true },
    // "redirect_uri [...] REQUIRED" whenever it is used: exact string matching, no omission.
    allowOmittingSingleRegisteredRedirectUri: false,
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: SIGNING_ALG,
    },
    enabledJWA: {
      idTokenSigningAlgValues: [SIGNING_ALG],
      userinfoSigningAlgValues: [SIGNING_ALG],
      introspectionSigningAlgValues: [SIGNING_ALG],
      authorizationSigningAlgValues: [SIGNING_ALG],
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA', 'Ed25519'],
    },
    extraClientMetadata: {
      properties: ['owner'],
      // Called once per client (static, dynamic or metadata document) with the full metadata.
      validator(_ctx, key, value, metadata) {
        if (key !== 'owner') return;
        if (value !== undefined && typeof value !== 'string') {
          throw new errors.InvalidClientMetadata('owner must be a string');
        }
        // Called before oidc-provider checks the other members' types: a client's `"grant_types": 1`
        // must be a 400 invalid_client_metadata, not a TypeError (500) here.
        const strings = (v: unknown, name: string): string[] => {
          if (v === undefined) return [];
          if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
            throw new errors.InvalidClientMetadata(`${name} must be an array of strings`);
          return v as string[];
        };
        for (const uri of [
          ...strings(metadata.redirect_uris, 'redirect_uris'),
          ...strings(metadata.post_logout_redirect_uris, 'post_logout_redirect_uris'),
        ]) {
          const problem = redirectUriProblem(uri);
          if (problem) throw new errors.InvalidRedirectUri(problem);
        }
        // Dynamically registered and metadata-document clients act only for users: a
        // self-registered client_credentials client would give anyone a token.
        if (!staticIds.has(metadata.client_id)) {
          // RFC 7591 §3.2.1: the server "MAY reject or replace any of the client's requested
          // metadata values". A self-registered client is not capped to the scopes it named at
          // registration: the user's consent decides, so step-up to a wider scope stays possible.
          delete metadata.scope;
          const extra = strings(metadata.grant_types, 'grant_types').filter(
            (g) => g !== 'authorization_code' && g !== 'refresh_token',
          );
          if (extra.length > 0) {
            throw new errors.InvalidClientMetadata(
              `grant_types ${extra.join(', ')} are only available to pre-registered clients`,
            );
          }
        }
      },
    },
    // Not an extra parameter: oidc-provider calls the validators of `extraParams` after its own scope
    // and resource checks and before login, consent and the grant, the one place to give a request
    // without a scope the default scope (src/auth/as/scope.ts).
    extraParams: {
      scope(ctx) {
        const requested = ctx.oidc.params?.['scope'];
        const decision = decideScope(
          typeof requested === 'string' ? requested : undefined,
          { known: new Set(allScopes), defaults: opts.defaultScopes ?? [] },
          ctx.oidc.client?.scope,
        );
        // oidc-provider echoes the refused scope in the error response, as it does for its own checks.
        if ('error' in decision) throw new errors.InvalidScope(decision.error, decision.refused);
        if (ctx.oidc.params) ctx.oidc.params['scope'] = decision.scope;
      },
    },
    findAccount: async (_ctx, sub, token) => {
      refuseRevokedSource(revocations, sub, token);
      const user = await storage.users.get(sub);
      if (!user) return undefined;
      return { accountId: user.username, claims: () => ({ sub: user.username }) };
    },
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const clientId = ctx.oidc.client?.clientId;
      const accountId = ctx.oidc.session?.accountId;
      if (!clientId) return undefined;
      let grantId: string | undefined =
        ctx.oidc.result?.consent?.grantId || ctx.oidc.session?.grantIdFor(clientId);
      // Consent is remembered per (user, client), across login sessions.
      if (!grantId && accountId) {
        const idx = await storage.oauth.find('GrantIndex', grantIndexKey(accountId, clientId));
        if (typeof idx?.['grantId'] === 'string') grantId = idx['grantId'];
      }
      if (!grantId) return undefined;
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (!grant || grant.clientId !== clientId || (accountId && grant.accountId !== accountId))
        return undefined;
      return grant;
    },
    interactions: { url: (_ctx, interaction) => `${INTERACTION_PATH}${interaction.uid}` },
    routes: {
      authorization: '/oauth/authorize',
      token: '/oauth/token',
      registration: '/oauth/register',
      jwks: '/oauth/jwks',
      introspection: '/oauth/introspect',
      revocation: '/oauth/revoke',
      end_session: '/oauth/logout',
      userinfo: '/oauth/userinfo',
      pushed_authorization_request: '/oauth/par',
      code_verification: '/oauth/device',
      device_authorization: '/oauth/device/auth',
      backchannel_authentication: '/oauth/backchannel',
      challenge: '/oauth/challenge',
      credential: '/oauth/credential',
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      dPoP: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      registration: {
        enabled: config.dynamicRegistration,
        initialAccessToken: false,
        issueRegistrationAccessToken: false,
      },
      resourceIndicators: {
        enabled: true,
        // "MCP clients MUST implement Resource Indicators [...] the resource parameter"
        // (https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#resource-parameter-implementation);
        // a client that names none gets our resource as the audience.
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          // RFC 8707 §2: "invalid_target [...] The requested resource is invalid, missing,
          // unknown, or malformed."
          // MCP 2026-07-28: uppercase scheme and host are accepted (scope.ts); the audience is always
          // the canonical resource.
          if (!isOurResource(indicator, resource))
            throw new errors.InvalidTarget(`resource must be ${resource}`);
          return resourceServerInfo();
        },
      },
    },
    // Refresh tokens only when the client asks for offline_access (OIDC Core §11): no long-lived
    // credential unless requested. It also keeps step-up working with MCP SDK 1.x clients, which
    // refresh instead of re-authorizing on 403 insufficient_scope when they hold a refresh token
    // (typescript-sdk issue #2255). Rotation for public clients is the default.
    issueRefreshToken: (_ctx, client, source) =>
      client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access'),
    expiresWithSession: () => false,
    // Token exchange sets its own claims; a user's token carries the tenant and groups the upstream
    // identity provider gave at their last login (local users have none).
    extraTokenClaims: async (_ctx, token) => {
      const extra = extraClaims.get(token);
      if (extra) return extra;
      const accountId = 'accountId' in token ? token.accountId : undefined;
      if (!accountId) return undefined;
      const external = (await storage.users.get(accountId))?.external;
      if (!external) return undefined;
      const claims: Record<string, unknown> = {};
      if (external.tenant !== undefined) claims[TENANT_CLAIM] = external.tenant;
      if (external.groups !== undefined) claims[GROUPS_CLAIM] = [...external.groups];
      return claims;
    },
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      AuthorizationCode: 60,
      RefreshToken: config.refreshTokenTtlSec,
      Grant: config.refreshTokenTtlSec,
      Interaction: 10 * 60,
      Session: 24 * 3600,
      IdToken: 3600,
    },
    clientBasedCORS: () => true,
    fetch: async (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      // jwks_uri of a pre-registered client was written by the operator: it may be internal.
      const trusted = trustedJwksUris.has(url);
      const res = await safeFetch(url, {
        allowHttp: insecure,
        allowPrivateAddresses: insecure || trusted,
        maxBytes: 64 * 1024,
        timeoutMs: 3000,
        headers: { accept: new Headers(init?.headers).get('accept') ?? 'application/json' },
        ...opts.fetchOptions,
      });
      return toWebResponse(res);
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.set('x-frame-options', 'DENY');
      ctx.body = page(
        'Authorization error',
        `<p><code>${esc(out.error)}</code></p>${out.error_description ? `<p>${esc(out.error_description)}</p>` : ''}`,
      );
    },
  };

  const provider = new Provider(issuer, configuration);
  // Behind a TLS-terminating proxy (https issuer), trust X-Forwarded-Proto so cookies get Secure.
  provider.proxy = secure;
  const exchangeDeps = {
    issuer,
    resource,
    jwks: { keys: publicKeys },
    storage,
    resourceServerInfo,
    extraClaims,
    taskGrants: opts.taskGrants,
    revocations,
  };
  registerTokenExchange(provider, exchangeDeps);
  registerTokenRevocation(
    provider,
    { issuer, jwks: { keys: publicKeys }, revocations, grants: opts.taskGrants?.grants },
    '/oauth/revoke',
  );

  // RFC 8414 metadata is the same document; add what oidc-provider does not advertise itself.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/.well-known/openid-configuration' && ctx.status === 200 && ctx.body) {
      const body = ctx.body as Record<string, unknown>;
      body['client_id_metadata_document_supported'] = config.clientIdMetadataDocuments;
      body['code_challenge_methods_supported'] = ['S256'];
      body['authorization_response_iss_parameter_supported'] = true;
      if (!config.dynamicRegistration) delete body['registration_endpoint'];
    }
  });
  // Two failures inside oidc-provider that only a client's JSON can cause are the client's error (400),
  // not a 500 anyone could trigger (with an error-level alarm): nesting deep enough to exhaust the stack,
  // and an object with its own non-function `toString`/`valueOf` where a string is expected (JSON objects
  // are the only way to get one there; registration metadata, say).
  const clientFault = new WeakMap<object, string>();
  provider.use(async (ctx, next) => {
    await next();
    const why = clientFault.get(ctx);
    if (ctx.status === 500 && why !== undefined) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: why };
    }
  });
  provider.on('server_error', (ctx, err) => {
    const why =
      err instanceof RangeError && /call stack/i.test(err.message)
        ? 'the request body is nested too deeply'
        : err instanceof TypeError && err.message === 'Cannot convert object to primitive value'
          ? 'a member that must be a string is an object'
          : undefined;
    if (why !== undefined) {
      clientFault.set(ctx, why);
      log.info({ why }, 'authorization server request refused');
      return;
    }
    log.error({ err }, 'authorization server error');
  });
  // Koa prints unhandled request errors to stderr unless the app has an error listener. A client that
  // stalls its body (limits.bodyTimeoutMs) or goes away is not a server fault: logged at info, in JSON.
  // oidc-provider 9's Provider is the Koa app (its `.app` getter is deprecated); its typings list only
  // its own events, so Koa's 'error' goes through the EventEmitter interface.
  (provider as unknown as EventEmitter).on('error', (err: NodeJS.ErrnoException) => {
    const clientSide =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ECONNRESET' || err.code === 'ECONNABORTED';
    log[clientSide ? 'info' : 'error'](
      { err: clientSide ? err.code : err },
      'authorization server request failed',
    );
  });
  provider.on('grant.error', (_ctx, err) => log.info({ err: err.message }, 'token request refused'));
  provider.on('authorization.error', (_ctx, err) =>
    log.info(
      { err: err.message, reason: (err as { error_description?: string }).error_description },
      'authorization request refused',
    ),
  );
  provider.on('registration_create.success', (_ctx, client) =>
    log.info({ client: client.clientId, name: client.clientName }, 'client registered'),
  );

  const limits = {
    windowMs: login.windowSec * 1000,
    lockoutMs: login.lockoutSec * 1000,
    maxLockoutMs: login.maxLockoutSec * 1000,
    maxKeys: login.maxTrackedKeys,
    ...(opts.loginClock ? { now: opts.loginClock } : {}),
  };
  const onLoginFailure = opts.onLoginFailure ?? (() => {});
  // Client secrets are passwords too (T33): the same throttle, per client id and per address, at every
  // endpoint that checks one (token, introspection, revocation). A locked client's secret is refused
  // as a wrong one (invalid_client), whatever it is.
  const clientLimiter = new AttemptLimiter({
    ...limits,
    rules: {
      client: { maxFailures: login.maxFailuresPerUser },
      address: { maxFailures: login.maxFailuresPerAddress },
    },
  });
  const compareClientSecret = provider.Client.prototype.compareClientSecret;
  provider.Client.prototype.compareClientSecret = async function (
    this: InstanceType<Provider['Client']>,
    actual,
  ) {
    const clientId = this.clientId;
    const address = addressKey(Provider.ctx?.req.socket.remoteAddress);
    const verdict = clientLimiter.attempt([
      { dimension: 'client', value: clientId, resetOnSuccess: true },
      { dimension: 'address', value: address },
    ]);
    const failure = { kind: 'client' as const, client: clientId, username: undefined, address };
    if (!verdict.allowed) {
      onLoginFailure({ ...failure, reason: 'rate_limited', repeat: !verdict.firstRefusal });
      return false;
    }
    const ok = await compareClientSecret.call(this, actual);
    if (ok) verdict.succeeded();
    else {
      onLoginFailure({ ...failure, reason: 'bad_credentials' });
      log.info({ client: clientId, address }, 'client authentication failed');
    }
    return ok;
  };

  const idp = upstream
    ? new UpstreamIdp({
        settings: {
          issuer: upstream.issuer,
          name: upstream.name,
          clientId: upstream.clientId,
          clientSecret: upstream.clientSecret
            ? resolveSecret(upstream.clientSecret, 'auth.embedded.upstreamIdp.clientSecret')
            : undefined,
          scopes: upstream.scopes,
          claims: upstream.claims,
        },
        http: new OutboundClient({ allowLoopbackHttp: insecure }),
        redirectUri: `${issuer}${IDP_CALLBACK_PATH}`,
        allowHttp: insecure,
      })
    : undefined;

  const callback = provider.callback();
  const interactionDeps: InteractionDeps = {
    provider,
    storage,
    log,
    csrfKey: keys.cookies[0] as string,
    origin: new URL(issuer).origin,
    devAutoConsent: config.devAutoConsent,
    rememberGrant: async (accountId: string, clientId: string, grantId: string) => {
      await storage.oauth.upsert(
        'GrantIndex',
        grantIndexKey(accountId, clientId),
        { grantId },
        Date.now() + config.refreshTokenTtlSec * 1000,
        grantId,
      );
    },
    localUsers: login.localUsers,
    limiter: new AttemptLimiter({
      ...limits,
      rules: {
        user: { maxFailures: login.maxFailuresPerUser },
        address: { maxFailures: login.maxFailuresPerAddress },
      },
    }),
    idp,
    idpCookie: secure ? '__Secure-gatehouse_idp' : 'gatehouse_idp',
    secure,
    onFailure: onLoginFailure,
  };
  await warm;

  const purge = setInterval(() => {
    void storage.oauth
      .purgeExpired(Date.now())
      .catch((err: unknown) => log.warn({ err }, 'purging expired oauth rows failed'));
  }, PURGE_INTERVAL_MS);
  purge.unref();

  const fail = (res: ServerResponse, err: unknown): void => {
    log.error({ err }, 'authorization server request failed');
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('internal error');
  };

  // PERF: oidc-provider's AsyncLocalStorage turns on Node 20's promise hooks at its first request
  // and leaves them on, which costs every promise in the process (~20% of gateway throughput on
  // the MCP hot path). Disable it whenever no authorization-server request is in flight; its next
  // `run()` enables it again.
  let active = 0;
  const track = (res: ServerResponse): void => {
    active++;
    res.once('close', () => {
      if (--active === 0) setImmediate(() => active === 0 && als.disable());
    });
  };

  return {
    issuer,
    handle(req, res) {
      const path = (req.url ?? '').split('?', 1)[0] ?? '';
      if (!isAsPath(path)) return false;
      track(res);
      // "[...] MUST take measures to prevent clickjacking" (OAuth 2.1 §7.5.4): nothing here is framable.
      res.setHeader('x-frame-options', 'DENY');
      res.setHeader('content-security-policy', "frame-ancestors 'none'");
      if (path.startsWith(INTERACTION_PATH)) {
        handleInteraction(interactionDeps, req, res).catch((err: unknown) => fail(res, err));
        return true;
      }
      if (path === IDP_CALLBACK_PATH) {
        handleIdpCallback(interactionDeps, req, res).catch((err: unknown) => fail(res, err));
        return true;
      }
      if (path === '/.well-known/oauth-authorization-server') {
        // RFC 8414 §3: the same metadata, at the OAuth well-known location.
        req.url = `/.well-known/openid-configuration${(req.url ?? '').slice(path.length)}`;
      }
      Promise.resolve(callback(req, res)).catch((err: unknown) => fail(res, err));
      return true;
    },
    jwks: () => ({ keys: publicKeys }),
    async mintAccessToken(r) {
      const client = config.clients.find((c) => c.clientId === r.clientId);
      if (!client) throw new Error(`unknown pre-registered client ${r.clientId}`);
      if (r.user !== undefined && !(await storage.users.get(r.user)))
        throw new Error(`unknown user ${r.user}`);
      return mintAccessToken({
        key: signingKey,
        issuer,
        resource,
        clientId: r.clientId,
        sub: r.user,
        scope: r.scope ?? resourceScopes.join(' '),
        ttlSec: ttl,
      });
    },
    async close() {
      clearInterval(purge);
    },
  };
}
