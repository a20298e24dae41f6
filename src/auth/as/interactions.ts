/**
 * The login and consent pages of the embedded authorization server, at
 * `/oauth/interaction/<uid>`. Plain HTML forms, no scripts.
 *
 * - Both forms carry a CSRF token bound to the interaction (HMAC of its uid with a
 *   cookie key): the interaction cookie alone is not enough to submit.
 * - A cross-site `Origin` on a POST is refused.
 * - Pages are not framable: `Content-Security-Policy: frame-ancestors 'none'` and
 *   `X-Frame-Options: DENY` ("[...] MUST take measures to prevent clickjacking",
 *   https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1-13#section-7.5.4).
 * - Once the authorization request resumed, the interaction is destroyed: replaying
 *   a form or the resume URL fails.
 * - Failed logins (THREATS T33) are throttled per username as typed and per client
 *   address (`login-limit.ts`) and reported to `onFailure` (the gateway audits them as
 *   `authn.failure`). An unknown user, a user without a local password and a wrong
 *   password cost the same and get byte-identical answers (`checkLocalPassword`).
 * - With an upstream identity provider (`upstream-idp.ts`) the page offers
 *   "Sign in with <name>"; its answer comes back to `/oauth/idp/callback`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Storage } from '../../storage/types.ts';
import { type AttemptLimiter, addressKey, typedUsername, usernameKey } from './login-limit.ts';
import { checkLocalPassword } from './passwords.ts';
import type { IdpFailureReason, UpstreamIdp } from './upstream-idp.ts';

/** Prefix of the interaction pages. */
export const INTERACTION_PATH = '/oauth/interaction/';

export interface InteractionDeps {
  provider: Provider;
  storage: Storage;
  log: Logger;
  /** Key for CSRF tokens. */
  csrfKey: string;
  /** The issuer origin: POSTs with another Origin are refused. */
  origin: string;
  devAutoConsent: boolean;
  /** Remembers the grant of a (user, client) pair, so consent survives a new login session. */
  rememberGrant(accountId: string, clientId: string, grantId: string): Promise<void>;
  /** Offer the local username/password form (`auth.embedded.login.localUsers`). */
  localUsers: boolean;
  /** Failed-login throttle, dimensions `user` and `address`. */
  limiter: AttemptLimiter;
  /** The upstream identity provider, when configured. */
  idp: UpstreamIdp | undefined;
  /** Name of the cookie that binds an upstream login to the browser that started it. */
  idpCookie: string;
  /** Cookies get `Secure` (https issuer). */
  secure: boolean;
  /** Told about every failed login (the gateway audits it as `authn.failure` and counts it). */
  onFailure(f: LoginFailure): void;
}

/** Why a login failed, as audited: never whether the user exists. */
export type LoginFailureReason = 'bad_credentials' | 'rate_limited' | IdpFailureReason;

/** A failed login (password form, upstream IdP or client secret), for audit and metrics. */
export interface LoginFailure {
  /** `password`: the login form; `idp`: the upstream identity provider; `client`: a client secret. */
  kind: 'password' | 'idp' | 'client';
  reason: LoginFailureReason;
  /** The client id the login was for (the authorization request's, or the authenticating client). */
  client: string | undefined;
  /** The username as typed (at most 64 characters) or as the provider named it; never whether it exists. */
  username: string | undefined;
  /** The client address as counted (IPv6 by /64). */
  address: string;
  /** Which check failed (upstream IdP), never a secret. */
  detail?: string | undefined;
  /** A further refusal of a lockout already reported: count it, do not audit it again (T32). */
  repeat?: boolean;
}

/** The answer to a failed password login: the same for every reason a user could not be found. */
export const BAD_CREDENTIALS = 'Invalid username or password.';
/** The answer while a username or address is locked out: the same whether or not the user exists. */
export const TOO_MANY_ATTEMPTS = 'Too many failed sign-in attempts. Wait a few minutes and try again.';

/** Headers every AS page carries. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Not no-referrer: with it a browser sends `Origin: null` on the page's own form posts (Fetch,
  // "serializing a request origin": referrer policy no-referrer → null), which the check below refuses,
  // so no login would ever succeed in a real browser. same-origin sends nothing to other sites.
  'referrer-policy': 'same-origin',
};

/** HTML-escapes text for element content and double-quoted attributes. */
export function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/** A complete page; `body` must already be escaped. */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${esc(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;margin:.4rem 0}input{width:100%;padding:.4rem}button{padding:.4rem 1rem}
.err{color:#b00020}code{background:#eee;padding:0 .2rem}</style></head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'content-length': String(Buffer.byteLength(html)) });
  res.end(html);
}

function csrfToken(key: string, uid: string): string {
  return createHmac('sha256', key).update(`gatehouse-csrf\n${uid}`).digest('base64url');
}

function csrfValid(key: string, uid: string, given: string | undefined): boolean {
  if (!given) return false;
  const a = Buffer.from(csrfToken(key, uid));
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new Error('expected a form (application/x-www-form-urlencoded)');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

interface ConsentDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

/** Handles GET/POST under {@link INTERACTION_PATH}. */
export async function handleInteraction(
  deps: InteractionDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '').split('?', 1)[0] ?? '';
  const [uid = '', action = ''] = path.slice(INTERACTION_PATH.length).split('/');
  let details: Details;
  try {
    details = await deps.provider.interactionDetails(req, res);
  } catch (err) {
    deps.log.info({ err: (err as Error).message }, 'interaction not found');
    send(
      res,
      400,
      page(
        'Sign-in expired',
        '<p>This sign-in request is no longer valid. Start again from your application.</p>',
      ),
    );
    return;
  }
  if (details.uid !== uid) {
    send(
      res,
      400,
      page('Sign-in expired', '<p>This sign-in request does not match your browser session.</p>'),
    );
    return;
  }
  const prompt = details.prompt.name;
  if (req.method === 'GET' && action === '') {
    if (prompt === 'login') {
      // Back from a failed upstream login (the callback redirects here): one fixed message, nothing reflected.
      const failed = new URL(req.url ?? '/', 'http://as.invalid').searchParams.get('error') === 'idp';
      const error = failed && deps.idp ? `Sign-in through ${deps.idp.name} failed. Try again.` : undefined;
      return send(res, 200, loginPage(deps, details, error));
    }
    if (prompt === 'consent') {
      if (deps.devAutoConsent) return finishConsent(deps, req, res, details);
      return send(res, 200, await consentPage(deps, details));
    }
    send(res, 400, page('Unsupported request', `<p>unsupported interaction prompt ${esc(prompt)}</p>`));
    return;
  }
  if (
    req.method !== 'POST' ||
    (action !== 'login' && action !== 'confirm' && action !== 'abort' && action !== 'idp')
  ) {
    send(res, 405, page('Not allowed', '<p>method not allowed</p>'));
    return;
  }
  // A cross-site POST never reaches the handlers: SameSite=Lax cookies already stop
  // most of them, the Origin check and the CSRF token stop the rest.
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null' && origin !== deps.origin) {
    send(res, 403, page('Forbidden', '<p>cross-origin form submission refused</p>'));
    return;
  }
  if (origin === 'null') {
    send(res, 403, page('Forbidden', '<p>cross-origin form submission refused</p>'));
    return;
  }
  let form: URLSearchParams;
  try {
    form = await readForm(req);
  } catch (err) {
    send(res, 400, page('Bad request', `<p>${esc((err as Error).message)}</p>`));
    return;
  }
  if (!csrfValid(deps.csrfKey, details.uid, form.get('csrf') ?? undefined)) {
    send(res, 403, page('Forbidden', '<p>invalid or missing csrf token</p>'));
    return;
  }
  if (action === 'abort') {
    const result: InteractionResults = {
      error: 'access_denied',
      error_description: 'the user denied the request',
    };
    await deps.provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    return;
  }
  if (action === 'login' || action === 'idp') {
    if (prompt !== 'login') {
      send(res, 400, page('Bad request', '<p>this request is not waiting for a sign-in</p>'));
      return;
    }
    if (action === 'idp') return beginIdpLogin(deps, req, res, details);
    if (!deps.localUsers) {
      send(res, 403, page('Forbidden', '<p>sign-in with a local password is turned off</p>'));
      return;
    }
    return passwordLogin(deps, req, res, details, form);
  }
  if (prompt !== 'consent') {
    send(res, 400, page('Bad request', '<p>this request is not waiting for consent</p>'));
    return;
  }
  await finishConsent(deps, req, res, details);
}

/** The username/password form: throttled, constant-cost, one answer for every failure. */
async function passwordLogin(
  deps: InteractionDeps,
  req: IncomingMessage,
  res: ServerResponse,
  details: Details,
  form: URLSearchParams,
): Promise<void> {
  const username = form.get('username') ?? '';
  const password = form.get('password') ?? '';
  const client = typeof details.params['client_id'] === 'string' ? details.params['client_id'] : undefined;
  const address = addressKey(req.socket.remoteAddress);
  const typed = typedUsername(username);
  // Counted before the password is checked, so parallel guesses cannot all slip under the limit. The
  // key is the name as typed: a lockout looks the same whether or not the user exists.
  const verdict = deps.limiter.attempt([
    { dimension: 'user', value: usernameKey(username), resetOnSuccess: true },
    { dimension: 'address', value: address },
  ]);
  if (!verdict.allowed) {
    deps.onFailure({
      kind: 'password',
      reason: 'rate_limited',
      client,
      username: typed,
      address,
      repeat: !verdict.firstRefusal,
    });
    deps.log.info({ username: typed, address, client }, 'login refused: too many failed attempts');
    res.setHeader('retry-after', String(verdict.retryAfterSec));
    send(res, 429, loginPage(deps, details, TOO_MANY_ATTEMPTS));
    return;
  }
  const user = await checkLocalPassword(deps.storage.users, username, password);
  if (!user) {
    deps.onFailure({ kind: 'password', reason: 'bad_credentials', client, username: typed, address });
    deps.log.info({ username: typed, address, client }, 'login failed');
    send(res, 401, loginPage(deps, details, BAD_CREDENTIALS));
    return;
  }
  verdict.succeeded();
  deps.log.info({ username, client }, 'user logged in');
  await deps.provider.interactionFinished(
    req,
    res,
    { login: { accountId: user.username, amr: ['pwd'] } },
    { mergeWithLastSubmission: false },
  );
}

/** "Sign in with <IdP>": off to the provider, with state, nonce and PKCE, the state bound to this browser. */
async function beginIdpLogin(
  deps: InteractionDeps,
  req: IncomingMessage,
  res: ServerResponse,
  details: Details,
): Promise<void> {
  const client = typeof details.params['client_id'] === 'string' ? details.params['client_id'] : undefined;
  if (!deps.idp) {
    send(res, 404, page('Not found', '<p>no identity provider is configured</p>'));
    return;
  }
  let start: { location: string; browser: string };
  try {
    start = await deps.idp.begin(details.uid, client ?? '');
  } catch (err) {
    const detail = (err as Error).message;
    deps.log.warn({ err: detail }, 'upstream identity provider unavailable');
    deps.onFailure({
      kind: 'idp',
      reason: 'idp_unavailable',
      client,
      username: undefined,
      address: addressKey(req.socket.remoteAddress),
      detail,
    });
    send(
      res,
      502,
      page('Sign-in unavailable', `<p>${esc(deps.idp.name)} cannot be reached. Try again later.</p>`),
    );
    return;
  }
  res.setHeader('set-cookie', idpCookie(deps, start.browser, 600));
  res.writeHead(303, { location: start.location, 'cache-control': 'no-store', 'content-length': '0' });
  res.end();
}

function idpCookie(deps: InteractionDeps, value: string, maxAge: number): string {
  // HttpOnly, SameSite=Lax (sent on the provider's top-level redirect back), scoped to the callback.
  return `${deps.idpCookie}=${value}; Path=/oauth/idp; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${deps.secure ? '; Secure' : ''}`;
}

function cookieValue(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/**
 * The provider's answer at `/oauth/idp/callback`: on success the user (created or updated, bound to
 * the provider's `iss` and `sub`) is logged in to the interaction that started it; every failure is
 * reported and sends the browser back to the login page.
 */
export async function handleIdpCallback(
  deps: InteractionDeps,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const idp = deps.idp;
  if (!idp || req.method !== 'GET') {
    send(res, 404, page('Not found', '<p>no such page</p>'));
    return;
  }
  const query = new URL(req.url ?? '/', 'http://as.invalid').searchParams;
  const result = await idp.complete(query, cookieValue(req, deps.idpCookie));
  res.setHeader('set-cookie', idpCookie(deps, '', 0));
  const address = addressKey(req.socket.remoteAddress);
  const fail = (
    reason: IdpFailureReason,
    uid: string | undefined,
    client: string | undefined,
    detail?: string,
    username?: string,
  ): void => {
    deps.onFailure({ kind: 'idp', reason, client, username, address, detail });
    deps.log.info(
      { reason, detail, client, username, address },
      'login through the identity provider failed',
    );
    if (uid === undefined) {
      send(
        res,
        400,
        page(
          'Sign-in expired',
          '<p>This sign-in is unknown, used or expired. Start again from your application.</p>',
        ),
      );
      return;
    }
    res.writeHead(303, {
      location: `${INTERACTION_PATH}${encodeURIComponent(uid)}?error=idp`,
      'content-length': '0',
    });
    res.end();
  };
  if (!result.ok) return fail(result.reason, result.uid, result.clientId, result.detail);
  const { identity, uid, clientId } = result;
  const interaction = await deps.provider.Interaction.find(uid);
  if (interaction?.prompt.name !== 'login') return fail('bad_state', undefined, clientId, 'interaction gone');
  const put = await deps.storage.users.putExternal(
    identity.username,
    {
      issuer: identity.issuer,
      subject: identity.subject,
      tenant: identity.tenant,
      groups: identity.groups,
      updatedAt: Date.now(),
    },
    Date.now(),
  );
  if (put === 'conflict') {
    // A local user or another identity of the provider already has this name: never taken over.
    return fail('account_conflict', uid, clientId, 'the name belongs to another user', identity.username);
  }
  deps.log.info(
    { username: identity.username, client: clientId, idp: idp.issuer, put },
    'user logged in through the identity provider',
  );
  interaction.result = { login: { accountId: identity.username } };
  await interaction.save(Math.max(1, interaction.exp - Math.floor(Date.now() / 1000)));
  res.writeHead(303, { location: interaction.returnTo, 'content-length': '0' });
  res.end();
}

async function finishConsent(
  deps: InteractionDeps,
  req: IncomingMessage,
  res: ServerResponse,
  details: Details,
): Promise<void> {
  const { provider } = deps;
  const accountId = details.session?.accountId;
  const clientId = details.params['client_id'];
  if (!accountId || typeof clientId !== 'string') {
    send(res, 400, page('Bad request', '<p>sign in first</p>'));
    return;
  }
  const missing = details.prompt.details as ConsentDetails;
  const existing = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  const grant = existing ?? new provider.Grant({ accountId, clientId });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await deps.rememberGrant(accountId, clientId, grantId);
  deps.log.info({ user: accountId, client: clientId, auto: deps.devAutoConsent }, 'consent granted');
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

function loginPage(deps: InteractionDeps, details: Details, error: string | undefined): string {
  const csrf = csrfToken(deps.csrfKey, details.uid);
  const action = `${INTERACTION_PATH}${encodeURIComponent(details.uid)}`;
  const idp = deps.idp
    ? `<form method="post" action="${esc(action)}/idp"><input type="hidden" name="csrf" value="${esc(csrf)}">
<button type="submit">Sign in with ${esc(deps.idp.name)}</button></form>`
    : '';
  const local = deps.localUsers
    ? `<form method="post" action="${esc(action)}/login" autocomplete="on">
<input type="hidden" name="csrf" value="${esc(csrf)}">
<label>Username <input name="username" autocomplete="username" required${idp ? '' : ' autofocus'}></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>`
    : '';
  return page(
    'Sign in to Gatehouse',
    `${error ? `<p class="err">${esc(error)}</p>` : ''}
${idp}${idp && local ? '<p>or with a local account:</p>' : ''}${local}
<form method="post" action="${esc(action)}/abort"><input type="hidden" name="csrf" value="${esc(csrf)}">
<button type="submit">Cancel</button></form>`,
  );
}

async function consentPage(deps: InteractionDeps, details: Details): Promise<string> {
  const clientId = String(details.params['client_id'] ?? '');
  const client = await deps.provider.Client.find(clientId);
  const name = client?.clientName ?? clientId;
  const missing = details.prompt.details as ConsentDetails;
  const scopes = new Set<string>([
    ...(missing.missingOIDCScope ?? []),
    ...Object.values(missing.missingResourceScopes ?? {}).flat(),
  ]);
  const resources = Object.keys(missing.missingResourceScopes ?? {});
  let redirectHost = '';
  try {
    redirectHost = new URL(String(details.params['redirect_uri'] ?? '')).host;
  } catch {
    redirectHost = '(unknown)';
  }
  const csrf = csrfToken(deps.csrfKey, details.uid);
  const action = `${INTERACTION_PATH}${encodeURIComponent(details.uid)}`;
  // MCP 2026-07-28 (Client ID Metadata Document Security): "Client ID Metadata Documents cannot prevent
  // localhost URL impersonation by themselves"; servers "SHOULD display additional warnings for
  // localhost-only redirect URIs". Any program on the user's machine can claim such a client's name.
  // A metadata-document client is the one whose client_id is a URL (https; http only in development).
  const impersonable = /^https?:\/\//.test(clientId) && isLoopbackUrl(String(details.params['redirect_uri']));
  const warning = impersonable
    ? `<p class="err" id="localhost-warning">Warning: <strong>${esc(name)}</strong> describes itself at
<code>${esc(URL.parse(clientId)?.host ?? clientId)}</code>, but the authorization goes to a program on this computer
(<code>${esc(redirectHost)}</code>). Any program running here could use that name. Allow only if you just started this
sign-in from that application.</p>`
    : '';
  return page(
    'Authorize access',
    `<p><strong>${esc(name)}</strong>${name !== clientId ? ` (<code>${esc(clientId)}</code>)` : ''} wants to act for
<strong>${esc(details.session?.accountId ?? '')}</strong>.</p>
<p>Permissions requested:</p><ul>${[...scopes].map((s) => `<li><code>${esc(s)}</code></li>`).join('') || '<li>(none)</li>'}</ul>
${resources.length ? `<p>At: ${resources.map((r) => `<code>${esc(r)}</code>`).join(', ')}</p>` : ''}
<p>You will be sent back to <strong>${esc(redirectHost)}</strong>.</p>
${warning}<form method="post" action="${esc(action)}/confirm"><input type="hidden" name="csrf" value="${esc(csrf)}">
<button type="submit">Allow</button></form>
<form method="post" action="${esc(action)}/abort"><input type="hidden" name="csrf" value="${esc(csrf)}">
<button type="submit">Deny</button></form>`,
  );
}

/** True for an http(s) URL on a loopback host (127.0.0.0/8, [::1], localhost). */
function isLoopbackUrl(url: string): boolean {
  const host = URL.parse(url)?.hostname.toLowerCase();
  if (host === undefined) return false;
  return host === 'localhost' || host === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
