/**
 * Per-user connections: Gatehouse as an OAuth client (authorization code + PKCE) of a third-party
 * service on behalf of one user. A call that needs a connection the user has not made gets a link
 * (URL-mode elicitation); the link, at /connect/<id>:
 *
 * 1. binds itself to the first browser that opens it (an HttpOnly cookie) and sends it to the embedded
 *    authorization server to log in: the user who opens the link must be the user the agent acts for
 *    (MCP 2025-11-25 elicitation, URL mode: the server verifies who completes it);
 * 2. shows Gatehouse's own consent page, naming the agent (client), the user and the service with the
 *    scope: consent is per client, every time, before any redirect to the third party (the MCP
 *    authorization spec's confused-deputy rule for proxies);
 * 3. redirects to the service's authorization endpoint (PKCE S256, state, resource, scope) and, at
 *    /connect/callback, exchanges the code; the refresh token is stored encrypted in the secret store
 *    (`conn.<service>.<hash of issuer and user>`), never shown, and the access token is revoked.
 *
 * Links are single-use, expire (broker.connectLinkTtlSec) and live in memory: a restart invalidates them.
 *
 * The login of step 1 is the embedded AS's own login page, so it is throttled and audited there like any
 * other (auth/as/interactions.ts, THREATS T33); a login as another user than the link's is audited here
 * as `authn.failure` (`wrong_user`).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuditRecorder } from '../audit/recorder.ts';
import { addressKey } from '../auth/as/login-limit.ts';
import type { Principal, TokenVerifier } from '../auth/principal.ts';
import { readSmallBody } from '../http/body.ts';
import type { LeakGuard } from '../secrets/leak-guard.ts';
import type { SecretStore } from '../secrets/store.ts';
import { type ConnectLinks, type CredentialBroker, connectionSecret } from './broker.ts';

/** The embedded authorization server's client for verifying who opens a link (public, PKCE). */
export const CONNECT_CLIENT_ID = 'gatehouse-connect';
const COOKIE = 'gatehouse_connect';
const MAX_PENDING = 10_000;

interface Pending {
  id: string;
  service: string;
  principal: Pick<Principal, 'agent' | 'user' | 'issuer'>;
  grantId: string;
  sessionId: string | undefined;
  elicitationId: string;
  expiresAt: number;
  /** Set when a browser opens the link: only that browser may go on. */
  browser: string | undefined;
  loginState: string;
  loginVerifier: string;
  verified: boolean;
  csrf: string;
  upstreamState: string | undefined;
  upstreamVerifier: string | undefined;
}

export interface ConnectOptions {
  /** Public base URL of the gateway (links and redirect URIs). */
  base: string;
  /** Where the gateway reaches its own authorization server (back channel). */
  localOrigin: string;
  issuer: string;
  /** The MCP resource (audience of the login token) and the scope asked for it (auth.requiredScopes). */
  resource: string;
  scope: string;
  broker: CredentialBroker;
  verifier: TokenVerifier;
  secrets: SecretStore;
  leakGuard: LeakGuard;
  audit: AuditRecorder;
  log: Logger;
  ttlMs: number;
  /** Tells the agent's session that the elicitation completed. */
  notify: (sessionId: string, elicitationId: string) => void;
}

const rnd = (n = 24): string => randomBytes(n).toString('base64url');
const s256 = (v: string): string => createHash('sha256').update(v).digest('base64url');

export class ConnectFlows implements ConnectLinks {
  private readonly byId = new Map<string, Pending>();
  private readonly byLoginState = new Map<string, Pending>();
  private readonly byUpstreamState = new Map<string, Pending>();

  constructor(private readonly o: ConnectOptions) {}

  get redirectUri(): string {
    return `${this.o.base}/connect/callback`;
  }

  get loginRedirectUri(): string {
    return `${this.o.base}/connect/verified`;
  }

  link(req: { service: string; principal: Principal; grantId: string; sessionId: string | undefined }): {
    url: string;
    elicitationId: string;
  } {
    this.sweep();
    const p: Pending = {
      id: rnd(),
      service: req.service,
      principal: { agent: req.principal.agent, user: req.principal.user, issuer: req.principal.issuer },
      grantId: req.grantId,
      sessionId: req.sessionId,
      elicitationId: rnd(12),
      expiresAt: Date.now() + this.o.ttlMs,
      browser: undefined,
      loginState: rnd(),
      loginVerifier: rnd(32),
      verified: false,
      csrf: rnd(),
      upstreamState: undefined,
      upstreamVerifier: undefined,
    };
    this.byId.set(p.id, p);
    this.byLoginState.set(p.loginState, p);
    return { url: `${this.o.base}/connect/${p.id}`, elicitationId: p.elicitationId };
  }

  private sweep(): void {
    const now = Date.now();
    for (const p of this.byId.values()) if (p.expiresAt <= now || this.byId.size > MAX_PENDING) this.drop(p);
  }

  private drop(p: Pending): void {
    this.byId.delete(p.id);
    this.byLoginState.delete(p.loginState);
    if (p.upstreamState) this.byUpstreamState.delete(p.upstreamState);
  }

  /** Serves /connect/*; false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    if (!url.pathname.startsWith('/connect/')) return false;
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader(
      'content-security-policy',
      "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self' https: http:",
    );
    res.setHeader('cache-control', 'no-store');
    res.setHeader('referrer-policy', 'no-referrer');
    this.route(req, res, url).catch((err: unknown) => {
      this.o.log.error({ err: err instanceof Error ? err.message : String(err) }, 'connect flow failed');
      if (!res.headersSent)
        page(
          res,
          500,
          'Something went wrong',
          'The connection could not be completed. Ask your agent to try again.',
        );
    });
    return true;
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const parts = url.pathname.split('/').filter(Boolean); // ['connect', ...]
    const [, first, second] = parts;
    if (req.method === 'GET' && first === 'verified') return this.verified(req, res, url);
    if (req.method === 'GET' && first === 'callback') return this.callback(req, res, url);
    const p = first ? this.byId.get(first) : undefined;
    if (!p || p.expiresAt <= Date.now()) {
      if (p) this.drop(p);
      return page(
        res,
        404,
        'Link expired',
        'This link is unknown, used or expired. Ask your agent for a new one.',
      );
    }
    if (req.method === 'GET' && second === undefined) return this.open(req, res, p);
    if (req.method === 'POST' && second === 'consent') return this.consent(req, res, p);
    page(res, 405, 'Not allowed', 'This request is not part of the connect flow.');
  }

  /** Step 1: bind the link to this browser, then log in at the embedded authorization server. */
  private open(req: IncomingMessage, res: ServerResponse, p: Pending): void {
    const cookie = cookieOf(req);
    if (p.browser !== undefined && cookie !== p.browser) {
      page(
        res,
        403,
        'Link already in use',
        'This link was opened in another browser. Ask your agent for a new one.',
      );
      return;
    }
    p.browser ??= rnd();
    const secure = this.o.base.startsWith('https:') ? '; Secure' : '';
    res.setHeader(
      'set-cookie',
      `${COOKIE}=${p.browser}; HttpOnly; SameSite=Lax; Path=/connect; Max-Age=${Math.ceil(this.o.ttlMs / 1000)}${secure}`,
    );
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: CONNECT_CLIENT_ID,
      redirect_uri: this.loginRedirectUri,
      state: p.loginState,
      code_challenge: s256(p.loginVerifier),
      code_challenge_method: 'S256',
      resource: this.o.resource,
      scope: this.o.scope,
    });
    redirect(res, `${this.o.issuer}/oauth/authorize?${q}`);
  }

  /** Step 2: the login came back; the logged-in user must be the user the agent acts for. */
  private async verified(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const p = this.byLoginState.get(url.searchParams.get('state') ?? '');
    if (!p || p.expiresAt <= Date.now() || p.browser === undefined || cookieOf(req) !== p.browser)
      return page(
        res,
        403,
        'Not allowed',
        'This sign-in does not belong to a connect link opened in this browser.',
      );
    this.byLoginState.delete(p.loginState);
    const code = url.searchParams.get('code');
    if (!code) return page(res, 403, 'Sign-in failed', 'The sign-in was cancelled or refused.');
    const tokenRes = await fetch(`${this.o.localOrigin}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: this.loginRedirectUri,
        code_verifier: p.loginVerifier,
        client_id: CONNECT_CLIENT_ID,
        resource: this.o.resource,
      }),
      signal: AbortSignal.timeout(5000),
    });
    const body = (await tokenRes.json().catch(() => ({}))) as { access_token?: unknown };
    if (!tokenRes.ok || typeof body.access_token !== 'string')
      return page(res, 403, 'Sign-in failed', 'The sign-in could not be verified.');
    const who = await this.o.verifier.verify(body.access_token);
    if (who.user === undefined || who.user !== p.principal.user || who.issuer !== p.principal.issuer) {
      this.o.log.warn(
        { service: p.service, expected: p.principal.user, got: who.user },
        'connect link opened by another user',
      );
      // A login that does not match the link is a failed login for the link (T05, T33): audited.
      this.o.audit.loginFailed({
        kind: 'connect',
        reason: 'wrong_user',
        client: p.principal.agent,
        username: who.user,
        address: addressKey(req.socket.remoteAddress),
        detail: `link for ${p.principal.user ?? ''} (${p.service})`,
      });
      this.drop(p);
      return page(
        res,
        403,
        'Wrong account',
        'You signed in as a different user than the one this request is for. The link is now void.',
      );
    }
    p.verified = true;
    const flow = this.o.broker.oauthClient(p.service);
    const scope = flow?.cred.scope ?? '(the service default)';
    page(
      res,
      200,
      `Connect ${esc(p.service)}?`,
      `<p>The agent <b>${esc(p.principal.agent)}</b>, acting for <b>${esc(p.principal.user ?? '')}</b>, asks to use your
<b>${esc(p.service)}</b> account through Gatehouse, with scope <code>${esc(scope)}</code>.</p>
<p>Gatehouse keeps the credential; the agent never sees it. You can revoke it at any time.</p>
<form method="post" action="/connect/${esc(p.id)}/consent">
<input type="hidden" name="csrf" value="${esc(p.csrf)}">
<button name="decision" value="allow">Allow</button> <button name="decision" value="deny">Deny</button>
</form>`,
    );
  }

  /** Step 3: the user's decision; on allow, off to the service's authorization endpoint. */
  private async consent(req: IncomingMessage, res: ServerResponse, p: Pending): Promise<void> {
    const form = new URLSearchParams(await readSmallBody(req, 4096));
    if (!p.verified || cookieOf(req) !== p.browser || form.get('csrf') !== p.csrf)
      return page(
        res,
        403,
        'Not allowed',
        'This form does not belong to a verified connect link in this browser.',
      );
    if (form.get('decision') !== 'allow') {
      this.drop(p);
      return page(res, 200, 'Not connected', 'You declined. Nothing was shared with the agent.');
    }
    const flow = this.o.broker.oauthClient(p.service);
    const endpoints = await flow?.oauth.resolveEndpoints();
    if (!flow || !endpoints?.authorization)
      return page(
        res,
        502,
        'Service unavailable',
        `No authorization endpoint is known for ${esc(p.service)}.`,
      );
    p.upstreamState = rnd();
    p.upstreamVerifier = rnd(32);
    this.byUpstreamState.set(p.upstreamState, p);
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: flow.cred.clientId,
      redirect_uri: this.redirectUri,
      state: p.upstreamState,
      code_challenge: s256(p.upstreamVerifier),
      code_challenge_method: 'S256',
    });
    if (flow.cred.scope) q.set('scope', flow.cred.scope);
    if (flow.cred.resource) q.set('resource', flow.cred.resource);
    const sep = endpoints.authorization.includes('?') ? '&' : '?';
    redirect(res, `${endpoints.authorization}${sep}${q}`, 303);
  }

  /** Step 4: the service's answer; the refresh token goes into the store, encrypted. */
  private async callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const p = this.byUpstreamState.get(url.searchParams.get('state') ?? '');
    if (!p || p.expiresAt <= Date.now() || !p.verified || cookieOf(req) !== p.browser || !p.upstreamVerifier)
      return page(
        res,
        403,
        'Not allowed',
        'This answer does not belong to a connect flow started in this browser.',
      );
    this.drop(p);
    const code = url.searchParams.get('code');
    if (!code) {
      const error = (url.searchParams.get('error') ?? 'no code').slice(0, 64);
      return page(res, 403, 'Not connected', `${esc(p.service)} answered: ${esc(error)}.`);
    }
    const flow = this.o.broker.oauthClient(p.service);
    if (!flow) return page(res, 502, 'Service unavailable', 'The service is no longer configured.');
    let tokens: Awaited<ReturnType<typeof flow.oauth.authorizationCode>>;
    try {
      tokens = await flow.oauth.authorizationCode(code, p.upstreamVerifier, this.redirectUri);
    } catch (err) {
      this.o.log.warn({ service: p.service, err: (err as Error).message }, 'connect: code exchange failed');
      return page(res, 502, 'Not connected', `${esc(p.service)} did not issue a token.`);
    }
    // Not revoked: some servers (oidc-provider among them) revoke the whole grant, refresh token included.
    this.o.leakGuard.register(tokens.accessToken, 'connect');
    if (!tokens.refreshToken)
      return page(
        res,
        502,
        'Not connected',
        `${esc(p.service)} issued no refresh token; the connection cannot last.`,
      );
    const user = p.principal.user as string;
    const name = connectionSecret(p.service, { issuer: p.principal.issuer, user });
    this.o.leakGuard.register(tokens.refreshToken, name);
    await this.o.secrets.set(name, tokens.refreshToken, { service: p.service });
    this.o.audit.record({
      type: 'admin.action',
      grantId: p.grantId,
      principal: { agent: p.principal.agent, user, issuer: p.principal.issuer },
      server: p.service,
      detail: { action: 'connection.created', service: p.service, credential: name },
    });
    this.o.log.info({ service: p.service, user, credential: name }, 'connection created');
    if (p.sessionId) this.o.notify(p.sessionId, p.elicitationId);
    page(
      res,
      200,
      'Connected',
      `Your ${esc(p.service)} account is connected. Return to your agent: it can retry now.`,
    );
  }
}

function cookieOf(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === COOKIE) return v;
  }
  return undefined;
}

function redirect(res: ServerResponse, location: string, status = 302): void {
  res.writeHead(status, { location });
  res.end();
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)} · Gatehouse</title></head>` +
      `<body style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>${esc(title)}</h1>${body.startsWith('<') ? body : `<p>${body}</p>`}</body></html>`,
  );
}
