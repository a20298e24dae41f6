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
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { InteractionResults } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Storage } from '../../storage/types.ts';
import { dummyHash, verifyPassword } from './passwords.ts';

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
}

/** Headers every AS page carries. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
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
    if (prompt === 'login') return send(res, 200, loginPage(deps, details, undefined));
    if (prompt === 'consent') {
      if (deps.devAutoConsent) return finishConsent(deps, req, res, details);
      return send(res, 200, await consentPage(deps, details));
    }
    send(res, 400, page('Unsupported request', `<p>unsupported interaction prompt ${esc(prompt)}</p>`));
    return;
  }
  if (req.method !== 'POST' || (action !== 'login' && action !== 'confirm' && action !== 'abort')) {
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
  if (action === 'login') {
    if (prompt !== 'login') {
      send(res, 400, page('Bad request', '<p>this request is not waiting for a sign-in</p>'));
      return;
    }
    const username = form.get('username') ?? '';
    const password = form.get('password') ?? '';
    const user = username ? await deps.storage.users.get(username) : undefined;
    // Verify against a dummy hash when the user does not exist, so timing does not reveal usernames.
    const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash()));
    if (!user || !ok) {
      deps.log.info({ username, client: details.params['client_id'] }, 'login failed');
      send(res, 401, loginPage(deps, details, 'Invalid username or password.'));
      return;
    }
    deps.log.info({ username, client: details.params['client_id'] }, 'user logged in');
    await deps.provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.username, amr: ['pwd'] } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  if (prompt !== 'consent') {
    send(res, 400, page('Bad request', '<p>this request is not waiting for consent</p>'));
    return;
  }
  await finishConsent(deps, req, res, details);
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
  return page(
    'Sign in to Gatehouse',
    `${error ? `<p class="err">${esc(error)}</p>` : ''}
<form method="post" action="${esc(action)}/login" autocomplete="on">
<input type="hidden" name="csrf" value="${esc(csrf)}">
<label>Username <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>
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
  return page(
    'Authorize access',
    `<p><strong>${esc(name)}</strong>${name !== clientId ? ` (<code>${esc(clientId)}</code>)` : ''} wants to act for
<strong>${esc(details.session?.accountId ?? '')}</strong>.</p>
<p>Permissions requested:</p><ul>${[...scopes].map((s) => `<li><code>${esc(s)}</code></li>`).join('') || '<li>(none)</li>'}</ul>
${resources.length ? `<p>At: ${resources.map((r) => `<code>${esc(r)}</code>`).join(', ')}</p>` : ''}
<p>You will be sent back to <strong>${esc(redirectHost)}</strong>.</p>
<form method="post" action="${esc(action)}/confirm"><input type="hidden" name="csrf" value="${esc(csrf)}">
<button type="submit">Allow</button></form>
<form method="post" action="${esc(action)}/abort"><input type="hidden" name="csrf" value="${esc(csrf)}">
<button type="submit">Deny</button></form>`,
  );
}
