/**
 * Embedded AS: authorization code + PKCE, consent, refresh rotation, resource
 * indicators. Browser steps are driven with fetch and a hand-rolled cookie jar.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  authorizeUrl,
  browse,
  codeFlow,
  csrfOf,
  Jar,
  pkce,
  postForm,
  registerPublic,
  startAs,
  type TestAs,
  tokenRequest,
  verifyAccessToken,
} from './as-harness.ts';

let t: TestAs;
before(async () => {
  t = await startAs();
});
after(async () => {
  await t.close();
});

const REDIRECT = 'http://127.0.0.1:9999/callback';

async function exchangeCode(clientId: string, code: string, verifier: string, redirectUri = REDIRECT) {
  return tokenRequest(t, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    client_id: clientId,
    code_verifier: verifier,
  });
}

test('T09 MCP authorization 2025-11-25 / OAuth 2.1 §4.1: code + PKCE S256 end to end, RFC 9207 iss, RFC 9068 JWT', async () => {
  const c = await registerPublic(t);
  const flow = await codeFlow(t, { client_id: c.client_id, redirect_uri: REDIRECT }, { state: 'xyz' });
  assert.equal(flow.redirect.origin + flow.redirect.pathname, REDIRECT);
  assert.equal(flow.redirect.searchParams.get('state'), 'xyz');
  // RFC 9207 §2: "the iss parameter [...] MUST be included"
  assert.equal(flow.redirect.searchParams.get('iss'), t.issuer);
  const code = flow.redirect.searchParams.get('code') ?? '';
  const tok = await exchangeCode(c.client_id, code, flow.verifier);
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  assert.equal(tok.body['token_type'], 'Bearer');
  assert.equal(tok.body['expires_in'], 300);
  // No long-lived credential unless asked for: refresh tokens need offline_access (OIDC Core §11).
  assert.equal(tok.body['refresh_token'], undefined, 'no refresh token without offline_access');
  const claims = await verifyAccessToken(t, String(tok.body['access_token']));
  assert.equal(claims.sub, 'alice');
  assert.equal(claims['client_id'], c.client_id);
  assert.equal(claims['scope'], 'mcp');
  assert.equal(claims.aud, t.resource, 'RFC 8707: default audience is our resource');
  assert.ok(claims.jti);
  assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 300, 'lifetime accessTokenTtlSec');
});

test('T06 RFC 7636 §4.4.1 / OAuth 2.1 §4.1.1: a missing code_challenge is rejected', async () => {
  const c = await registerPublic(t);
  const res = await browse(
    new Jar(),
    authorizeUrl(t, {
      client_id: c.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp',
      state: 's',
    }),
  );
  const loc = new URL(res.headers.get('location') ?? '', t.issuer);
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
  assert.match(loc.searchParams.get('error_description') ?? '', /PKCE|code_challenge/);
  assert.equal(loc.searchParams.get('code'), null);
});

test('T06 RFC 7636 §4.4.1: plain code_challenge_method is rejected', async () => {
  const c = await registerPublic(t);
  const { verifier } = pkce();
  const res = await browse(
    new Jar(),
    authorizeUrl(t, {
      client_id: c.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp',
      state: 's',
      code_challenge: verifier,
      code_challenge_method: 'plain',
    }),
  );
  const loc = new URL(res.headers.get('location') ?? '', t.issuer);
  assert.equal(loc.searchParams.get('error'), 'invalid_request');
  assert.equal(loc.searchParams.get('code'), null);
});

test('RFC 7636 §4.6: a wrong code_verifier is rejected with invalid_grant', async () => {
  const c = await registerPublic(t);
  const flow = await codeFlow(t, { client_id: c.client_id, redirect_uri: REDIRECT });
  const tok = await exchangeCode(c.client_id, flow.redirect.searchParams.get('code') ?? '', pkce().verifier);
  assert.equal(tok.status, 400);
  assert.equal(tok.body['error'], 'invalid_grant');
});

test('T06 OAuth 2.1 §4.1.3: an authorization code is single use; replay is invalid_grant and revokes its tokens', async () => {
  const c = await registerPublic(t);
  const flow = await codeFlow(
    t,
    { client_id: c.client_id, redirect_uri: REDIRECT },
    { scope: 'mcp offline_access' },
  );
  const code = flow.redirect.searchParams.get('code') ?? '';
  const first = await exchangeCode(c.client_id, code, flow.verifier);
  assert.equal(first.status, 200);
  assert.equal(typeof first.body['refresh_token'], 'string', 'offline_access was granted');
  const replay = await exchangeCode(c.client_id, code, flow.verifier);
  assert.equal(replay.status, 400);
  assert.equal(replay.body['error'], 'invalid_grant');
  // "the authorization server [...] SHOULD revoke all tokens previously issued based on that code"
  const refreshed = await tokenRequest(t, {
    grant_type: 'refresh_token',
    refresh_token: String(first.body['refresh_token']),
    client_id: c.client_id,
  });
  assert.equal(refreshed.status, 400, 'the refresh token of the replayed code is revoked');
  assert.equal(refreshed.body['error'], 'invalid_grant');
});

test('OAuth 2.1 §4.1.3: redirect_uri at the token endpoint must match the authorization request', async () => {
  const c = await registerPublic(t, { redirect_uris: [REDIRECT, 'http://127.0.0.1:9999/other'] });
  const flow = await codeFlow(t, { client_id: c.client_id, redirect_uri: REDIRECT });
  const tok = await exchangeCode(
    c.client_id,
    flow.redirect.searchParams.get('code') ?? '',
    flow.verifier,
    'http://127.0.0.1:9999/other',
  );
  assert.equal(tok.status, 400);
  assert.equal(tok.body['error'], 'invalid_grant');
});

test('T05 OAuth 2.1 §2.3.1: redirect URIs are matched exactly (no prefix, no extra path or query)', async () => {
  const c = await registerPublic(t);
  for (const bad of [
    `${REDIRECT}/extra`,
    `${REDIRECT}?x=1`,
    'http://127.0.0.1:9999/callbac',
    'https://evil.example/callback',
  ]) {
    const res = await browse(
      new Jar(),
      authorizeUrl(t, {
        client_id: c.client_id,
        redirect_uri: bad,
        response_type: 'code',
        scope: 'mcp',
        state: 's',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      }),
    );
    // Never redirected to an unregistered URI: the error is shown by the AS itself.
    assert.equal(res.status, 400, bad);
    assert.equal(res.headers.get('location'), null, bad);
    assert.match(await res.text(), /redirect_uri/);
  }
});

test('RFC 8707 §2: a resource indicator for another audience is invalid_target', async () => {
  const c = await registerPublic(t);
  const res = await browse(
    new Jar(),
    authorizeUrl(t, {
      client_id: c.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp',
      state: 's',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
      resource: 'https://other.example/mcp',
    }),
  );
  const loc = new URL(res.headers.get('location') ?? '', t.issuer);
  assert.equal(loc.searchParams.get('error'), 'invalid_target');
});

test('RFC 8707 §2.2: the token request may name our resource; aud is that resource', async () => {
  const c = await registerPublic(t);
  const flow = await codeFlow(
    t,
    { client_id: c.client_id, redirect_uri: REDIRECT },
    { resource: t.resource, scope: 'mcp offline_access' },
  );
  const tok = await tokenRequest(t, {
    grant_type: 'authorization_code',
    code: flow.redirect.searchParams.get('code') ?? '',
    redirect_uri: REDIRECT,
    client_id: c.client_id,
    code_verifier: flow.verifier,
    resource: t.resource,
  });
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  assert.equal((await verifyAccessToken(t, String(tok.body['access_token']))).aud, t.resource);
  const bad = await tokenRequest(t, {
    grant_type: 'refresh_token',
    refresh_token: String(tok.body['refresh_token']),
    client_id: c.client_id,
    resource: 'https://other.example/mcp',
  });
  assert.equal(bad.body['error'], 'invalid_target');
});

test('OAuth 2.1 §4.3.1: refresh tokens of public clients rotate; the old one is rejected after use', async () => {
  const c = await registerPublic(t);
  const flow = await codeFlow(
    t,
    { client_id: c.client_id, redirect_uri: REDIRECT },
    { scope: 'mcp offline_access' },
  );
  const tok = await exchangeCode(c.client_id, flow.redirect.searchParams.get('code') ?? '', flow.verifier);
  const rt1 = String(tok.body['refresh_token']);
  const r2 = await tokenRequest(t, {
    grant_type: 'refresh_token',
    refresh_token: rt1,
    client_id: c.client_id,
  });
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  const rt2 = String(r2.body['refresh_token']);
  assert.notEqual(rt2, rt1, 'a new refresh token');
  const claims = await verifyAccessToken(t, String(r2.body['access_token']));
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.aud, t.resource);
  const reuse = await tokenRequest(t, {
    grant_type: 'refresh_token',
    refresh_token: rt1,
    client_id: c.client_id,
  });
  assert.equal(reuse.status, 400);
  assert.equal(reuse.body['error'], 'invalid_grant');
  // Reuse of a rotated token revokes the family (OAuth 2.1 §4.3.1 / RFC 9700 §4.14.2).
  const after = await tokenRequest(t, {
    grant_type: 'refresh_token',
    refresh_token: rt2,
    client_id: c.client_id,
  });
  assert.equal(after.body['error'], 'invalid_grant');
});

test('OAuth 2.1 §7.5.4 / login page: not framable, CSRF token bound to the interaction, cookies HttpOnly SameSite=Lax', async () => {
  const c = await registerPublic(t);
  const jar = new Jar();
  const start = await browse(
    jar,
    authorizeUrl(t, {
      client_id: c.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp',
      state: 's',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
    }),
  );
  const cookieLines = Jar.lines(start);
  assert.ok(cookieLines.length > 0);
  for (const line of cookieLines) {
    assert.match(line, /httponly/i, line);
    assert.match(line, /samesite=lax/i, line);
    assert.doesNotMatch(line, /^__Host-/, 'plain-http loopback: no prefixed names');
  }
  const interaction = new URL(start.headers.get('location') ?? '', t.issuer).href;
  const page = await browse(jar, interaction);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  const csrf = csrfOf(await page.text());
  const creds = { username: 'alice', password: 'correct horse battery' };
  const noCsrf = await postForm(jar, `${interaction}/login`, creds);
  assert.equal(noCsrf.status, 403, 'missing csrf');
  const wrong = await postForm(jar, `${interaction}/login`, { ...creds, csrf: `${csrf.slice(0, -2)}AA` });
  assert.equal(wrong.status, 403, 'wrong csrf');
  const crossSite = await postForm(
    jar,
    `${interaction}/login`,
    { ...creds, csrf },
    { origin: 'https://evil.example' },
  );
  assert.equal(crossSite.status, 403, 'cross-site origin');
  const noCookie = await postForm(new Jar(), `${interaction}/login`, { ...creds, csrf });
  assert.equal(noCookie.status, 400, 'the interaction cookie is required');
  const badPassword = await postForm(jar, `${interaction}/login`, {
    ...creds,
    password: 'wrong password',
    csrf,
  });
  assert.equal(badPassword.status, 401);
  const unknownUser = await postForm(jar, `${interaction}/login`, { ...creds, username: 'mallory', csrf });
  assert.equal(unknownUser.status, 401);
  const ok = await postForm(jar, `${interaction}/login`, { ...creds, csrf });
  assert.equal(ok.status, 303);
});

test('T05 OAuth 2.1 §7.12 / consent: the page shows client, scopes and redirect host; replaying the consent or resume fails', async () => {
  const c = await registerPublic(t, { client_name: 'Replay <Client>' });
  const jar = new Jar();
  const { challenge } = pkce();
  let res = await browse(
    jar,
    authorizeUrl(t, {
      client_id: c.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp tools:write',
      state: 's',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }),
  );
  let url = new URL(res.headers.get('location') ?? '', t.issuer).href;
  res = await browse(jar, url);
  res = await postForm(jar, `${url}/login`, {
    username: 'alice',
    password: 'correct horse battery',
    csrf: csrfOf(await res.text()),
  });
  res = await browse(jar, new URL(res.headers.get('location') ?? '', t.issuer).href);
  url = new URL(res.headers.get('location') ?? '', t.issuer).href;
  assert.match(url, /\/oauth\/interaction\//);
  const consent = await browse(jar, url);
  const html = await consent.text();
  assert.match(html, /Replay &lt;Client&gt;/, 'client name, escaped');
  assert.match(html, /<code>mcp<\/code>/);
  assert.match(html, /<code>tools:write<\/code>/);
  assert.match(html, /127\.0\.0\.1:9999/, 'redirect host');
  const csrf = csrfOf(html);
  res = await postForm(jar, `${url}/confirm`, { csrf });
  assert.equal(res.status, 303);
  const resume = new URL(res.headers.get('location') ?? '', t.issuer).href;
  res = await browse(jar, resume);
  const final = new URL(res.headers.get('location') ?? '');
  assert.ok(final.searchParams.get('code'));
  // Replays after the request completed.
  const again = await postForm(jar, `${url}/confirm`, { csrf });
  assert.equal(again.status, 400, 'consent replay refused');
  const resumeAgain = await browse(jar, resume);
  assert.equal(resumeAgain.status, 400, 'resume replay refused');
  assert.equal(resumeAgain.headers.get('location'), null, 'no second code');
});

test('consent is remembered per user and client (oidc-provider Grant), also across login sessions', async () => {
  const c = await registerPublic(t);
  const first = await codeFlow(t, { client_id: c.client_id, redirect_uri: REDIRECT });
  assert.ok(first.consent, 'consent asked the first time');
  const sameSession = await codeFlow(
    t,
    { client_id: c.client_id, redirect_uri: REDIRECT },
    { jar: first.jar },
  );
  assert.equal(sameSession.consent, undefined, 'not asked again in the same session');
  assert.equal(sameSession.login, undefined, 'still logged in');
  const newSession = await codeFlow(t, { client_id: c.client_id, redirect_uri: REDIRECT });
  assert.ok(newSession.login, 'a new session logs in');
  assert.equal(newSession.consent, undefined, 'but consent is remembered');
  const wider = await codeFlow(
    t,
    { client_id: c.client_id, redirect_uri: REDIRECT },
    { scope: 'mcp tools:write' },
  );
  assert.ok(wider.consent, 'a wider scope asks again');
});

test('consent: denying returns access_denied to the client', async () => {
  const c = await registerPublic(t);
  const jar = new Jar();
  let res = await browse(
    jar,
    authorizeUrl(t, {
      client_id: c.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp',
      state: 's',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
    }),
  );
  const url = new URL(res.headers.get('location') ?? '', t.issuer).href;
  res = await browse(jar, url);
  res = await postForm(jar, `${url}/abort`, { csrf: csrfOf(await res.text()) });
  res = await browse(jar, new URL(res.headers.get('location') ?? '', t.issuer).href);
  const final = new URL(res.headers.get('location') ?? '');
  assert.equal(final.searchParams.get('error'), 'access_denied');
  assert.equal(final.searchParams.get('iss'), t.issuer);
});

test('dev auto-consent: the consent page is skipped, the login is not', async () => {
  const dev = await startAs({ config: { devAutoConsent: true } });
  try {
    const c = await registerPublic(dev);
    const flow = await codeFlow(dev, { client_id: c.client_id, redirect_uri: REDIRECT });
    assert.ok(flow.login, 'login still required');
    assert.equal(flow.consent, undefined, 'no consent page');
    assert.ok(flow.redirect.searchParams.get('code'));
  } finally {
    await dev.close();
  }
});
