/**
 * /admin: the admin API (`/admin/api/*`, JSON) and the web console (HTML), behind their own login.
 *
 * Rules for every request, in this order:
 * 1. security headers: a strict CSP (`default-src 'self'`, no inline script or style, `frame-ancestors
 *    'none'`, `form-action 'self'`), `X-Frame-Options: DENY`, no caching, no referrer, nosniff;
 * 2. an `Authorization` header is refused (401 admin_bearer_refused): an agent's bearer token never
 *    authenticates here, whatever it holds;
 * 3. the session comes only from the console's own cookie (server-side session, SameSite=Strict);
 * 4. a state-changing request (POST) must carry the session's CSRF token (form field `csrf` or header
 *    `x-csrf-token`) and, when the browser sends an Origin, one of the gateway's own origins;
 * 5. the login's roles decide what it may see and do (src/admin/roles.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../config/schema.ts';
import { type ErrorCode, GatehouseError } from '../errors.ts';
import { readSmallBody } from '../http/body.ts';
import { sendJson } from '../http/server.ts';
import { visible } from '../util/visible.ts';
import { type AdminActions, MAX_REASON, type TimelineFilter } from './actions.ts';
import { type AdminLogin, LoginError } from './login.ts';
import {
  approvalsPage,
  auditEventOf,
  auditPage,
  credentialsPage,
  definitionsPage,
  esc,
  grantsPage,
  plainPage,
  signedInPage,
} from './pages.ts';
import { type AdminRole, rolesOf } from './roles.ts';
import { type AdminSession, AdminSessions, CookieJar, cookieOf, csrfMatches } from './session.ts';
import { CONSOLE_CSS } from './static.ts';

/** The Content-Security-Policy of every /admin response. */
export const ADMIN_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const MAX_BODY = 16 * 1024;

export interface AdminConsoleOptions {
  config: GatehouseConfig;
  login: AdminLogin;
  actions: AdminActions;
  /** Cookies get Secure (and the `__Host-` prefix) unless the console is plain-http loopback. */
  secure: boolean;
  /** The gateway's own origins (server.allowedOrigins and its listeners): a POST's Origin must be one. */
  allowedOrigins: ReadonlySet<string>;
  log: Logger;
  /** Told about each login and logout (the gateway audits them). */
  onLogin?: (user: string, address: string | undefined) => void;
}

export class AdminConsole {
  private readonly sessions: AdminSessions;
  private readonly jar: CookieJar;

  constructor(private readonly o: AdminConsoleOptions) {
    this.sessions = new AdminSessions(o.config.admin.sessionTtlSec * 1000);
    this.jar = new CookieJar(o.secure);
  }

  /** Serves /admin and /admin/*; false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    if (url.pathname !== '/admin' && !url.pathname.startsWith('/admin/')) return false;
    res.setHeader('content-security-policy', ADMIN_CSP);
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('x-content-type-options', 'nosniff');
    // same-origin, not no-referrer: the latter makes a browser send `Origin: null` on our own form posts.
    res.setHeader('referrer-policy', 'same-origin');
    res.setHeader('cache-control', 'no-store');
    res.setHeader('cross-origin-opener-policy', 'same-origin');
    res.setHeader('cross-origin-resource-policy', 'same-origin');
    const api = url.pathname.startsWith('/admin/api/');
    // INVARIANT: before any routing, whatever the path: no Authorization header reaches the console.
    if (req.headers.authorization !== undefined) {
      this.o.log.warn({ path: url.pathname }, 'admin: request with an Authorization header refused');
      this.fail(res, api, 'admin_bearer_refused');
      req.resume();
      return true;
    }
    this.route(req, res, url, api).catch((err: unknown) => {
      this.o.log.error({ err: err instanceof Error ? err.message : String(err) }, 'admin request failed');
      if (!res.headersSent) this.fail(res, api, err instanceof GatehouseError ? err.code : 'internal');
      else res.end();
    });
    return true;
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, api: boolean): Promise<void> {
    const p = url.pathname;
    const m = req.method ?? 'GET';
    if (m === 'GET' && p === '/admin/static/console.css') {
      res.writeHead(200, { 'content-type': 'text/css; charset=utf-8' });
      res.end(CONSOLE_CSS);
      return;
    }
    if (m === 'GET' && p === '/admin/login') return this.beginLogin(res);
    if (m === 'GET' && p === '/admin/callback') return this.callback(req, res, url);
    const session = this.sessions.get(cookieOf(req, this.jar.session));
    if (session === undefined) {
      req.resume();
      // A page asks the browser to log in; the API answers 401.
      if (!api && m === 'GET') return redirect(res, '/admin/login');
      return this.fail(res, api, 'admin_login_required');
    }
    const roles = rolesOf(this.o.config, session.user, session.groups);
    if (m === 'POST') {
      const body = await readSmallBody(req, MAX_BODY);
      const form = api ? parseJsonObject(body) : Object.fromEntries(new URLSearchParams(body));
      const token = api ? header(req, 'x-csrf-token') : form['csrf'];
      if (!this.sameOrigin(req) || !csrfMatches(session, typeof token === 'string' ? token : undefined)) {
        this.o.log.warn(
          { path: p, user: session.user },
          'admin: state-changing request without a valid CSRF token',
        );
        return this.fail(res, api, 'admin_csrf');
      }
      if (api && !(header(req, 'content-type') ?? '').startsWith('application/json'))
        return this.fail(res, api, 'admin_csrf', 'the admin API takes application/json');
      return this.post(req, res, p, api, session, roles, form);
    }
    if (m !== 'GET') {
      req.resume();
      return this.fail(res, api, 'method_not_allowed');
    }
    return api ? this.apiGet(res, url, session, roles) : this.page(res, url, session, roles);
  }

  private beginLogin(res: ServerResponse): void {
    const { url, browser } = this.o.login.begin();
    res.setHeader('set-cookie', this.jar.loginCookie(browser, this.o.login.ttlSec));
    redirect(res, url);
  }

  private async callback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let who: { user: string; groups: string[] };
    try {
      who = await this.o.login.finish(url.searchParams, cookieOf(req, this.jar.login));
    } catch (err) {
      if (!(err instanceof LoginError)) throw err;
      this.o.log.warn({ reason: err.reason, detail: err.message }, 'admin login failed');
      return html(
        res,
        403,
        plainPage(
          'Sign-in failed',
          '<p>The sign-in could not be completed.</p><p><a href="/admin/login">Try again</a></p>',
        ),
      );
    }
    const s = this.sessions.create(who.user, who.groups);
    this.o.log.info(
      { user: who.user, roles: [...rolesOf(this.o.config, who.user, who.groups)] },
      'admin login',
    );
    this.o.onLogin?.(who.user, req.socket.remoteAddress);
    res.setHeader('set-cookie', [
      this.jar.sessionCookie(s.id, this.o.config.admin.sessionTtlSec),
      this.jar.loginCookie('', 0),
    ]);
    html(res, 200, signedInPage());
  }

  /** A POST's Origin, when the browser sends one, must be the gateway's own (defence in depth beside the token). */
  private sameOrigin(req: IncomingMessage): boolean {
    const origin = header(req, 'origin');
    return origin === undefined || this.o.allowedOrigins.has(origin.toLowerCase());
  }

  private async post(
    _req: IncomingMessage,
    res: ServerResponse,
    p: string,
    api: boolean,
    s: AdminSession,
    roles: ReadonlySet<AdminRole>,
    form: Record<string, unknown>,
  ): Promise<void> {
    const str = (k: string): string | undefined =>
      typeof form[k] === 'string' ? (form[k] as string) : undefined;
    if (p === '/admin/logout') {
      this.sessions.drop(s.id);
      res.setHeader('set-cookie', this.jar.sessionCookie('', 0));
      if (api) return sendJson(res, 200, { ok: true });
      return html(res, 200, plainPage('Signed out', '<p><a href="/admin/login">Sign in again</a></p>'));
    }
    const parts = p.split('/').filter(Boolean); // ['admin', (api,) kind, id, verb]
    const [kind, id, verb] = api ? parts.slice(2) : parts.slice(1);
    const back = (path: string, message: string): void => {
      s.flash = message;
      redirect(res, path, 303);
    };
    if (kind === 'approvals' && id !== undefined) {
      // Forms name the decision in a field (two buttons, one form); the API in the path.
      const decision = api ? verb : verb === 'decide' ? str('decision') : undefined;
      if (decision !== 'approve' && decision !== 'deny') return this.fail(res, api, 'not_found');
      if (!roles.has('approver')) return this.fail(res, api, 'admin_forbidden');
      const reason = str('reason')?.trim().slice(0, MAX_REASON);
      const r = await this.o.actions.decide(s, id, decision === 'approve' ? 'approved' : 'denied', reason);
      if (api) {
        if (!r.ok) return this.fail(res, api, 'admin_refused', r.message, { refusal: r.refusal });
        return sendJson(res, 200, { ok: true, approval: r.record });
      }
      return back('/admin/', r.ok ? `${r.record.decision} ${r.record.id}` : `not recorded: ${r.message}`);
    }
    if (!roles.has('admin')) return this.fail(res, api, 'admin_forbidden');
    let r: { ok: boolean; message: string } | undefined;
    let page = '/admin/';
    if (kind === 'grants' && id !== undefined && verb === 'revoke') {
      r = await this.o.actions.revokeGrant(s, id, str('reason'));
      page = '/admin/grants';
    } else if (kind === 'leases' && id !== undefined && verb === 'revoke') {
      r = await this.o.actions.revokeLease(s, id, str('reason'));
      page = '/admin/credentials';
    } else if (kind === 'definitions' && id === 'decide' && verb === undefined) {
      const decision = str('decision');
      if (decision !== 'approve' && decision !== 'reject') return this.fail(res, api, 'not_found');
      r = await this.o.actions.decideDefinition(
        s,
        {
          server: str('server') ?? '',
          kind: str('kind') ?? '',
          name: str('name') ?? '',
          hash: str('hash') ?? '',
        },
        decision,
      );
      page = '/admin/definitions';
    } else if (kind === 'blocks' && id === 'unblock' && verb === undefined) {
      r = await this.o.actions.unblock(s, str('kind') ?? '', str('name') ?? '');
      page = '/admin/credentials';
    }
    if (r === undefined) return this.fail(res, api, 'not_found');
    if (api)
      return r.ok
        ? sendJson(res, 200, { ok: true, message: r.message })
        : this.fail(res, api, 'admin_refused', r.message);
    back(page, r.ok ? r.message : `not done: ${r.message}`);
  }

  private async apiGet(
    res: ServerResponse,
    url: URL,
    s: AdminSession,
    roles: ReadonlySet<AdminRole>,
  ): Promise<void> {
    const [kind, id] = url.pathname.split('/').filter(Boolean).slice(2);
    if (kind === 'me' && id === undefined)
      return sendJson(res, 200, { user: s.user, groups: s.groups, roles: [...roles], csrf: s.csrf });
    if (kind === 'approvals') {
      if (!roles.has('approver') && !roles.has('admin')) return this.fail(res, true, 'admin_forbidden');
      if (id === undefined)
        return sendJson(res, 200, {
          approvals: await this.o.actions.approvals(url.searchParams.get('all') === '1'),
        });
      const r = await this.o.actions.approval(id);
      return r ? sendJson(res, 200, { approval: r }) : this.fail(res, true, 'not_found');
    }
    if (!roles.has('admin')) return this.fail(res, true, 'admin_forbidden');
    if (kind === 'grants' && id === undefined)
      return sendJson(res, 200, { grants: await this.o.actions.grants() });
    if (kind === 'credentials' && id === undefined)
      return sendJson(res, 200, await this.o.actions.credentials());
    if (kind === 'definitions' && id === undefined)
      return sendJson(res, 200, { definitions: await this.o.actions.definitions() });
    if (kind === 'audit' && id === undefined) {
      const rows = await this.o.actions.timeline(filterOf(url));
      return sendJson(res, 200, {
        records: rows.map((r) => ({ seq: r.seq, hash: r.hash, event: auditEventOf(r) })),
      });
    }
    this.fail(res, true, 'not_found');
  }

  private async page(
    res: ServerResponse,
    url: URL,
    s: AdminSession,
    roles: ReadonlySet<AdminRole>,
  ): Promise<void> {
    const frame = { session: s, roles, flash: s.flash };
    const now = Date.now();
    const p = url.pathname;
    const done = (body: string): void => {
      s.flash = undefined;
      html(res, 200, body);
    };
    if (p === '/admin' || p === '/admin/') {
      if (!roles.has('approver') && !roles.has('admin')) return this.fail(res, false, 'admin_forbidden');
      return done(approvalsPage(frame, await this.o.actions.approvals(false), now));
    }
    const admin = ['/admin/grants', '/admin/credentials', '/admin/definitions', '/admin/audit'];
    if (!admin.includes(p)) return this.fail(res, false, 'not_found');
    if (!roles.has('admin')) return this.fail(res, false, 'admin_forbidden');
    if (p === '/admin/grants') return done(grantsPage(frame, await this.o.actions.grants(), now));
    if (p === '/admin/definitions')
      return done(definitionsPage(frame, await this.o.actions.definitions(), now));
    if (p === '/admin/credentials') {
      const c = await this.o.actions.credentials();
      return done(credentialsPage(frame, c.leases, c.blocks, now));
    }
    const filter = filterOf(url);
    return done(auditPage(frame, await this.o.actions.timeline(filter), filter));
  }

  private fail(
    res: ServerResponse,
    api: boolean,
    code: ErrorCode,
    message?: string,
    data?: Record<string, unknown>,
  ): void {
    const e = new GatehouseError(code, message);
    if (api) {
      sendJson(res, e.httpStatus, { error: code, message: e.message, ...data });
      return;
    }
    const signIn = code === 'admin_login_required' || code === 'admin_bearer_refused';
    html(
      res,
      e.httpStatus,
      plainPage(
        code === 'admin_forbidden' ? 'Not allowed' : 'Request refused',
        `<p>${esc(visible(e.message))}</p><p><code>${esc(code)}</code></p>${signIn ? '<p><a href="/admin/login">Sign in</a></p>' : '<p><a href="/admin/">Back to the console</a></p>'}`,
      ),
    );
  }
}

function filterOf(url: URL): TimelineFilter {
  const f: TimelineFilter = {};
  for (const k of ['agent', 'user', 'grant', 'tool', 'decision'] as const) {
    const v = url.searchParams.get(k)?.trim().slice(0, 512);
    if (v) f[k] = v;
  }
  return f;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseJsonObject(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function redirect(res: ServerResponse, location: string, status = 302): void {
  res.writeHead(status, { location });
  res.end();
}

function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}
