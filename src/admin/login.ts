/**
 * The console's own login: OpenID Connect authorization code flow with PKCE (RFC 7636, S256), `state`
 * bound to the browser that started it (a cookie) and `nonce` bound to the ID token (OIDC Core §3.1.2.1,
 * "nonce ... used to associate a Client session with an ID Token, and to mitigate replay attacks").
 * The identity system is the gateway's: the embedded authorization server (an internal confidential
 * client, registered at start-up with a fresh secret) or, with auth.mode external, the issuer of
 * admin.external. The ID token is verified (signature, `iss`, `aud` = the client, expiry, nonce); its
 * access token is dropped, so nothing the console receives can act at /mcp.
 */
import { createHash } from 'node:crypto';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { rnd } from './session.ts';

/** The embedded authorization server's client for the console (confidential, code + PKCE, scope openid). */
export const ADMIN_CLIENT_ID = 'gatehouse-admin';

/** Where the console's login lives at an OpenID Connect issuer. */
export interface LoginEndpoints {
  issuer: string;
  /** Front channel: where the browser is sent. */
  authorization: string;
  /** Back channel: where the gateway redeems the code. */
  token: string;
  jwks: JWTVerifyGetKey;
  clientId: string;
  clientSecret: string;
  scope: string;
  groupsClaim: string;
  /** Extra authorization and token parameters (the embedded AS: `resource`). */
  extra: Record<string, string>;
}

/** The JWKS of the embedded authorization server (in process) as a key resolver. */
export function localKeys(jwks: JSONWebKeySet): JWTVerifyGetKey {
  return createLocalJWKSet(jwks);
}

/** A remote JWKS (external issuer). */
export function remoteKeys(uri: string): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000 });
}

/** Why a login did not complete; the console shows a fixed text for each. */
export class LoginError extends Error {
  constructor(
    readonly reason: 'unknown_state' | 'wrong_browser' | 'refused' | 'token_failed' | 'id_token_invalid',
    detail: string,
  ) {
    super(detail);
    this.name = 'LoginError';
  }
}

interface PendingLogin {
  verifier: string;
  nonce: string;
  /** The login cookie's value: only the browser that started the login may finish it. */
  browser: string;
  expiresAt: number;
}

const MAX_PENDING = 10_000;
const LOGIN_TTL_MS = 10 * 60_000;
const s256 = (v: string): string => createHash('sha256').update(v).digest('base64url');

/** Starts and finishes console logins against one issuer. */
export class AdminLogin {
  private readonly pending = new Map<string, PendingLogin>();

  constructor(
    private readonly ep: LoginEndpoints,
    readonly redirectUri: string,
  ) {}

  /** Seconds the login cookie lives. */
  get ttlSec(): number {
    return LOGIN_TTL_MS / 1000;
  }

  /** A new login: where to send the browser, and the value of its login cookie. */
  begin(now = Date.now()): { url: string; browser: string } {
    for (const [k, p] of this.pending)
      if (p.expiresAt <= now || this.pending.size >= MAX_PENDING) this.pending.delete(k);
    const state = rnd();
    const p: PendingLogin = {
      verifier: rnd(32),
      nonce: rnd(),
      browser: rnd(),
      expiresAt: now + LOGIN_TTL_MS,
    };
    this.pending.set(state, p);
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: this.ep.clientId,
      redirect_uri: this.redirectUri,
      scope: this.ep.scope,
      state,
      nonce: p.nonce,
      code_challenge: s256(p.verifier),
      code_challenge_method: 'S256',
      ...this.ep.extra,
    });
    const sep = this.ep.authorization.includes('?') ? '&' : '?';
    return { url: `${this.ep.authorization}${sep}${q}`, browser: p.browser };
  }

  /** The callback: checks state and browser, redeems the code, verifies the ID token; the login's identity. */
  async finish(
    params: URLSearchParams,
    browser: string | undefined,
    now = Date.now(),
  ): Promise<{ user: string; groups: string[] }> {
    const state = params.get('state') ?? '';
    const p = this.pending.get(state);
    if (p === undefined || p.expiresAt <= now)
      throw new LoginError('unknown_state', 'unknown or expired state');
    // Single use, whatever happens next.
    this.pending.delete(state);
    if (browser !== p.browser)
      throw new LoginError('wrong_browser', 'the login was started in another browser');
    const code = params.get('code');
    if (!code) throw new LoginError('refused', `no code (${(params.get('error') ?? 'none').slice(0, 64)})`);
    // RFC 9207: when the issuer names itself in the response, it must be the one we asked.
    const iss = params.get('iss');
    if (iss !== null && iss !== this.ep.issuer)
      throw new LoginError('refused', 'authorization response from another issuer');
    const res = await fetch(this.ep.token, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(this.ep.clientId)}:${encodeURIComponent(this.ep.clientSecret)}`).toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: this.redirectUri,
        code_verifier: p.verifier,
        ...this.ep.extra,
      }),
      redirect: 'error',
      signal: AbortSignal.timeout(5000),
    });
    const body = (await res.json().catch(() => ({}))) as { id_token?: unknown };
    if (!res.ok || typeof body.id_token !== 'string')
      throw new LoginError('token_failed', `token endpoint answered ${res.status} without an id_token`);
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(body.id_token, this.ep.jwks, {
        issuer: this.ep.issuer,
        audience: this.ep.clientId,
        clockTolerance: 30,
      }));
    } catch (err) {
      throw new LoginError('id_token_invalid', err instanceof Error ? err.message : String(err));
    }
    if (claims['nonce'] !== p.nonce) throw new LoginError('id_token_invalid', 'nonce mismatch');
    const sub = claims['sub'];
    if (typeof sub !== 'string' || sub === '') throw new LoginError('id_token_invalid', 'no sub');
    const g = Object.hasOwn(claims, this.ep.groupsClaim) ? claims[this.ep.groupsClaim] : undefined;
    const groups = Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string').slice(0, 256) : [];
    return { user: sub, groups };
  }
}
