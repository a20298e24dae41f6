/**
 * Resource-server token verification against a real local authorization server
 * (node:http on 127.0.0.1): RFC 8414 metadata, a JWKS with rotating keys, and an
 * RFC 7662 introspection endpoint with client_secret_basic. Negative tests are
 * named after the spec section they check.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  base64url,
  type CryptoKey,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { type Principal, TokenError } from '../../src/auth/principal.ts';
import {
  createTokenVerifier,
  discoverIssuer,
  metadataUrls,
  type VerifierOptions,
} from '../../src/auth/verify/index.ts';

const AUDIENCE = 'https://gatehouse.example/mcp';
const CLIENT_ID = 'rs-gatehouse';
const CLIENT_SECRET = 'p@ss:w0rd é';

// ------------------------------------------------------------------ the authorization server

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function newKey(alg: 'ES256' | 'EdDSA' | 'RS256', kid = randomUUID()): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, jwk };
}

interface IntrospectionRecord {
  claims: Record<string, unknown>;
  revoked: boolean;
}

/** A small but faithful authorization server. */
class TestAS {
  server = http.createServer((req, res) => this.handle(req, res));
  base = '';
  /** Keys published at /jwks. */
  keys: SigningKey[] = [];
  jwksStatus = 200;
  jwksFetches = 0;
  /** Metadata documents by request path. */
  metadata = new Map<string, Record<string, unknown>>();
  /** Opaque tokens known to the introspection endpoint. */
  tokens = new Map<string, IntrospectionRecord>();
  introspections = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private json(
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.base);
    const doc = this.metadata.get(url.pathname);
    if (req.method === 'GET' && url.pathname === '/jwks') {
      this.jwksFetches++;
      if (this.jwksStatus !== 200) this.json(res, this.jwksStatus, { error: 'temporarily_unavailable' });
      else this.json(res, 200, { keys: this.keys.map((k) => k.jwk) });
    } else if (req.method === 'GET' && doc) {
      this.json(res, 200, doc);
    } else if (url.pathname === '/introspect') {
      this.introspect(req, res);
    } else {
      this.json(res, 404, { error: 'not_found' });
    }
  }

  /** RFC 7662 §2: POST, form body, client authentication required. */
  private introspect(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => this.answerIntrospection(req, res, Buffer.concat(chunks).toString('utf8')));
  }

  private answerIntrospection(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    if (req.method !== 'POST') {
      this.json(res, 405, { error: 'invalid_request' });
      return;
    }
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') {
      this.json(res, 400, { error: 'invalid_request' });
      return;
    }
    // RFC 6749 §2.3.1: Basic credentials are form-urlencoded, then base64.
    const auth = req.headers.authorization ?? '';
    const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8');
    const sep = decoded.indexOf(':');
    const id = new URLSearchParams(`a=${decoded.slice(0, sep)}`).get('a');
    const secret = new URLSearchParams(`a=${decoded.slice(sep + 1)}`).get('a');
    if (!auth.startsWith('Basic ') || sep < 0 || id !== CLIENT_ID || secret !== CLIENT_SECRET) {
      this.json(res, 401, { error: 'invalid_client' }, { 'www-authenticate': 'Basic realm="as"' });
      return;
    }
    const form = new URLSearchParams(body);
    const token = form.get('token');
    if (token === null) {
      this.json(res, 400, { error: 'invalid_request' });
      return;
    }
    if (form.get('token_type_hint') !== 'access_token') {
      this.json(res, 400, { error: 'invalid_request', error_description: 'test expects token_type_hint' });
      return;
    }
    this.introspections++;
    const rec = this.tokens.get(token);
    const exp = rec?.claims['exp'];
    // RFC 7662 §2.2: expired, revoked or unknown tokens are simply inactive.
    if (!rec || rec.revoked || (typeof exp === 'number' && exp <= Date.now() / 1000)) {
      this.json(res, 200, { active: false });
      return;
    }
    this.json(res, 200, { active: true, ...rec.claims });
  }

  opaque(claims: Record<string, unknown>): string {
    const token = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
    this.tokens.set(token, { claims, revoked: false });
    return token;
  }
}

const as = new TestAS();
let es256: SigningKey;
let eddsa: SigningKey;
let rs256: SigningKey;
let ISSUER = '';

before(async () => {
  await as.start();
  ISSUER = as.base;
  es256 = await newKey('ES256');
  eddsa = await newKey('EdDSA');
  rs256 = await newKey('RS256');
  as.keys = [es256, eddsa, rs256];
});

after(async () => {
  await as.stop();
});

// ------------------------------------------------------------------ helpers

const nowSec = (): number => Math.floor(Date.now() / 1000);

interface MintOptions {
  key?: SigningKey;
  kid?: string;
  typ?: string | null;
}

/** Signs an access token; `undefined` claim values are removed. */
async function mint(claims: Record<string, unknown> = {}, o: MintOptions = {}): Promise<string> {
  const key = o.key ?? es256;
  const payload: JWTPayload = {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-1',
    client_id: 'agent-1',
    iat: nowSec(),
    exp: nowSec() + 300,
    jti: randomUUID(),
    scope: 'tools:read tools:call',
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  const header: { alg: string; kid: string; typ?: string } = { alg: key.alg, kid: o.kid ?? key.kid };
  if (o.typ !== null) header.typ = o.typ ?? 'at+jwt';
  return new SignJWT(payload).setProtectedHeader(header).sign(key.privateKey);
}

function opts(extra: Partial<VerifierOptions> = {}): VerifierOptions {
  return { issuer: ISSUER, audience: AUDIENCE, jwksUri: `${as.base}/jwks`, ...extra };
}

async function rejectsWith(p: Promise<unknown>, reason: string, unavailable = false): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TokenError, `expected TokenError, got ${String(e)}`);
    assert.equal(e.reason, reason);
    assert.equal(e.unavailable, unavailable);
    return true;
  });
}

/** A fetch that fails the test if called: proves a path makes no HTTP request. */
const noFetch: typeof fetch = () => Promise.reject(new Error('no http expected'));

// ------------------------------------------------------------------ JWT access tokens

describe('JWT access tokens (RFC 9068)', () => {
  test('valid ES256 token maps to a principal', async () => {
    const v = createTokenVerifier(opts());
    const token = await mint({ tenant: 'acme', jti: 'tok-1' });
    const p = await v.verify(token);
    assert.equal(p.agent, 'agent-1');
    assert.equal(p.user, 'user-1');
    assert.equal(p.subject, 'user-1');
    assert.deepEqual(p.actors, []);
    assert.equal(p.tenant, 'acme');
    assert.equal(p.tokenId, 'tok-1');
    assert.equal(p.issuer, ISSUER);
    assert.deepEqual([...p.scopes], ['tools:read', 'tools:call']);
    assert.equal(p.authMethod, 'jwt');
    assert.ok(p.expiresAt > nowSec());
  });

  test('valid EdDSA and RS256 tokens verify', async () => {
    const v = createTokenVerifier(opts());
    assert.equal((await v.verify(await mint({}, { key: eddsa }))).agent, 'agent-1');
    assert.equal((await v.verify(await mint({}, { key: rs256 }))).agent, 'agent-1');
  });

  test('RFC 9068 §4: typ at+jwt, application/at+jwt, JWT and absent are accepted; other types are not', async () => {
    const v = createTokenVerifier(opts());
    for (const typ of ['at+jwt', 'application/at+jwt', 'JWT', null]) {
      assert.equal((await v.verify(await mint({}, { typ }))).agent, 'agent-1', String(typ));
    }
    await rejectsWith(v.verify(await mint({}, { typ: 'dpop+jwt' })), 'unexpected token type');
  });

  test('T02-03 RFC 9068 §4 / RFC 7519 §4.1.4: token without exp is rejected', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ exp: undefined })), 'missing exp claim');
  });

  test('RFC 7519 §2: non-numeric exp or nbf is rejected', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ exp: String(nowSec() + 300) })), 'invalid exp claim');
    await rejectsWith(v.verify(await mint({ nbf: 'yesterday' })), 'invalid nbf claim');
  });

  test('T02-03 RFC 7519 §4.1.4: expired token is rejected (beyond clock tolerance)', async () => {
    const v = createTokenVerifier(opts({ clockToleranceSec: 30 }));
    await rejectsWith(v.verify(await mint({ iat: nowSec() - 600, exp: nowSec() - 31 })), 'token expired');
  });

  test('clock tolerance: a token expired 10 s ago is still accepted with the default 30 s tolerance', async () => {
    const v = createTokenVerifier(opts());
    assert.equal((await v.verify(await mint({ exp: nowSec() - 10 }))).agent, 'agent-1');
  });

  test('T02-03 RFC 7519 §4.1.5: token not yet valid (nbf in the future) is rejected', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ nbf: nowSec() + 120 })), 'token not yet valid');
  });

  test('RFC 7519 §4.1.6: token issued in the future (iat beyond tolerance) is rejected', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ iat: nowSec() + 600 })), 'token issued in the future');
  });

  test('T02-03 RFC 8707 §2: token for another resource is rejected (aud mismatch, passthrough attempt)', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ aud: 'https://upstream.example/mcp' })), 'audience mismatch');
  });

  test('T02-03 RFC 9068 §4: token without aud is rejected', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ aud: undefined })), 'missing aud claim');
  });

  test('RFC 7519 §4.1.3: aud array containing our resource is accepted', async () => {
    const v = createTokenVerifier(opts());
    const p = await v.verify(await mint({ aud: ['https://other.example', AUDIENCE] }));
    assert.equal(p.agent, 'agent-1');
  });

  test('T02-03 RFC 9068 §4: token from another issuer is rejected (iss mismatch)', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ iss: 'https://evil.example' })), 'issuer mismatch');
    await rejectsWith(v.verify(await mint({ iss: `${ISSUER}/` })), 'issuer mismatch');
  });

  test('T02-03 RFC 8725 §3.1: alg none (unsecured JWT) is rejected', async () => {
    const v = createTokenVerifier(opts());
    const enc = (o: unknown): string => base64url.encode(JSON.stringify(o));
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'u', client_id: 'a', exp: nowSec() + 300 };
    await rejectsWith(
      v.verify(`${enc({ alg: 'none', typ: 'JWT' })}.${enc(claims)}.`),
      'algorithm not allowed',
    );
    await rejectsWith(v.verify(`${enc({ alg: 'none' })}.${enc(claims)}.c2ln`), 'algorithm not allowed');
  });

  test('T02-03 RFC 8725 §2.1: HS256 signed with the public key material (HS/RS confusion) is rejected', async () => {
    const v = createTokenVerifier(opts({ algorithms: ['RS256'] }));
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'u', client_id: 'a', exp: nowSec() + 300 };
    for (const secret of [pem, JSON.stringify(rs256.jwk), rs256.jwk.n ?? '']) {
      const forged = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid: rs256.kid })
        .sign(new TextEncoder().encode(secret));
      await rejectsWith(v.verify(forged), 'algorithm not allowed');
    }
  });

  test('RFC 8725 §3.1: a symmetric or none algorithm in the options is refused at construction', () => {
    for (const alg of ['HS256', 'HS512', 'none', 'dir', 'RSA-OAEP']) {
      assert.throws(() => createTokenVerifier(opts({ algorithms: [alg] })), /algorithm not allowed/);
    }
    assert.throws(() => createTokenVerifier(opts({ algorithms: [] })), /algorithms must not be empty/);
  });

  test('RFC 8725 §3.1: an allowed-but-unlisted algorithm (RS256 when only ES256 is pinned) is rejected', async () => {
    const v = createTokenVerifier(opts({ algorithms: ['ES256'] }));
    await rejectsWith(v.verify(await mint({}, { key: rs256 })), 'algorithm not allowed');
  });

  test('T02-03 RFC 7515 §5.2: bad signature is rejected', async () => {
    const v = createTokenVerifier(opts());
    const token = await mint();
    const [h, p] = token.split('.');
    const other = (await mint({ sub: 'someone-else' })).split('.')[2];
    await rejectsWith(v.verify(`${h}.${p}.${other}`), 'invalid signature');
    // Claims swapped under a valid signature.
    const forgedPayload = base64url.encode(JSON.stringify({ ...JSON.parse(atob(p ?? '')), sub: 'admin' }));
    await rejectsWith(v.verify(`${h}.${forgedPayload}.${token.split('.')[2]}`), 'invalid signature');
  });

  test('T02-03 RFC 7515 §4.1.4: kid signed by a key the issuer never published is rejected (unknown signing key)', async () => {
    const v = createTokenVerifier(opts({ jwksCooldownSec: 0 }));
    const stranger = await newKey('ES256');
    await rejectsWith(v.verify(await mint({}, { key: stranger })), 'unknown signing key');
    // Same kid as a published key but signed by a stranger: signature fails.
    await rejectsWith(v.verify(await mint({}, { key: stranger, kid: es256.kid })), 'invalid signature');
  });

  test('RFC 7517 §5 key rotation: unknown kid triggers a JWKS refetch that finds the new key', async () => {
    const v = createTokenVerifier(opts({ jwksCooldownSec: 0 }));
    await v.verify(await mint());
    const before = as.jwksFetches;
    const rotated = await newKey('ES256');
    as.keys = [...as.keys, rotated];
    try {
      const p = await v.verify(await mint({}, { key: rotated }));
      assert.equal(p.agent, 'agent-1');
      assert.equal(as.jwksFetches, before + 1, 'exactly one refetch');
    } finally {
      as.keys = as.keys.filter((k) => k !== rotated);
    }
  });

  test('RFC 7517 §5 key rotation: refetch on unknown kid is rate-limited by the cooldown', async () => {
    const v = createTokenVerifier(opts({ jwksCooldownSec: 30 }));
    await v.verify(await mint());
    const before = as.jwksFetches;
    const stranger = await newKey('ES256');
    for (let i = 0; i < 5; i++)
      await rejectsWith(v.verify(await mint({}, { key: stranger })), 'unknown signing key');
    assert.equal(as.jwksFetches, before, 'no refetch inside the cooldown');
  });

  test('T02-03 MCP authorization (token validation): JWKS endpoint down fails closed with unavailable=true', async () => {
    as.jwksStatus = 503;
    try {
      const v = createTokenVerifier(opts());
      await rejectsWith(v.verify(await mint()), 'signing keys unavailable', true);
    } finally {
      as.jwksStatus = 200;
    }
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const v = createTokenVerifier(opts({ jwksUri: `http://127.0.0.1:${port}/jwks` }));
    await rejectsWith(v.verify(await mint()), 'signing keys unavailable', true);
  });

  test('T02-03 RFC 7519 §7.2: garbage and malformed tokens are rejected before any key lookup', async () => {
    const v = createTokenVerifier(opts({ fetch: noFetch }));
    const huge = `${'a'.repeat(20_000)}.b.c`;
    for (const bad of [
      '',
      'abc def',
      'a.b.c',
      '..',
      'a..c',
      '!!!.???.###',
      huge,
      'eyJhbGciOiJFUzI1NiJ9.e30',
      '{}',
    ]) {
      await assert.rejects(v.verify(bad), (e: unknown) => e instanceof TokenError && !e.unavailable, bad);
    }
    await rejectsWith(v.verify('a.b.c'), 'malformed token');
    await rejectsWith(v.verify('opaque-token-value'), 'opaque tokens not accepted');
    // @ts-expect-error: non-string input from an untyped caller
    await rejectsWith(v.verify(undefined), 'malformed token');
  });

  test('RFC 9068 §2.2: token without client_id or azp is rejected', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ client_id: undefined })), 'missing client_id claim');
  });

  test('RFC 9068 §2.2: token without sub is rejected', async () => {
    const v = createTokenVerifier(opts());
    await rejectsWith(v.verify(await mint({ sub: undefined })), 'missing sub claim');
  });

  test('azp is the agent when client_id is absent', async () => {
    const v = createTokenVerifier(opts());
    const p = await v.verify(await mint({ client_id: undefined, azp: 'agent-azp' }));
    assert.equal(p.agent, 'agent-azp');
  });

  test('RFC 9068 §2.2: client-credentials token (sub = client_id) has no user', async () => {
    const v = createTokenVerifier(opts());
    const p = await v.verify(await mint({ sub: 'agent-1' }));
    assert.equal(p.agent, 'agent-1');
    assert.equal(p.subject, 'agent-1');
    assert.equal(p.user, undefined);
  });

  test('scopes: `scope` string, `scp` array (Okta), `scp` string (Entra)', async () => {
    const v = createTokenVerifier(opts());
    const a = await v.verify(await mint({ scope: 'a  b' }));
    assert.deepEqual([...a.scopes], ['a', 'b']);
    const b = await v.verify(await mint({ scope: undefined, scp: ['x', 'y'] }));
    assert.deepEqual([...b.scopes], ['x', 'y']);
    const c = await v.verify(await mint({ scope: undefined, scp: 'User.Read Mail.Send' }));
    assert.deepEqual([...c.scopes], ['User.Read', 'Mail.Send']);
    const d = await v.verify(await mint({ scope: undefined }));
    assert.equal(d.scopes.size, 0);
    await rejectsWith(v.verify(await mint({ scope: undefined, scp: [1, 2] })), 'invalid scope claim');
  });

  test('RFC 8693 §4.1: nested act chain maps to actors, current actor first', async () => {
    const v = createTokenVerifier(opts());
    const p = await v.verify(
      await mint({ act: { sub: 'agent-b', act: { sub: 'agent-a', act: { sub: 'orchestrator' } } } }),
    );
    assert.deepEqual(p.actors, ['agent-b', 'agent-a', 'orchestrator']);
    await rejectsWith(v.verify(await mint({ act: { iss: 'x' } })), 'invalid act claim');
    await rejectsWith(v.verify(await mint({ act: 'agent-b' })), 'invalid act claim');
  });

  test('tenant: default claim, custom tenantClaim, non-string ignored', async () => {
    const v = createTokenVerifier(opts({ tenantClaim: 'org_id' }));
    assert.equal((await v.verify(await mint({ org_id: 'org-9', tenant: 'ignored' }))).tenant, 'org-9');
    assert.equal((await v.verify(await mint({ org_id: 42 }))).tenant, undefined);
    const d = createTokenVerifier(opts());
    assert.equal((await d.verify(await mint({ tenant: 't-1' }))).tenant, 't-1');
  });

  test('localJwks (embedded authorization server) verifies with no HTTP and follows key changes', async () => {
    let set = { keys: [es256.jwk] };
    const v = createTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      localJwks: () => set,
      fetch: noFetch,
    });
    assert.equal((await v.verify(await mint())).agent, 'agent-1');
    await rejectsWith(v.verify(await mint({}, { key: eddsa })), 'unknown signing key');
    set = { keys: [es256.jwk, eddsa.jwk] };
    assert.equal((await v.verify(await mint({}, { key: eddsa }))).agent, 'agent-1');
  });

  test('RFC 8414 §2 / RFC 7662 §4: non-loopback plain-http endpoints are refused at construction', () => {
    assert.throws(
      () =>
        createTokenVerifier({
          issuer: 'https://as.example',
          audience: AUDIENCE,
          jwksUri: 'http://as.example/jwks',
        }),
      /jwks_uri must use https/,
    );
    assert.throws(
      () => createTokenVerifier({ issuer: 'http://as.example', audience: AUDIENCE }),
      /issuer must use https/,
    );
    assert.throws(
      () =>
        createTokenVerifier({
          ...opts(),
          introspection: { endpoint: 'http://as.example/introspect', clientId: 'a', clientSecret: 'b' },
        }),
      /introspection endpoint must use https/,
    );
  });
});

// ------------------------------------------------------------------ verified-token cache

describe('verified-token cache', () => {
  test('cache hit returns the same principal without touching the JWKS again', async () => {
    const v = createTokenVerifier(opts());
    const token = await mint();
    const p1 = await v.verify(token);
    const fetches = as.jwksFetches;
    as.jwksStatus = 503; // keys unreachable: only the cache can answer
    try {
      const p2 = await v.verify(token);
      assert.equal(p2, p1);
    } finally {
      as.jwksStatus = 200;
    }
    assert.equal(as.jwksFetches, fetches);
  });

  test('concurrent first sights of one token share one verification', async () => {
    const v = createTokenVerifier(opts());
    const token = await mint();
    const all = await Promise.all(Array.from({ length: 20 }, () => v.verify(token)));
    for (const p of all) assert.equal(p, all[0]);
  });

  test('T26 isRevoked is re-checked on every use: revoke after first use → rejected from cache', async () => {
    const revoked = new Set<string>();
    let checks = 0;
    const v = createTokenVerifier(
      opts({
        isRevoked: (p: Principal) => {
          checks++;
          return p.tokenId !== undefined && revoked.has(p.tokenId);
        },
      }),
    );
    const token = await mint({ jti: 'jti-revoke-me' });
    await v.verify(token);
    await v.verify(token);
    assert.equal(checks, 2);
    revoked.add('jti-revoke-me');
    await rejectsWith(v.verify(token), 'token revoked');
    await rejectsWith(v.verify(token), 'token revoked');
  });

  test('T02-03 maxTokenLifetimeSec: a token living longer than revocations are kept is refused (from iat, else from now)', async () => {
    const v = createTokenVerifier(opts({ maxTokenLifetimeSec: 600, clockToleranceSec: 30 }));
    const iat = nowSec() - 100;
    const p = await v.verify(await mint({ iat, exp: iat + 630 }));
    assert.equal(p.issuedAt, iat, 'iat becomes principal.issuedAt (revocation compares it)');
    await rejectsWith(v.verify(await mint({ iat, exp: iat + 631 })), 'token lifetime too long');
    await rejectsWith(
      v.verify(await mint({ iat: undefined, exp: nowSec() + 700 })),
      'token lifetime too long',
      false,
    );
    const noIat = await v.verify(await mint({ iat: undefined, exp: nowSec() + 300 }));
    assert.equal(noIat.issuedAt, undefined);
    const unbounded = createTokenVerifier(opts());
    assert.ok(await unbounded.verify(await mint({ exp: nowSec() + 10 * 86_400 })), 'no bound by default');
  });

  test('isRevoked that throws fails closed with unavailable=true', async () => {
    const v = createTokenVerifier(
      opts({
        isRevoked: () => {
          throw new Error('revocation store down');
        },
      }),
    );
    await rejectsWith(v.verify(await mint()), 'revocation check failed', true);
  });

  test('RFC 7519 §4.1.4: a cached entry is not used past exp', async () => {
    const v = createTokenVerifier(opts({ clockToleranceSec: 0 }));
    const exp = nowSec() + 2;
    const token = await mint({ exp });
    const p = await v.verify(token);
    assert.equal(p.expiresAt, exp);
    assert.equal(await v.verify(token), p, 'cached while valid');
    await sleep(exp * 1000 - Date.now() + 100);
    await rejectsWith(v.verify(token), 'token expired');
  });

  test('failures are never cached: a token rejected while keys were down verifies once they are back', async () => {
    const v = createTokenVerifier(opts());
    const token = await mint();
    as.jwksStatus = 500;
    try {
      await rejectsWith(v.verify(token), 'signing keys unavailable', true);
    } finally {
      as.jwksStatus = 200;
    }
    assert.equal((await v.verify(token)).agent, 'agent-1');
  });

  test('cacheSize bounds the cache (LRU): evicted tokens are verified again', async () => {
    const v = createTokenVerifier(opts({ cacheSize: 2 }));
    const [a, b, c] = await Promise.all([mint(), mint(), mint()]);
    assert.ok(a && b && c);
    const pa = await v.verify(a);
    await v.verify(b);
    assert.equal(await v.verify(a), pa, 'a is most recent now');
    await v.verify(c); // evicts b
    assert.equal(await v.verify(a), pa);
    const pb1 = await v.verify(b);
    const pb2 = await v.verify(b);
    assert.equal(pb1, pb2);
  });
});

// ------------------------------------------------------------------ introspection

describe('opaque tokens (RFC 7662 introspection)', () => {
  const introspection = (extra: { cacheTtlSec?: number; clientSecret?: string } = {}) => ({
    endpoint: `${as.base}/introspect`,
    clientId: CLIENT_ID,
    clientSecret: extra.clientSecret ?? CLIENT_SECRET,
    cacheTtlSec: extra.cacheTtlSec ?? 30,
  });
  const active = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-7',
    client_id: 'agent-7',
    scope: 'tools:read',
    exp: nowSec() + 300,
    iat: nowSec(),
    jti: randomUUID(),
    token_type: 'Bearer',
    ...extra,
  });

  test('RFC 7662 §2.2: active token maps to a principal', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection() }));
    const p = await v.verify(as.opaque(active({ tenant: 'acme', act: { sub: 'agent-6' } })));
    assert.equal(p.authMethod, 'introspection');
    assert.equal(p.agent, 'agent-7');
    assert.equal(p.user, 'user-7');
    assert.equal(p.tenant, 'acme');
    assert.deepEqual(p.actors, ['agent-6']);
    assert.deepEqual([...p.scopes], ['tools:read']);
  });

  test('T26 the revocation list applies to introspected tokens too: first sight, and from the cache', async () => {
    const revokedAgents = new Set<string>();
    const v = createTokenVerifier(
      opts({ introspection: introspection(), isRevoked: (p: Principal) => revokedAgents.has(p.agent) }),
    );
    const token = as.opaque(active());
    await v.verify(token);
    const calls = as.introspections;
    revokedAgents.add('agent-7');
    await rejectsWith(v.verify(token), 'token revoked');
    assert.equal(as.introspections, calls, 'refused from the cache, no new introspection');
    await rejectsWith(v.verify(as.opaque(active())), 'token revoked');
  });

  test('T02-03 maxTokenLifetimeSec applies to introspected tokens', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection(), maxTokenLifetimeSec: 300 }));
    assert.ok(await v.verify(as.opaque(active())));
    await rejectsWith(
      v.verify(as.opaque(active({ iat: nowSec(), exp: nowSec() + 3600 }))),
      'token lifetime too long',
    );
  });

  test('T02-03 RFC 7662 §2.2: inactive (unknown) token is rejected', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection() }));
    await rejectsWith(v.verify('never-issued-token'), 'token inactive');
  });

  test('T02-03 RFC 7662 §2.2: token revoked at the authorization server is rejected once the cache TTL is over', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection({ cacheTtlSec: 0 }) }));
    const token = as.opaque(active());
    await v.verify(token);
    const rec = as.tokens.get(token);
    assert.ok(rec);
    rec.revoked = true;
    await rejectsWith(v.verify(token), 'token inactive');
  });

  test('RFC 7662 §4: positive results are cached for cacheTtlSec, then introspected again', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection({ cacheTtlSec: 1 }) }));
    const token = as.opaque(active());
    const start = as.introspections;
    const p = await v.verify(token);
    assert.equal(await v.verify(token), p);
    assert.equal(as.introspections, start + 1, 'second use served from cache');
    const rec = as.tokens.get(token);
    assert.ok(rec);
    rec.revoked = true;
    assert.equal(await v.verify(token), p, 'still inside the TTL');
    await sleep(1_100);
    await rejectsWith(v.verify(token), 'token inactive');
    assert.equal(as.introspections, start + 2);
  });

  test('RFC 7662 §4: a cached introspection result is not used past the token exp', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection({ cacheTtlSec: 60 }) }));
    const exp = nowSec() + 1;
    const token = as.opaque(active({ exp }));
    await v.verify(token);
    await sleep(exp * 1000 - Date.now() + 100);
    await rejectsWith(v.verify(token), 'token inactive');
  });

  test('T02-03 RFC 8707 §2: introspected token for another resource is rejected (aud mismatch)', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection() }));
    await rejectsWith(
      v.verify(as.opaque(active({ aud: 'https://upstream.example/mcp' }))),
      'audience mismatch',
    );
    assert.equal((await v.verify(as.opaque(active({ aud: ['x', AUDIENCE] })))).agent, 'agent-7');
  });

  test('MCP authorization (token validation): introspection answer without aud is rejected (fail closed)', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection() }));
    await rejectsWith(v.verify(as.opaque(active({ aud: undefined }))), 'missing aud claim');
  });

  test('RFC 7662 §2.2: introspected token from another issuer is rejected', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection() }));
    await rejectsWith(v.verify(as.opaque(active({ iss: 'https://evil.example' }))), 'issuer mismatch');
  });

  test('RFC 9068 §2.2: introspected token without client_id or azp is rejected', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection() }));
    await rejectsWith(v.verify(as.opaque(active({ client_id: undefined }))), 'missing client_id claim');
  });

  test('RFC 7662 §2.1: wrong client credentials fail closed with unavailable=true', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection({ clientSecret: 'wrong' }) }));
    await rejectsWith(v.verify(as.opaque(active())), 'introspection client authentication failed', true);
  });

  test('RFC 7662 §2.1: introspection endpoint unreachable fails closed with unavailable=true', async () => {
    const v = createTokenVerifier(
      opts({
        introspection: { endpoint: 'http://127.0.0.1:1/introspect', clientId: 'a', clientSecret: 'b' },
      }),
    );
    await rejectsWith(v.verify('some-opaque-token'), 'introspection unavailable', true);
  });

  test('JWT-shaped tokens still take the JWT path when introspection is configured', async () => {
    const v = createTokenVerifier(opts({ introspection: introspection() }));
    const start = as.introspections;
    assert.equal((await v.verify(await mint())).authMethod, 'jwt');
    assert.equal(as.introspections, start);
  });
});

// ------------------------------------------------------------------ discovery

describe('issuer discovery (RFC 8414, OpenID Connect Discovery)', () => {
  const doc = (issuer: string): Record<string, unknown> => ({
    issuer,
    jwks_uri: `${as.base}/jwks`,
    token_endpoint: `${as.base}/token`,
  });

  test('RFC 8414 §3.1: issuer with a path uses the path-inserted well-known URL', async () => {
    const issuer = `${as.base}/tenants/a`;
    as.metadata.set('/.well-known/oauth-authorization-server/tenants/a', doc(issuer));
    const md = await discoverIssuer(issuer);
    assert.equal(md.issuer, issuer);
    assert.equal(md.jwks_uri, `${as.base}/jwks`);
    // And the verifier discovers its keys from there.
    const v = createTokenVerifier({ issuer, audience: AUDIENCE });
    assert.equal((await v.verify(await mint({ iss: issuer }))).issuer, issuer);
  });

  test('OpenID Connect Discovery §4: falls back to /.well-known/openid-configuration', async () => {
    const issuer = `${as.base}/tenants/b`;
    as.metadata.set('/tenants/b/.well-known/openid-configuration', doc(issuer));
    assert.equal((await discoverIssuer(issuer)).issuer, issuer);
    const issuerC = `${as.base}/tenants/c`;
    as.metadata.set('/.well-known/openid-configuration/tenants/c', doc(issuerC));
    assert.equal((await discoverIssuer(issuerC)).issuer, issuerC);
  });

  test('MCP authorization (metadata discovery): well-known URLs are tried in the prescribed order', () => {
    assert.deepEqual(metadataUrls('https://as.example'), [
      'https://as.example/.well-known/oauth-authorization-server',
      'https://as.example/.well-known/openid-configuration',
    ]);
    assert.deepEqual(metadataUrls('https://as.example/tenant1'), [
      'https://as.example/.well-known/oauth-authorization-server/tenant1',
      'https://as.example/.well-known/openid-configuration/tenant1',
      'https://as.example/tenant1/.well-known/openid-configuration',
    ]);
  });

  test('OpenID Connect Discovery §4: issuer without a path falls back from RFC 8414 to OIDC', async () => {
    const idp = new TestAS();
    await idp.start();
    try {
      idp.metadata.set('/.well-known/openid-configuration', {
        issuer: idp.base,
        jwks_uri: `${idp.base}/jwks`,
      });
      const md = await discoverIssuer(idp.base);
      assert.equal(md.jwks_uri, `${idp.base}/jwks`);
      // RFC 8414 metadata wins when both exist.
      idp.metadata.set('/.well-known/oauth-authorization-server', {
        issuer: idp.base,
        jwks_uri: `${idp.base}/k2`,
      });
      assert.equal((await discoverIssuer(idp.base)).jwks_uri, `${idp.base}/k2`);
    } finally {
      await idp.stop();
    }
  });

  test('RFC 8414 §3.3: metadata whose issuer differs from the requested issuer is rejected', async () => {
    const issuer = `${as.base}/tenants/d`;
    as.metadata.set('/.well-known/oauth-authorization-server/tenants/d', doc('https://evil.example'));
    await assert.rejects(discoverIssuer(issuer), /issuer mismatch/);
    const v = createTokenVerifier({ issuer, audience: AUDIENCE });
    await rejectsWith(v.verify(await mint({ iss: issuer })), 'signing keys unavailable', true);
  });

  test('RFC 8414 §2: discovered plain-http jwks_uri on a non-loopback host fails closed', async () => {
    const issuer = `${as.base}/tenants/e`;
    as.metadata.set('/.well-known/oauth-authorization-server/tenants/e', {
      issuer,
      jwks_uri: 'http://as.example/jwks',
    });
    const v = createTokenVerifier({ issuer, audience: AUDIENCE });
    await rejectsWith(v.verify(await mint({ iss: issuer })), 'signing keys unavailable', true);
  });

  test('RFC 8414 §3.2: no metadata at any well-known URL fails; the verifier fails closed', async () => {
    const issuer = `${as.base}/tenants/none`;
    await assert.rejects(discoverIssuer(issuer), /no authorization server metadata/);
    const v = createTokenVerifier({ issuer, audience: AUDIENCE });
    await rejectsWith(v.verify(await mint({ iss: issuer })), 'signing keys unavailable', true);
  });
});
