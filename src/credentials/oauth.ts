/**
 * The broker as an OAuth client of upstream authorization servers: metadata discovery (RFC 8414, then
 * OIDC discovery), token requests (refresh_token, RFC 8693 token exchange, client_credentials,
 * authorization_code with PKCE) and RFC 7009 revocation. Every request goes through the SSRF-guarded
 * OutboundClient. Errors carry the endpoint's origin and the OAuth error code, never a token or a body.
 */
import type { CredentialConfig } from '../config/schema.ts';
import type { OutboundClient } from '../secrets/outbound.ts';

export type OAuthCredential = Exclude<CredentialConfig, { type: 'static' }>;

export interface Endpoints {
  token: string;
  authorization: string | undefined;
  revocation: string | undefined;
}

export interface TokenResponse {
  accessToken: string;
  /** Epoch ms; undefined when the server did not say. */
  expiresAt: number | undefined;
  refreshToken: string | undefined;
  scope: string | undefined;
}

/** A refusal or failure of the upstream authorization server. `oauthError` is its RFC 6749 code. */
export class OAuthError extends Error {
  constructor(
    message: string,
    readonly oauthError: string | undefined,
  ) {
    super(message);
    this.name = 'OAuthError';
  }
}

const TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:';

export class OAuthClient {
  private endpoints: Promise<Endpoints> | undefined;

  constructor(
    readonly service: string,
    private readonly cred: OAuthCredential,
    private readonly http: OutboundClient,
    /** The client secret, read from the store when needed. */
    private readonly clientSecret: () => Promise<string | undefined>,
  ) {}

  /** Endpoints from the config, completed from the issuer's metadata (fetched once; retried after a failure). */
  resolveEndpoints(): Promise<Endpoints> {
    this.endpoints ??= this.discover().catch((err: unknown) => {
      this.endpoints = undefined;
      throw err;
    });
    return this.endpoints;
  }

  private async discover(): Promise<Endpoints> {
    const c = this.cred;
    const auth = c.type === 'oauth-user' ? c.authorizationEndpoint : undefined;
    let meta: Record<string, unknown> = {};
    const required = !c.tokenEndpoint || (c.type === 'oauth-user' && !auth);
    if (c.issuer && (required || !c.revocationEndpoint)) {
      try {
        meta = await this.metadata(c.issuer);
      } catch (err) {
        // Only the revocation endpoint was wanted: minting does not depend on it.
        if (required) throw err;
      }
    }
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    const token = c.tokenEndpoint ?? str(meta.token_endpoint);
    if (!token) throw new OAuthError(`${this.service}: no token endpoint in the issuer metadata`, undefined);
    return {
      token,
      authorization: auth ?? str(meta.authorization_endpoint),
      revocation: c.revocationEndpoint ?? str(meta.revocation_endpoint),
    };
  }

  /** RFC 8414 §3 first, then OpenID Connect discovery; the issuer in the document must match. */
  private async metadata(issuer: string): Promise<Record<string, unknown>> {
    const u = new URL(issuer);
    const path = u.pathname === '/' ? '' : u.pathname;
    const candidates = [
      `${u.origin}/.well-known/oauth-authorization-server${path}`,
      `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
    ];
    let lastError: unknown;
    for (const url of candidates) {
      try {
        const doc = await this.http.getJson(url);
        if (typeof doc !== 'object' || doc === null) continue;
        const meta = doc as Record<string, unknown>;
        if (meta.issuer !== issuer)
          throw new OAuthError(`${this.service}: metadata issuer does not match ${issuer}`, undefined);
        return meta;
      } catch (err) {
        lastError = err;
      }
    }
    throw new OAuthError(
      `${this.service}: cannot read the metadata of ${issuer}: ${lastError instanceof Error ? lastError.message : 'no document'}`,
      undefined,
    );
  }

  /** Client authentication: client_secret_basic when there is a secret, else client_id in the body. */
  private async clientAuth(form: Record<string, string>): Promise<Record<string, string>> {
    const secret = await this.clientSecret();
    if (secret === undefined) {
      form.client_id = this.cred.clientId;
      return {};
    }
    const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
    return {
      authorization: `Basic ${Buffer.from(`${enc(this.cred.clientId)}:${enc(secret)}`).toString('base64')}`,
    };
  }

  /** Adds the narrowed scope and the resource the credential is configured with. */
  private narrow(form: Record<string, string>): Record<string, string> {
    if (this.cred.scope) form.scope = this.cred.scope;
    if (this.cred.resource) form.resource = this.cred.resource;
    return form;
  }

  refresh(refreshToken: string): Promise<TokenResponse> {
    return this.token(this.narrow({ grant_type: 'refresh_token', refresh_token: refreshToken }));
  }

  exchange(subjectToken: string, subjectType: string): Promise<TokenResponse> {
    return this.token(
      this.narrow({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subjectToken,
        subject_token_type: `${TOKEN_TYPE}${subjectType}`,
        requested_token_type: `${TOKEN_TYPE}access_token`,
      }),
    );
  }

  clientCredentials(): Promise<TokenResponse> {
    return this.token(this.narrow({ grant_type: 'client_credentials' }));
  }

  authorizationCode(code: string, verifier: string, redirectUri: string): Promise<TokenResponse> {
    return this.token(
      this.narrow({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      }),
    );
  }

  private async token(form: Record<string, string>): Promise<TokenResponse> {
    const { token } = await this.resolveEndpoints();
    const headers = { accept: 'application/json', ...(await this.clientAuth(form)) };
    const res = await this.http.postForm(token, form, { headers });
    let body: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(res.body.toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>;
    } catch {
      // not JSON: reported by status below
    }
    const origin = new URL(token).origin;
    if (res.status !== 200) {
      const code = typeof body.error === 'string' ? body.error.slice(0, 64) : undefined;
      throw new OAuthError(
        `${this.service}: token endpoint ${origin} refused ${form.grant_type}: ${code ?? `status ${res.status}`}`,
        code,
      );
    }
    if (typeof body.access_token !== 'string' || body.access_token === '')
      throw new OAuthError(`${this.service}: token endpoint ${origin} returned no access_token`, undefined);
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : undefined;
    return {
      accessToken: body.access_token,
      expiresAt: expiresIn === undefined ? undefined : Date.now() + expiresIn * 1000,
      refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
      scope: typeof body.scope === 'string' ? body.scope : undefined,
    };
  }

  /** RFC 7009; false when the server has no revocation endpoint or refused. Never throws. */
  async revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<boolean> {
    try {
      const { revocation } = await this.resolveEndpoints();
      if (!revocation) return false;
      const form: Record<string, string> = { token, token_type_hint: hint };
      const headers = await this.clientAuth(form);
      const res = await this.http.postForm(revocation, form, { headers });
      return res.status === 200;
    } catch {
      return false;
    }
  }
}
