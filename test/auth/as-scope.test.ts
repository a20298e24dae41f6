/**
 * Embedded AS: the `scope` and `resource` of an authorization request in every variant a client may
 * send (RFC 6749 §3.1 and §3.3, RFC 8707 §2, MCP 2026-07-28 "Scope Selection Strategy" and "Canonical
 * Server URI"), and `iss` on error responses (RFC 9207 §2). Logins by the scripted browser.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { authorizeInBrowser } from '../helpers/browser.ts';
import { pkce, startAs, type TestAs, tokenRequest, verifyAccessToken } from './as-harness.ts';

const REDIRECT = 'http://127.0.0.1:9999/callback';
const USER = { username: 'alice', password: 'correct horse battery' };
const PUBLIC = 'scope-client';
/** A pre-registered client limited to `tools:write` (the default `mcp` is outside it). */
const NARROW = 'narrow-client';

let t: TestAs;
before(async () => {
  t = await startAs({
    config: {
      clients: [
        { clientId: PUBLIC, redirectUris: [REDIRECT], grantTypes: ['authorization_code', 'refresh_token'] },
        {
          clientId: NARROW,
          redirectUris: [REDIRECT],
          grantTypes: ['authorization_code'],
          scope: 'tools:write',
        },
      ],
    },
  });
});
after(async () => {
  await t.close();
});

type Params = [string, string][];

/** An authorization request with the given extra parameters (repeatable), driven through login and consent. */
async function authorize(
  extra: Params,
  o: { as?: TestAs; clientId?: string; resource?: string | null } = {},
): Promise<{ redirect: URL; verifier: string; consents: number }> {
  const as = o.as ?? t;
  const { verifier, challenge } = pkce();
  const u = new URL(as.url('/oauth/authorize'));
  const base: Params = [
    ['client_id', o.clientId ?? PUBLIC],
    ['redirect_uri', REDIRECT],
    ['response_type', 'code'],
    ['state', 'st-1'],
    ['code_challenge', challenge],
    ['code_challenge_method', 'S256'],
  ];
  if (o.resource !== null) base.push(['resource', o.resource ?? as.resource]);
  for (const [k, v] of [...base, ...extra]) u.searchParams.append(k, v);
  const { redirect, consents } = await authorizeInBrowser(u.href, USER);
  assert.equal(redirect.origin + redirect.pathname, REDIRECT, redirect.href);
  return { redirect, verifier, consents };
}

/** Completes the flow: the code is exchanged; returns the token response and the access token's claims. */
async function issued(extra: Params, o: Parameters<typeof authorize>[1] = {}) {
  const as = o.as ?? t;
  const { redirect, verifier } = await authorize(extra, o);
  const code = redirect.searchParams.get('code');
  assert.ok(code, `expected a code, got ${redirect.search}`);
  const tok = await tokenRequest(as, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    client_id: o.clientId ?? PUBLIC,
    code_verifier: verifier,
  });
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  const claims = await verifyAccessToken(as, String(tok.body['access_token']));
  return { body: tok.body, claims };
}

/** An error response to the client: its code, with `state` and RFC 9207 `iss`, and no code. */
async function refused(extra: Params, o: Parameters<typeof authorize>[1] = {}): Promise<URL> {
  const { redirect, consents } = await authorize(extra, o);
  assert.equal(redirect.searchParams.get('code'), null, redirect.href);
  assert.equal(redirect.searchParams.get('state'), 'st-1');
  // RFC 9207 §2: "the iss parameter [...] MUST be included" in error responses too (MCP 2026-07-28).
  assert.equal(redirect.searchParams.get('iss'), (o.as ?? t).issuer);
  assert.equal(consents, 0, 'refused before consent');
  return redirect;
}

test('RFC 6749 §3.3: an authorization request without scope gets the default (auth.requiredScopes), as the conformance suite sends it', async () => {
  const { body, claims } = await issued([]);
  assert.equal(claims['scope'], 'mcp');
  assert.equal(claims.aud, t.resource);
  // RFC 6749 §5.1: the token response says what was issued.
  assert.equal(body['scope'], 'mcp');
});

test('RFC 6749 §3.3: an empty scope parameter is an omitted one', async () => {
  const { claims } = await issued([['scope', '']]);
  assert.equal(claims['scope'], 'mcp');
});

test('RFC 6749 §3.3: a named scope is taken as asked (no defaults added to it); duplicates collapse', async () => {
  assert.equal((await issued([['scope', 'tools:write']])).claims['scope'], 'tools:write');
  assert.equal((await issued([['scope', 'mcp tools:write mcp']])).claims['scope'], 'mcp tools:write');
});

test('RFC 6749 §3.3: unknown scopes next to known ones are ignored, and the token response says so', async () => {
  const { body, claims } = await issued([['scope', 'mcp repo:admin']]);
  assert.equal(claims['scope'], 'mcp');
  assert.equal(body['scope'], 'mcp');
});

test('T04 RFC 6749 §4.1.2.1: only unknown scopes are invalid_scope, never widened to the defaults', async () => {
  const r = await refused([['scope', 'repo:admin other']]);
  assert.equal(r.searchParams.get('error'), 'invalid_scope');
});

test('RFC 6749 §3.1: a repeated scope parameter is invalid_request', async () => {
  const r = await refused([
    ['scope', 'mcp'],
    ['scope', 'tools:write'],
  ]);
  assert.equal(r.searchParams.get('error'), 'invalid_request');
  assert.match(r.searchParams.get('error_description') ?? '', /scope/);
});

test('RFC 6749 §3.3: a scope outside the grammar (doubled space, quote, control character) is invalid_scope', async () => {
  for (const scope of ['mcp  tools:write', ' mcp', 'mcp "x"', 'mcp\u0001', 'mcp\ttools:write']) {
    const r = await refused([['scope', scope]]);
    assert.equal(r.searchParams.get('error'), 'invalid_scope', JSON.stringify(scope));
  }
});

test('MCP 2026-07-28: offline_access alone is not a resource scope: the default is added, a refresh token only with consent asked for', async () => {
  const plain = await issued([['scope', 'offline_access']]);
  assert.equal(plain.claims['scope'], 'mcp');
  assert.equal(plain.body['refresh_token'], undefined, 'OIDC Core §11: no prompt=consent, no refresh token');
  const asked = await issued([
    ['scope', 'offline_access'],
    ['prompt', 'consent'],
  ]);
  assert.equal(asked.claims['scope'], 'mcp');
  assert.equal(typeof asked.body['refresh_token'], 'string');
});

test('T04: a client registered with a scope list never gets a default outside it', async () => {
  const r = await refused([], { clientId: NARROW });
  assert.equal(r.searchParams.get('error'), 'invalid_scope');
  const named = await issued([['scope', 'tools:write']], { clientId: NARROW });
  assert.equal(named.claims['scope'], 'tools:write');
  const outside = await refused([['scope', 'mcp']], { clientId: NARROW });
  assert.equal(outside.searchParams.get('error'), 'invalid_scope');
});

test('RFC 6749 §3.3: with no default configured (requiredScopes: []) an omitted scope is invalid_scope', async () => {
  const bare = await startAs({
    defaultScopes: [],
    config: { clients: [{ clientId: PUBLIC, redirectUris: [REDIRECT], grantTypes: ['authorization_code'] }] },
  });
  try {
    const r = await refused([], { as: bare });
    assert.equal(r.searchParams.get('error'), 'invalid_scope');
    assert.equal((await issued([['scope', 'mcp']], { as: bare })).claims['scope'], 'mcp');
  } finally {
    await bare.close();
  }
});

test('RFC 8707 §2: without a resource parameter the token is for our resource', async () => {
  const { claims } = await issued([['scope', 'mcp']], { resource: null });
  assert.equal(claims.aud, t.resource);
});

test('MCP 2026-07-28 canonical URI: uppercase scheme and host are accepted; the audience stays canonical', async () => {
  const u = new URL(t.resource);
  const upper = `HTTP://${u.host.toUpperCase()}${u.pathname}`;
  const { claims } = await issued([['scope', 'mcp']], { resource: upper });
  assert.equal(claims.aud, t.resource);
});

test('T02 RFC 8707 §2: every other resource variant is invalid_target (path, slash, port, fragment, relative, userinfo, second resource)', async () => {
  const u = new URL(t.resource);
  const variants: Params[] = [
    [['resource', `${t.resource}/`]],
    [['resource', `${u.origin}/MCP`]],
    [['resource', `${u.origin}/x/../mcp`]],
    [['resource', `${u.origin}/%6Dcp`]],
    [['resource', `${t.resource}?x=1`]],
    [['resource', `${u.protocol}//${u.hostname}:${Number(u.port) + 1}/mcp`]],
    [['resource', `${t.resource}#frag`]],
    [['resource', '/mcp']],
    [['resource', `${u.protocol}//user@${u.host}/mcp`]],
    [['resource', u.origin]],
    [['resource', 'https://other.example/mcp']],
    [
      ['resource', t.resource],
      ['resource', 'https://other.example/mcp'],
    ],
  ];
  for (const extra of variants) {
    const r = await refused([['scope', 'mcp'], ...extra], { resource: null });
    assert.equal(r.searchParams.get('error'), 'invalid_target', JSON.stringify(extra));
  }
});
