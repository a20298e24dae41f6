/**
 * The broker's OAuth client (src/credentials/oauth.ts) against a real authorization server: the fake
 * SaaS (oidc-provider, test/fixtures/saas). Proves that
 *
 * - metadata discovery from `issuer` finds the token and revocation endpoints, and a metadata document
 *   that names another issuer is refused before any token request (the client secret is not sent);
 * - RFC 8693 token exchange narrows a subject token to the configured scope and resource, and a scope
 *   wider than the subject's is refused with `invalid_scope`;
 * - client_credentials with scope + resource works; a wrong client secret is `invalid_client`, and the
 *   error message carries neither a secret nor a token;
 * - RFC 7009 revoke() ends the token at the server, and returns false (never throws) when no revocation
 *   endpoint can be resolved;
 * - THREATS T07 (SSRF): issuers and token endpoints on link-local, loopback, private and IPv4-mapped
 *   addresses are refused without a single connection attempt (recorded through OutboundClient's
 *   `onConnect`), and the development flag `allowLoopbackHttp` opens loopback only.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { OAuthClient, type OAuthCredential, OAuthError } from '../../src/credentials/oauth.ts';
import { OutboundClient, type OutboundOptions } from '../../src/secrets/outbound.ts';
import { type FakeSaas, startFakeSaas } from '../fixtures/saas/index.ts';

type Minted = Extract<OAuthCredential, { type: 'oauth' }>;

let saas: FakeSaas;

before(async () => {
  saas = await startFakeSaas();
});

after(async () => {
  await saas?.close();
});

/** An `oauth` credential for the fake SaaS's broker client; `over` sets the grant and endpoints. */
function minted(over: Partial<Minted>): Minted {
  return {
    type: 'oauth',
    grant: 'client_credentials',
    clientId: saas.clientId,
    clientSecret: { secret: 'saas-client' },
    subjectTokenType: 'access_token',
    maxLifetimeSec: 900,
    revokeOnEnd: true,
    ...over,
  };
}

/** An outbound client that records every connection attempt. */
function recording(opts: OutboundOptions = {}): { http: OutboundClient; connects: string[] } {
  const connects: string[] = [];
  return {
    connects,
    http: new OutboundClient({ ...opts, onConnect: (ip, port) => connects.push(`${ip}:${port}`) }),
  };
}

/** A client of the fake SaaS over loopback http (the development flag), with the right client secret. */
function client(cred: OAuthCredential, secret = (): string => saas.clientSecret): OAuthClient {
  return new OAuthClient(cred.type, cred, new OutboundClient({ allowLoopbackHttp: true }), async () =>
    secret(),
  );
}

/** Asserts `p` rejects with an OAuthError carrying `code`; returns the error. */
async function oauthFailure(p: Promise<unknown>, code: string | undefined): Promise<OAuthError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof OAuthError, `expected an OAuthError, got ${String(caught)}`);
  assert.equal(caught.oauthError, code);
  return caught;
}

// --- Metadata discovery ------------------------------------------------------------------------

test('discovery: the issuer metadata gives the token, authorization and revocation endpoints', async () => {
  const before = saas.tokenRequests.length;
  const endpoints = await client(minted({ issuer: saas.issuer })).resolveEndpoints();
  assert.deepEqual(endpoints, {
    token: saas.tokenEndpoint,
    authorization: saas.authorizationEndpoint,
    revocation: saas.revocationEndpoint,
  });
  assert.equal(saas.tokenRequests.length, before, 'discovery makes no token request');

  // Endpoints set in the config win over the metadata.
  const configured = `${saas.issuer}/revoke-here`;
  const overridden = await client(
    minted({ issuer: saas.issuer, revocationEndpoint: configured }),
  ).resolveEndpoints();
  assert.equal(overridden.revocation, configured);
  assert.equal(overridden.token, saas.tokenEndpoint);
});

test('discovery: a metadata document naming another issuer is refused, and no token request is made', async () => {
  // A real server on another origin that serves the fake SaaS's genuine metadata document: its
  // `issuer` (and token endpoint) are the SaaS's, not this origin (RFC 8414 §3.3).
  const genuine = await (await fetch(`${saas.issuer}/.well-known/openid-configuration`)).text();
  const hits: string[] = [];
  const mirror = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end(genuine);
  });
  await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', () => r()));
  const mirrorIssuer = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`;
  try {
    const before = saas.tokenRequests.length;
    const c = client(minted({ issuer: mirrorIssuer, scope: 'records:read', resource: saas.apiUrl }));
    const err = await oauthFailure(c.clientCredentials(), undefined);
    assert.match(err.message, /metadata issuer does not match/);
    assert.ok(!err.message.includes(saas.clientSecret));
    assert.ok(hits.length > 0, 'the mirror was asked for its metadata (the refusal is the issuer check)');
    assert.ok(
      hits.every((h) => h.startsWith('/.well-known/')),
      `only metadata was fetched: ${hits.join(', ')}`,
    );
    assert.equal(
      saas.tokenRequests.length,
      before,
      'the client secret never went to the named token endpoint',
    );
  } finally {
    mirror.closeAllConnections();
    await new Promise<void>((r) => mirror.close(() => r()));
  }

  // The same server under an issuer spelled differently (a trailing slash) is not the same issuer.
  const slash = client(minted({ issuer: `${saas.issuer}/` }));
  const err = await oauthFailure(slash.resolveEndpoints(), undefined);
  assert.match(err.message, /metadata issuer does not match/);
});

// --- Token exchange (RFC 8693) -----------------------------------------------------------------

test('token_exchange: a subject access token from a refresh is exchanged for one narrowed to records:read', async () => {
  const rt = await saas.mintRefreshToken('svc-exchange', 'records:read records:write');
  const refresher = client(minted({ grant: 'refresh_token', issuer: saas.issuer, resource: saas.apiUrl }));
  const subject = await refresher.refresh(rt);
  assert.equal(subject.scope, 'records:read records:write');

  const exchanger = client(
    minted({
      grant: 'token_exchange',
      issuer: saas.issuer,
      subjectSecret: { secret: 'subject' },
      scope: 'records:read',
      resource: saas.apiUrl,
    }),
  );
  const narrowed = await exchanger.exchange(subject.accessToken, 'access_token');
  assert.notEqual(narrowed.accessToken, subject.accessToken);
  assert.equal(narrowed.scope, 'records:read');
  assert.ok(narrowed.expiresAt !== undefined && narrowed.expiresAt > Date.now());
  assert.equal(narrowed.refreshToken, undefined);

  const info = await saas.introspect(narrowed.accessToken);
  assert.equal(info['active'], true);
  assert.equal(info['scope'], 'records:read');
  assert.equal(info['aud'], saas.apiUrl);
  assert.equal(info['sub'], 'svc-exchange');
  // The subject keeps its own, wider scope.
  assert.equal((await saas.introspect(subject.accessToken))['scope'], 'records:read records:write');

  const last = saas.tokenRequests.at(-1);
  assert.equal(last?.grantType, 'urn:ietf:params:oauth:grant-type:token-exchange');
  assert.equal(last?.scope, 'records:read');
  assert.equal(last?.resource, saas.apiUrl);
});

test('token_exchange: asking a wider scope than the subject has is invalid_scope', async () => {
  const rt = await saas.mintRefreshToken('svc-narrow', 'records:read');
  const subject = await client(
    minted({ grant: 'refresh_token', issuer: saas.issuer, resource: saas.apiUrl }),
  ).refresh(rt);
  assert.equal(subject.scope, 'records:read');

  const wider = client(
    minted({
      grant: 'token_exchange',
      issuer: saas.issuer,
      subjectSecret: { secret: 'subject' },
      scope: 'records:read records:write',
      resource: saas.apiUrl,
    }),
  );
  const err = await oauthFailure(wider.exchange(subject.accessToken, 'access_token'), 'invalid_scope');
  assert.ok(!err.message.includes(subject.accessToken), 'the subject token is not in the message');
  assert.ok(!err.message.includes(saas.clientSecret));
  assert.equal(saas.tokenRequests.at(-1)?.error, 'invalid_scope');
});

// --- Client credentials ------------------------------------------------------------------------

test('client_credentials: scope and resource are sent and honoured', async () => {
  const c = client(
    minted({
      grant: 'client_credentials',
      issuer: saas.issuer,
      scope: 'records:read',
      resource: saas.apiUrl,
    }),
  );
  const token = await c.clientCredentials();
  assert.equal(token.scope, 'records:read');
  const info = await saas.introspect(token.accessToken);
  assert.equal(info['active'], true);
  assert.equal(info['client_id'], saas.clientId);
  assert.equal(info['scope'], 'records:read');
  assert.equal(info['aud'], saas.apiUrl);
  const last = saas.tokenRequests.at(-1);
  assert.equal(last?.grantType, 'client_credentials');
  assert.equal(last?.scope, 'records:read');
  assert.equal(last?.resource, saas.apiUrl);
  assert.equal(last?.status, 200);
});

test('a wrong client secret is invalid_client, and the message carries no secret and no token', async () => {
  const wrong = 'fake-canary-wrong-client-secret-7d1f0a';
  const cc = client(
    minted({
      grant: 'client_credentials',
      issuer: saas.issuer,
      scope: 'records:read',
      resource: saas.apiUrl,
    }),
    () => wrong,
  );
  const err = await oauthFailure(cc.clientCredentials(), 'invalid_client');
  assert.match(err.message, /invalid_client/);
  assert.ok(err.message.includes(new URL(saas.tokenEndpoint).origin), 'the message names the endpoint');

  // The same with a real refresh token in the request: it is not echoed either.
  const rt = await saas.mintRefreshToken('svc-wrong-secret', 'records:read');
  const refresher = client(minted({ grant: 'refresh_token', issuer: saas.issuer }), () => wrong);
  const err2 = await oauthFailure(refresher.refresh(rt), 'invalid_client');
  for (const e of [err, err2]) {
    const text = `${e.message}\n${e.stack ?? ''}`;
    for (const value of [wrong, saas.clientSecret, rt])
      assert.ok(!text.includes(value), `a secret or token leaked into: ${e.message}`);
  }
  // The refresh token was not spent by the refused request.
  assert.equal((await saas.introspect(rt))['active'], true);
});

// --- Revocation (RFC 7009) ---------------------------------------------------------------------

test('revoke() ends the token at the server and returns true', async () => {
  const c = client(
    minted({
      grant: 'client_credentials',
      issuer: saas.issuer,
      scope: 'records:read',
      resource: saas.apiUrl,
    }),
  );
  const { accessToken } = await c.clientCredentials();
  assert.equal(await saas.isActive(accessToken), true);
  const revokedBefore = saas.revocations();
  assert.equal(await c.revoke(accessToken, 'access_token'), true);
  assert.equal(await saas.isActive(accessToken), false);
  assert.equal(saas.revocations(), revokedBefore + 1);
});

test('revoke() returns false, without throwing, when no revocation endpoint can be resolved', async () => {
  const { accessToken } = await client(
    minted({ grant: 'client_credentials', issuer: saas.issuer, resource: saas.apiUrl }),
  ).clientCredentials();
  const revokedBefore = saas.revocations();

  // Only a token endpoint configured: nothing to discover, nothing to call.
  const { http: h1, connects: c1 } = recording({ allowLoopbackHttp: true });
  const noEndpoint = new OAuthClient(
    'no-revocation',
    minted({ tokenEndpoint: saas.tokenEndpoint }),
    h1,
    async () => saas.clientSecret,
  );
  assert.equal(await noEndpoint.revoke(accessToken, 'access_token'), false);
  assert.deepEqual(c1, [], 'no request at all');

  // An issuer whose metadata cannot be read (404): discovery fails, revoke() still just says false.
  const { http: h2 } = recording({ allowLoopbackHttp: true });
  const unreadable = new OAuthClient(
    'unreadable-issuer',
    minted({ issuer: `${saas.issuer}/other` }),
    h2,
    async () => saas.clientSecret,
  );
  assert.equal(await unreadable.revoke(accessToken, 'access_token'), false);

  assert.equal(saas.revocations(), revokedBefore);
  assert.equal(await saas.isActive(accessToken), true, 'the token was not revoked');
});

test('an explicit token endpoint mints even when the issuer metadata (wanted only for revocation) cannot be read', async () => {
  const { http } = recording({ allowLoopbackHttp: true });
  const c = new OAuthClient(
    'token-endpoint-only',
    minted({
      grant: 'client_credentials',
      issuer: `${saas.issuer}/other`,
      tokenEndpoint: saas.tokenEndpoint,
      resource: saas.apiUrl,
    }),
    http,
    async () => saas.clientSecret,
  );
  const { accessToken } = await c.clientCredentials();
  assert.equal(await saas.isActive(accessToken), true);
  assert.equal((await c.resolveEndpoints()).revocation, undefined);
});

// --- T07: SSRF -------------------------------------------------------------------------------

/** A public address (only ever resolved to by the tests' own resolver; never contacted). */
const PUBLIC_IP = '93.184.215.14';

const INTERNAL = [
  'http://169.254.169.254/',
  'https://169.254.169.254/latest/meta-data/',
  'https://127.0.0.1:1/',
  'https://10.0.0.1/',
  'https://[::1]:1/',
  'https://[::ffff:127.0.0.1]:1/',
  // The same addresses in other spellings: decimal, hex, "this host".
  'https://2130706433:1/',
  'https://0x7f.1:1/',
  'https://0.0.0.0:1/',
  'https://[::]:1/',
];

/** The SSRF guard's refusals (src/auth/as/safe-fetch.ts), also when wrapped by discovery's OAuthError. */
const GUARD_REFUSAL = /resolves to a blocked address|is not allowed \(https only/;

/** Every grant through `c` is refused by the SSRF guard; revoke() says false. */
async function refusedEverywhere(c: OAuthClient, label: string): Promise<void> {
  const attempts: [string, () => Promise<unknown>][] = [
    ['client_credentials', () => c.clientCredentials()],
    ['refresh', () => c.refresh('fake-refresh-token')],
    ['exchange', () => c.exchange('fake-subject-token', 'access_token')],
    ['authorization_code', () => c.authorizationCode('code', 'verifier', 'http://127.0.0.1/cb')],
  ];
  for (const [grant, attempt] of attempts) {
    await assert.rejects(attempt, (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, GUARD_REFUSAL, `${label}: ${grant}`);
      return true;
    });
  }
  assert.equal(await c.revoke('fake-access-token', 'access_token'), false, `${label}: revoke`);
}

test('T07: issuers and token endpoints on internal addresses are refused before any connection', async () => {
  const { http: guarded, connects } = recording();
  for (const target of INTERNAL) {
    const viaIssuer = new OAuthClient('ssrf', minted({ issuer: target }), guarded, async () => 'x');
    await assert.rejects(viaIssuer.resolveEndpoints(), OAuthError, `issuer ${target}`);
    await refusedEverywhere(viaIssuer, `issuer ${target}`);
    const viaEndpoints = new OAuthClient(
      'ssrf',
      minted({ tokenEndpoint: target, revocationEndpoint: target }),
      guarded,
      async () => 'x',
    );
    await refusedEverywhere(viaEndpoints, `tokenEndpoint ${target}`);
  }
  // A host name that resolves to the metadata service is refused the same way.
  const { http: dns, connects: dnsConnects } = recording({ resolve: async () => ['169.254.169.254'] });
  await refusedEverywhere(
    new OAuthClient('ssrf', minted({ issuer: 'https://as.example.test/' }), dns, async () => 'x'),
    'name resolving to 169.254.169.254',
  );
  // https only: plain http is refused even to a public address.
  const { http: pub, connects: pubConnects } = recording({ resolve: async () => [PUBLIC_IP] });
  await refusedEverywhere(
    new OAuthClient('ssrf', minted({ tokenEndpoint: 'http://as.example.test/token' }), pub, async () => 'x'),
    'http to a public address',
  );
  assert.deepEqual(connects, [], 'no connection attempt');
  assert.deepEqual(dnsConnects, [], 'no connection attempt');
  assert.deepEqual(pubConnects, [], 'no connection attempt');
});

test('T07: without the development flag even the live loopback SaaS is never contacted', async () => {
  const before = saas.tokenRequests.length;
  const { http: guarded, connects } = recording();
  const c = new OAuthClient(
    'ssrf',
    minted({ tokenEndpoint: saas.tokenEndpoint, revocationEndpoint: saas.revocationEndpoint }),
    guarded,
    async () => saas.clientSecret,
  );
  await refusedEverywhere(c, 'loopback http without the flag');
  const viaIssuer = new OAuthClient('ssrf', minted({ issuer: saas.issuer }), guarded, async () => 'x');
  await assert.rejects(viaIssuer.resolveEndpoints(), OAuthError);
  assert.deepEqual(connects, []);
  assert.equal(saas.tokenRequests.length, before);
});

test('T07: allowLoopbackHttp opens loopback only: private and link-local targets stay refused', async () => {
  const { http: dev, connects } = recording({ allowLoopbackHttp: true });
  for (const target of [
    'http://10.0.0.1/',
    'https://10.0.0.1/',
    'http://169.254.169.254/',
    'http://192.168.1.1/',
    'http://[::ffff:10.0.0.1]/',
    'http://[fd00::1]/',
    // 0.0.0.0 and :: reach local services on Linux, but they are not loopback addresses.
    'http://0.0.0.0:1/',
    'http://[::]:1/',
  ]) {
    await refusedEverywhere(
      new OAuthClient('ssrf', minted({ issuer: target }), dev, async () => 'x'),
      `dev issuer ${target}`,
    );
    await refusedEverywhere(
      new OAuthClient(
        'ssrf',
        minted({ tokenEndpoint: target, revocationEndpoint: target }),
        dev,
        async () => 'x',
      ),
      `dev tokenEndpoint ${target}`,
    );
  }
  // A name with one loopback and one private answer is refused outright (every address is checked).
  const { http: mixed, connects: mixedConnects } = recording({
    allowLoopbackHttp: true,
    resolve: async () => ['127.0.0.1', '10.0.0.1'],
  });
  await refusedEverywhere(
    new OAuthClient(
      'ssrf',
      minted({ tokenEndpoint: 'http://as.example.test/token' }),
      mixed,
      async () => 'x',
    ),
    'name resolving to loopback + private',
  );
  // The flag allows http to loopback only, not to a public address.
  const { http: pub, connects: pubConnects } = recording({
    allowLoopbackHttp: true,
    resolve: async () => [PUBLIC_IP],
  });
  await refusedEverywhere(
    new OAuthClient('ssrf', minted({ issuer: 'http://as.example.test' }), pub, async () => 'x'),
    'dev: http to a public address',
  );
  assert.deepEqual(pubConnects, [], 'no connection attempt');
  // (a copy: asserting on `connects` itself would narrow its type to never[] for the control below)
  assert.deepEqual([...connects], [], 'no connection attempt');
  assert.deepEqual(mixedConnects, [], 'no connection attempt');

  // Control: the same recording client does connect to the loopback SaaS (so the empty lists above mean
  // something).
  const ok = new OAuthClient(
    'dev',
    minted({ issuer: saas.issuer, scope: 'records:read', resource: saas.apiUrl }),
    dev,
    async () => saas.clientSecret,
  );
  await ok.clientCredentials();
  assert.ok(connects.length >= 2, `metadata + token request: ${connects.join(', ')}`);
  assert.ok(connects.every((c) => c.startsWith('127.0.0.1:')));
});
