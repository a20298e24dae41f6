/**
 * Console sessions: server-side (the cookie holds only a random id), bounded, expiring; each carries
 * the CSRF synchronizer token that every state-changing request must present (OWASP CSRF cheat sheet,
 * "Synchronizer Token Pattern"). Cookies are HttpOnly and SameSite=Strict, Secure whenever the console
 * is not plain-http loopback.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** One logged-in console user. */
export interface AdminSession {
  readonly id: string;
  /** The login's subject (token `sub`). */
  readonly user: string;
  /** Groups from the login's claims (admin.external.groupsClaim); empty for local users. */
  readonly groups: readonly string[];
  /** The synchronizer token of this session (forms: field `csrf`; API: header `x-csrf-token`). */
  readonly csrf: string;
  readonly expiresAt: number;
  /** A one-time message for the next page (what the last action did). */
  flash: string | undefined;
}

const MAX_SESSIONS = 10_000;

export const rnd = (n = 32): string => randomBytes(n).toString('base64url');

/** The sessions of one gateway, in memory (a restart logs everybody out). */
export class AdminSessions {
  private readonly byId = new Map<string, AdminSession>();

  constructor(private readonly ttlMs: number) {}

  create(user: string, groups: readonly string[], now = Date.now()): AdminSession {
    this.sweep(now);
    const s: AdminSession = {
      id: rnd(),
      user,
      groups,
      csrf: rnd(),
      expiresAt: now + this.ttlMs,
      flash: undefined,
    };
    this.byId.set(s.id, s);
    return s;
  }

  get(id: string | undefined, now = Date.now()): AdminSession | undefined {
    if (id === undefined) return undefined;
    const s = this.byId.get(id);
    if (s === undefined) return undefined;
    if (s.expiresAt <= now) {
      this.byId.delete(id);
      return undefined;
    }
    return s;
  }

  drop(id: string): void {
    this.byId.delete(id);
  }

  private sweep(now: number): void {
    for (const s of this.byId.values()) if (s.expiresAt <= now) this.byId.delete(s.id);
    // INVARIANT: bounded; past the cap the oldest logins go first (a Map iterates in insertion order).
    for (const id of this.byId.keys()) {
      if (this.byId.size < MAX_SESSIONS) break;
      this.byId.delete(id);
    }
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(session: AdminSession, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of cookie `name` in the request, if any. */
export function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Names and attributes of the console's cookies. */
export class CookieJar {
  /** `__Host-` needs Secure and Path=/ (RFC 6265bis §4.1.3.2); plain-http loopback cannot use it. */
  readonly session: string;
  readonly login: string;
  constructor(readonly secure: boolean) {
    this.session = secure ? '__Host-gatehouse_admin' : 'gatehouse_admin';
    this.login = secure ? '__Host-gatehouse_admin_login' : 'gatehouse_admin_login';
  }

  private attrs(maxAgeSec: number): string {
    return `HttpOnly; Path=/; Max-Age=${maxAgeSec}${this.secure ? '; Secure' : ''}`;
  }

  /** The session cookie: SameSite=Strict, so no other site's page can make the browser send it. */
  sessionCookie(value: string, maxAgeSec: number): string {
    return `${this.session}=${value}; ${this.attrs(maxAgeSec)}; SameSite=Strict`;
  }

  /**
   * The login-state cookie binds the OIDC callback to the browser that started the login. Lax: an
   * external identity provider redirects back cross-site (a top-level GET), where Strict is not sent.
   */
  loginCookie(value: string, maxAgeSec: number): string {
    return `${this.login}=${value}; ${this.attrs(maxAgeSec)}; SameSite=Lax`;
  }
}
