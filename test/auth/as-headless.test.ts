/**
 * Embedded AS: headless agents. client_credentials with client_secret (basic,
 * post) and private_key_jwt; RFC 8693 token exchange.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { TOKEN_EXCHANGE } from '../../src/auth/as/index.ts';
import { mintAccessToken } from '../../src/auth/as/mint.ts';
import {
  codeFlow,
  registerPublic,
  startAs,
  type TestAs,
  tokenRequest,
  verifyAccessToken,
} from './as-harness.ts';

const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
let t: TestAs;
let jwksServer: http.Server;
let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-headless-'));
const secretFile = join(dir, 'cc-only.secret');

before(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'agent-key', alg: 'ES256', use: 'sig' };
  jwksServer = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
  writeFileSync(secretFile, 'file-secret-value\n', { mode: 0o600 });
  process.env['GATEHOUSE_TEST_AGENT2_SECRET'] = 'env-secret-value';
  t = await startAs({
    // The JWKS is served from loopback http, which only the development flag allows.
    config: {
      allowInsecureMetadataUrls: true,
      clients: [
        {
          clientId: 'agent-1',
          clientName: 'Agent One',
          clientSecret: 'literal-secret-1',
          grantTypes: ['client_credentials', TOKEN_EXCHANGE],
          scope: 'mcp tools:write',
        },
        {
          clientId: 'agent-2',
          clientSecret: { env: 'GATEHOUSE_TEST_AGENT2_SECRET' },
          grantTypes: ['client_credentials', TOKEN_EXCHANGE],
        },
        {
          clientId: 'cc-only',
          clientSecret: { file: secretFile },
          grantTypes: ['client_credentials'],
          scope: 'mcp',
        },
        { clientId: 'jwt-agent', jwksUri, grantTypes: ['client_credentials'] },
      ],
    },
  });
});
after(async () => {
  await t.close();
  jwksServer.closeAllConnections();
  await new Promise<void>((r) => jwksServer.close(() => r()));
});

test('OAuth 2.1 §4.2 / RFC 6749 §2.3.1: client_credentials with client_secret_basic issues an RFC 9068 token for the agent', async () => {
  const r = await tokenRequest(
    t,
    { grant_type: 'client_credentials', scope: 'mcp' },
    { id: 'agent-1', secret: 'literal-secret-1' },
  );
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body['refresh_token'], undefined, 'no refresh token for client_credentials');
  const c = await verifyAccessToken(t, String(r.body['access_token']));
  assert.equal(c.sub, 'agent-1');
  assert.equal(c['client_id'], 'agent-1');
  assert.equal(c['scope'], 'mcp');
  assert.equal(c.aud, t.resource);
  assert.equal((c.exp ?? 0) - (c.iat ?? 0), 300);
});

test('RFC 6749 §2.3.1: client_secret_post works, secrets from { env } and { file } SecretRefs', async () => {
  const post = await tokenRequest(t, {
    grant_type: 'client_credentials',
    scope: 'mcp',
    client_id: 'agent-2',
    client_secret: 'env-secret-value',
  });
  assert.equal(post.status, 200, JSON.stringify(post.body));
  const file = await tokenRequest(
    t,
    { grant_type: 'client_credentials', scope: 'mcp' },
    { id: 'cc-only', secret: 'file-secret-value' },
  );
  assert.equal(file.status, 200, JSON.stringify(file.body));
});

test('RFC 6749 §5.2: a wrong client secret is invalid_client', async () => {
  const r = await tokenRequest(
    t,
    { grant_type: 'client_credentials', scope: 'mcp' },
    { id: 'agent-1', secret: 'wrong' },
  );
  assert.equal(r.status, 401);
  assert.equal(r.body['error'], 'invalid_client');
});

test('RFC 6749 §5.2: a scope outside the client registration is invalid_scope', async () => {
  const r = await tokenRequest(
    t,
    { grant_type: 'client_credentials', scope: 'tools:write' },
    { id: 'cc-only', secret: 'file-secret-value' },
  );
  assert.equal(r.status, 400);
  assert.equal(r.body['error'], 'invalid_scope');
});

test('RFC 8707 §2: client_credentials for another resource is invalid_target', async () => {
  const r = await tokenRequest(
    t,
    { grant_type: 'client_credentials', scope: 'mcp', resource: 'https://other.example/mcp' },
    { id: 'agent-1', secret: 'literal-secret-1' },
  );
  assert.equal(r.body['error'], 'invalid_target');
});

async function assertion(aud: string, sub = 'jwt-agent'): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'agent-key' })
    .setIssuer(sub)
    .setSubject(sub)
    .setAudience(aud)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(privateKey);
}

test('RFC 7523 §2.2 / OIDC private_key_jwt: client_credentials with a signed client assertion', async () => {
  const r = await tokenRequest(t, {
    grant_type: 'client_credentials',
    scope: 'mcp',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await assertion(t.url('/oauth/token')),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await verifyAccessToken(t, String(r.body['access_token'])))['client_id'], 'jwt-agent');
  const forged = await tokenRequest(t, {
    grant_type: 'client_credentials',
    scope: 'mcp',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'agent-key' })
      .setIssuer('jwt-agent')
      .setSubject('jwt-agent')
      .setAudience(t.url('/oauth/token'))
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign((await generateKeyPair('ES256')).privateKey),
  });
  assert.equal(forged.status, 401, 'an assertion signed by another key is refused');
  assert.equal(forged.body['error'], 'invalid_client');
});

async function userToken(scope: string): Promise<string> {
  const c = await registerPublic(t);
  const flow = await codeFlow(
    t,
    { client_id: c.client_id, redirect_uri: 'http://127.0.0.1:9999/callback' },
    { scope },
  );
  const r = await tokenRequest(t, {
    grant_type: 'authorization_code',
    code: flow.redirect.searchParams.get('code') ?? '',
    redirect_uri: 'http://127.0.0.1:9999/callback',
    client_id: c.client_id,
    code_verifier: flow.verifier,
  });
  assert.equal(r.status, 200);
  return String(r.body['access_token']);
}

function exchange(
  subject: string,
  client: { id: string; secret: string },
  extra: Record<string, string> = {},
) {
  return tokenRequest(
    t,
    { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: ACCESS, ...extra },
    client,
  );
}

const AGENT1 = { id: 'agent-1', secret: 'literal-secret-1' };
const AGENT2 = { id: 'agent-2', secret: 'env-secret-value' };

test('RFC 8693 §2.2 / §4.1: an agent exchanges a user token for a narrower one that acts for the user (act claim)', async () => {
  const subject = await userToken('mcp tools:write');
  const r = await exchange(subject, AGENT1, { scope: 'mcp' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body['issued_token_type'], ACCESS);
  assert.equal(r.body['token_type'], 'Bearer');
  const c = await verifyAccessToken(t, String(r.body['access_token']));
  assert.equal(c.sub, 'alice', 'sub = the user');
  assert.equal(c['client_id'], 'agent-1', 'client_id = the agent');
  assert.deepEqual(c['act'], { sub: 'agent-1' });
  assert.equal(c['scope'], 'mcp');
  assert.equal(c.aud, t.resource);
  assert.equal((c.exp ?? 0) - (c.iat ?? 0), 300);
  const same = await exchange(subject, AGENT1);
  assert.equal(
    decodeJwt(String(same.body['access_token']))['scope'],
    'mcp tools:write',
    'no scope: the subject scope',
  );
});

test('RFC 8693 §2.2.2: a scope wider than the subject token is invalid_scope', async () => {
  const subject = await userToken('mcp');
  const r = await exchange(subject, AGENT1, { scope: 'mcp tools:write' });
  assert.equal(r.status, 400);
  assert.equal(r.body['error'], 'invalid_scope');
});

test('RFC 8693 §2.2.2: a client whose grant types lack token exchange is refused', async () => {
  const subject = await userToken('mcp');
  const r = await exchange(subject, { id: 'cc-only', secret: 'file-secret-value' }, { scope: 'mcp' });
  assert.equal(r.status, 400);
  assert.match(String(r.body['error']), /unauthorized_client|invalid_request/);
  assert.equal(r.body['access_token'], undefined);
});

test('RFC 8693 §4.1: exchanging an exchanged token nests the act claim (current actor first)', async () => {
  const subject = await userToken('mcp');
  const first = await exchange(subject, AGENT1);
  const second = await exchange(String(first.body['access_token']), AGENT2);
  assert.equal(second.status, 200, JSON.stringify(second.body));
  const c = await verifyAccessToken(t, String(second.body['access_token']));
  assert.equal(c.sub, 'alice');
  assert.equal(c['client_id'], 'agent-2');
  assert.deepEqual(c['act'], { sub: 'agent-2', act: { sub: 'agent-1' } });
});

test('RFC 8693 §2.2.2: subject tokens that are not user tokens of this server are invalid_grant', async () => {
  const cc = await tokenRequest(t, { grant_type: 'client_credentials', scope: 'mcp' }, AGENT2);
  const noUser = await exchange(String(cc.body['access_token']), AGENT1);
  assert.equal(noUser.body['error'], 'invalid_grant', 'a client-credentials token has no user');
  const { privateKey: other } = await generateKeyPair('ES256', { extractable: true });
  const forged = await mintAccessToken({
    key: { ...(await exportJWK(other)), kid: t.as.jwks().keys[0]?.kid },
    issuer: t.issuer,
    resource: t.resource,
    clientId: 'x',
    sub: 'alice',
    scope: 'mcp',
    ttlSec: 60,
  });
  assert.equal((await exchange(forged, AGENT1)).body['error'], 'invalid_grant', 'signed by another key');
  assert.equal((await exchange('not-a-jwt', AGENT1)).body['error'], 'invalid_grant');
  const wrongType = await tokenRequest(
    t,
    {
      grant_type: TOKEN_EXCHANGE,
      subject_token: await userToken('mcp'),
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    },
    AGENT1,
  );
  assert.equal(wrongType.body['error'], 'invalid_request');
});

test('RFC 8693 §2.2.2 / RFC 8707: token exchange for another resource or audience is invalid_target', async () => {
  const subject = await userToken('mcp');
  assert.equal(
    (await exchange(subject, AGENT1, { resource: 'https://other.example/mcp' })).body['error'],
    'invalid_target',
  );
  assert.equal(
    (await exchange(subject, AGENT1, { audience: 'other-service' })).body['error'],
    'invalid_target',
  );
  const ok = await exchange(subject, AGENT1, { resource: t.resource });
  assert.equal(ok.status, 200);
});

test('mintAccessToken: a locally minted user token is accepted as a subject token', async () => {
  const subject = await t.as.mintAccessToken({ clientId: 'agent-2', user: 'alice', scope: 'mcp' });
  const c = await verifyAccessToken(t, subject);
  assert.equal(c.sub, 'alice');
  const r = await exchange(subject, AGENT1);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await assert.rejects(t.as.mintAccessToken({ clientId: 'agent-1', user: 'nobody' }), /unknown user/);
});
