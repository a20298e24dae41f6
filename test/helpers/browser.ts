/**
 * A scripted "browser" for OAuth authorization-code flows against the embedded
 * authorization server: follows redirects, logs in with a local user, accepts
 * consent, and stops at the redirect to the client. Cookies are kept by hand.
 * It never executes anything: it only fetches http(s) URLs.
 */
import { browse, csrfOf, Jar, postForm } from '../auth/as-harness.ts';

export interface BrowserResult {
  /** The redirect to the client's redirect_uri (with code, state and iss). */
  redirect: URL;
  /** How many consent pages were shown. */
  consents: number;
}

/** Runs the browser part of the flow starting at `authorizationUrl`. */
export async function authorizeInBrowser(
  authorizationUrl: string,
  user: { username: string; password: string },
  opts: { jar?: Jar; stopAt?: (url: URL) => boolean } = {},
): Promise<BrowserResult> {
  const start = new URL(authorizationUrl);
  if (start.protocol !== 'http:' && start.protocol !== 'https:')
    throw new Error(`refusing to open ${start.protocol} URL`);
  const jar = opts.jar ?? new Jar();
  const origin = start.origin;
  let consents = 0;
  let current = authorizationUrl;
  let res = await browse(jar, current);
  for (let i = 0; i < 12; i++) {
    if (res.status === 200) {
      // An interaction page: the login form or the consent form, posted back to the page URL.
      const html = await res.text();
      const csrf = csrfOf(html);
      const page = current.replace(/\/$/, '');
      if (html.includes('name="password"')) res = await postForm(jar, `${page}/login`, { csrf, ...user });
      else {
        consents++;
        res = await postForm(jar, `${page}/confirm`, { csrf });
      }
      continue;
    }
    if (![302, 303].includes(res.status)) throw new Error(`unexpected ${res.status}: ${await res.text()}`);
    const next = new URL(res.headers.get('location') ?? '', origin);
    if (next.origin !== origin || opts.stopAt?.(next)) return { redirect: next, consents };
    current = next.href;
    res = await browse(jar, current);
  }
  throw new Error('too many redirects');
}

/**
 * A user completes a Gatehouse connect link (credentials/connect.ts) in a scripted browser: the login
 * at the embedded authorization server, Gatehouse's consent page (its HTML goes to `onConsentPage`),
 * the service's own authorization (`authorizeAtService`, e.g. the fake SaaS's `authorize`), and the
 * callback. Returns the callback's response.
 */
export async function completeConnectLink(
  link: string,
  user: { username: string; password: string },
  authorizeAtService: (url: string) => Promise<URL>,
  onConsentPage: (html: string) => void = () => {},
): Promise<Response> {
  const jar = new Jar();
  const open = await browse(jar, link);
  const login = await authorizeInBrowser(open.headers.get('location') ?? '', user, {
    jar,
    stopAt: (u) => u.pathname === '/connect/verified',
  });
  const html = await (await browse(jar, login.redirect.href)).text();
  onConsentPage(html);
  const consent = await postForm(jar, `${new URL(link).origin}${new URL(link).pathname}/consent`, {
    csrf: csrfOf(html),
    decision: 'allow',
  });
  const callback = await authorizeAtService(consent.headers.get('location') ?? '');
  return browse(jar, callback.href);
}
