/**
 * Embedded AS: dynamic client registration (RFC 7591), redirect URI rules,
 * pre-registered clients, and Client ID Metadata Documents.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import {
  authorizeUrl,
  browse,
  codeFlow,
  csrfOf,
  Jar,
  pkce,
  postForm,
  register,
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

test('RFC 7591 §3.2.1: a public client registers and receives a client_id', async () => {
  const c = await registerPublic(t, {
    redirect_uris: ['http://localhost:3000/cb', 'http://[::1]:4000/cb', 'https://app.example/cb'],
  });
  assert.ok(c.client_id);
  assert.equal(c.client_secret, undefined, 'public client: no secret');
  assert.deepEqual(c.redirect_uris, [
    'http://localhost:3000/cb',
    'http://[::1]:4000/cb',
    'https://app.example/cb',
  ]);
});

test('T08 MCP authorization §communication security: javascript:, file:, data:, custom-scheme and non-loopback http redirect URIs are rejected at registration', async () => {
  for (const uri of [
    'javascript:alert(document.cookie)',
    'file:///etc/passwd',
    'data:text/html,hi',
    'myapp://callback',
    'http://evil.example/callback',
    'http://127.0.0.1.evil.example/cb',
    'https://app.example/cb#frag',
  ]) {
    for (const application_type of ['web', 'native']) {
      const res = await register(t, { redirect_uris: [uri], application_type });
      assert.equal(res.status, 400, `${uri} (${application_type})`);
      const body = (await res.json()) as { error: string };
      assert.match(body.error, /invalid_redirect_uri|invalid_client_metadata/, uri);
    }
  }
});

test('RFC 7591 §2: self-registered clients cannot take client_credentials or token exchange', async () => {
  for (const grant of ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange']) {
    const res = await register(t, {
      grant_types: ['authorization_code', grant],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    assert.equal(res.status, 400, grant);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_client_metadata');
  }
});

test('pre-registered clients: a bad redirect URI in the config is refused at start', async () => {
  await assert.rejects(
    startAs({ config: { clients: [{ clientId: 'bad', redirectUris: ['javascript:alert(1)'] }] } }),
    /must use https or loopback http/,
  );
  await assert.rejects(
    startAs({
      config: { clients: [{ clientId: 'both', clientSecret: 'x', jwksUri: 'https://a.example/jwks' }] },
    }),
    /not both/,
  );
});

interface DocServer {
  base: string;
  hits: number;
  doc: Record<string, unknown> | undefined;
  close(): Promise<void>;
}

async function docServer(): Promise<DocServer> {
  const state: DocServer = {
    base: '',
    hits: 0,
    doc: undefined,
    close: async () => {},
  };
  const s = http.createServer((_req, res) => {
    state.hits++;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
    res.end(JSON.stringify(state.doc));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  state.base = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  state.close = () => {
    s.closeAllConnections();
    return new Promise((r) => s.close(() => r()));
  };
  return state;
}

test('MCP authorization §client ID metadata documents: a URL client_id is fetched and used (dev: http loopback allowed)', async () => {
  const docs = await docServer();
  const dev = await startAs({ config: { allowInsecureMetadataUrls: true } });
  try {
    const clientId = `${docs.base}/oauth/client.json`;
    docs.doc = {
      client_id: clientId,
      client_name: 'Metadata Document Client',
      redirect_uris: ['http://127.0.0.1:9999/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
    const flow = await codeFlow(dev, { client_id: clientId, redirect_uri: 'http://127.0.0.1:9999/callback' });
    const tok = await tokenRequest(dev, {
      grant_type: 'authorization_code',
      code: flow.redirect.searchParams.get('code') ?? '',
      redirect_uri: 'http://127.0.0.1:9999/callback',
      client_id: clientId,
      code_verifier: flow.verifier,
    });
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.equal((await verifyAccessToken(dev, String(tok.body['access_token'])))['client_id'], clientId);
    assert.equal(docs.hits, 1, 'the document is cached');
  } finally {
    await dev.close();
    await docs.close();
  }
});

/** The consent page a user sees for a client after logging in (nothing is submitted). */
async function consentHtml(as: TestAs, clientId: string, redirectUri: string): Promise<string> {
  const jar = new Jar();
  let res = await browse(
    jar,
    authorizeUrl(as, {
      client_id: clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'mcp',
      state: 's',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
    }),
  );
  for (let i = 0; i < 8; i++) {
    const loc = res.headers.get('location');
    if (res.status === 200) {
      const html = await res.text();
      if (!html.includes('name="password"')) return html;
      const page = res.url || '';
      res = await postForm(jar, `${page}/login`, {
        csrf: csrfOf(html),
        username: 'alice',
        password: 'correct horse battery',
      });
      continue;
    }
    assert.ok(loc, `expected a redirect, got ${res.status}`);
    res = await browse(jar, new URL(loc, as.issuer).href);
  }
  throw new Error('no consent page');
}

test('MCP 2026-07-28 CIMD security: the consent page warns when a metadata-document client redirects to localhost, and names the redirect host', async () => {
  const docs = await docServer();
  const dev = await startAs({
    config: {
      allowInsecureMetadataUrls: true,
      clients: [{ clientId: 'local-app', redirectUris: ['http://127.0.0.1:9999/callback'] }],
    },
  });
  try {
    const clientId = `${docs.base}/oauth/client.json`;
    docs.doc = {
      client_id: clientId,
      client_name: 'Metadata Document Client',
      redirect_uris: ['http://localhost:9999/callback', 'https://app.example/callback'],
      token_endpoint_auth_method: 'none',
    };
    const local = await consentHtml(dev, clientId, 'http://localhost:9999/callback');
    assert.match(local, /id="localhost-warning"/);
    assert.match(local, /localhost:9999/);
    const remote = await consentHtml(dev, clientId, 'https://app.example/callback');
    assert.doesNotMatch(remote, /localhost-warning/);
    assert.match(remote, /app\.example/);
    // A pre-registered client was vouched for by the operator: no warning.
    const preRegistered = await consentHtml(dev, 'local-app', 'http://127.0.0.1:9999/callback');
    assert.doesNotMatch(preRegistered, /localhost-warning/);
  } finally {
    await dev.close();
    await docs.close();
  }
});

test('CIMD draft §4.1: the document client_id must equal its URL, and shared secrets are refused', async () => {
  const docs = await docServer();
  const dev = await startAs({ config: { allowInsecureMetadataUrls: true } });
  try {
    const cb = ['http://127.0.0.1:9999/callback'];
    const cases: [string, (id: string) => Record<string, unknown>][] = [
      [
        '/mismatch.json',
        () => ({ client_id: 'https://someone-else.example/client.json', redirect_uris: cb }),
      ],
      ['/secret.json', (id) => ({ client_id: id, client_secret: 'x', redirect_uris: cb })],
      [
        '/shared-secret-auth.json',
        (id) => ({ client_id: id, token_endpoint_auth_method: 'client_secret_post', redirect_uris: cb }),
      ],
      ['/evil-redirect.json', (id) => ({ client_id: id, redirect_uris: ['javascript:alert(1)'] })],
    ];
    for (const [path, makeDoc] of cases) {
      const clientId = `${docs.base}${path}`;
      docs.doc = makeDoc(clientId);
      const res = await fetch(
        `${dev.url('/oauth/authorize')}?${new URLSearchParams({
          client_id: clientId,
          redirect_uri: 'http://127.0.0.1:9999/callback',
          response_type: 'code',
          scope: 'mcp',
          code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
          code_challenge_method: 'S256',
        })}`,
        { redirect: 'manual' },
      );
      assert.equal(res.status, 400, path);
      assert.equal(res.headers.get('location'), null, `${path}: never redirected`);
    }
  } finally {
    await dev.close();
    await docs.close();
  }
});

test('T07 CIMD draft §6: without the dev flag, an http or loopback client_id URL is never fetched', async () => {
  const docs = await docServer();
  try {
    const clientId = `${docs.base}/client.json`;
    docs.doc = { client_id: clientId, redirect_uris: ['http://127.0.0.1:9999/callback'] };
    const res = await fetch(
      `${t.url('/oauth/authorize')}?${new URLSearchParams({
        client_id: clientId,
        redirect_uri: 'http://127.0.0.1:9999/callback',
        response_type: 'code',
        scope: 'mcp',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      })}`,
      { redirect: 'manual' },
    );
    assert.equal(res.status, 400);
    assert.equal(docs.hits, 0, 'no request reached the document server');
    const httpsLoopback = await fetch(
      `${t.url('/oauth/authorize')}?${new URLSearchParams({ client_id: 'https://127.0.0.1/client.json', response_type: 'code' })}`,
      { redirect: 'manual' },
    );
    assert.equal(httpsLoopback.status, 400, 'https loopback client_id refused by the SSRF guard');
  } finally {
    await docs.close();
  }
});

test('T31 RFC 7591 §3.2.2: metadata of the wrong type or nested too deep is a 400, never a 500', async () => {
  const cases: Record<string, unknown>[] = [
    { redirect_uris: true },
    { redirect_uris: 'http://127.0.0.1:9999/callback' },
    { post_logout_redirect_uris: { a: 1 } },
    { grant_types: 'authorization_code' },
    { grant_types: [{ toString: [] }, 'refresh_token'] },
    { userinfo_signed_response_alg: { toString: {} } },
    { id_token_signed_response_alg: { valueOf: 1, toString: 'x' } },
  ];
  for (const meta of cases) {
    const res = await register(t, meta);
    assert.equal(res.status, 400, JSON.stringify(meta));
    const body = (await res.json()) as { error: string };
    assert.match(
      body.error,
      /invalid_client_metadata|invalid_redirect_uri|invalid_request/,
      JSON.stringify(meta),
    );
  }
  // JSON.stringify cannot write this much nesting: the body is built as text.
  const deep = `${'['.repeat(20_000)}"RS256"${']'.repeat(20_000)}`;
  const res = await fetch(t.url('/oauth/register'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"redirect_uris":["http://127.0.0.1:9999/callback"],"token_endpoint_auth_method":"none","id_token_signed_response_alg":${deep}}`,
  });
  assert.ok(res.status >= 400 && res.status < 500, `got ${res.status}`);
});
