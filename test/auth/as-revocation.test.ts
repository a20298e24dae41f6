/**
 * The embedded authorization server and the token revocation list: a revocation also stops the
 * credentials that would mint fresh tokens (refresh tokens), a revoked authorization-server grant
 * revokes its access tokens (RFC 7009 §2.1, OAuth 2.1 §4.1.3), and RFC 7009 revocation of JWT access
 * tokens by public clients. Confidential clients and the gateway: test/e2e/revocation.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { toPrincipal } from '../../src/auth/verify/claims.ts';
import { eventually } from '../helpers/gateway.ts';
import {
  codeFlow,
  type DcrClient,
  registerPublic,
  startAs,
  type TestAs,
  tokenRequest,
  verifyAccessToken,
} from './as-harness.ts';

let t: TestAs;
before(async () => {
  t = await startAs({
    revocations: true,
    users: { alice: 'correct horse battery', bob: 'correct horse battery' },
  });
});
after(async () => {
  await t.close();
});

const REDIRECT = 'http://127.0.0.1:9999/callback';

/** Whether the resource server would refuse `token` as revoked. */
async function revoked(token: string): Promise<boolean> {
  const payload = await verifyAccessToken(t, token);
  const p = toPrincipal(payload, {
    issuer: t.issuer,
    tenantClaim: 'tenant',
    authMethod: 'jwt',
    expiresAt: payload.exp ?? 0,
  });
  assert.ok(t.revocations);
  return t.revocations.isRevoked(p);
}

/** Access and refresh token of `user` for `c` (code flow with offline_access). */
async function offline(
  c: DcrClient,
  user = 'alice',
): Promise<{ access: string; refresh: string; code: string; verifier: string }> {
  const flow = await codeFlow(
    t,
    { client_id: c.client_id, redirect_uri: REDIRECT },
    { scope: 'mcp offline_access', user },
  );
  const code = flow.redirect.searchParams.get('code') ?? '';
  const tok = await tokenRequest(t, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    client_id: c.client_id,
    code_verifier: flow.verifier,
  });
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  return {
    access: String(tok.body['access_token']),
    refresh: String(tok.body['refresh_token']),
    code,
    verifier: flow.verifier,
  };
}

const refresh = (c: DcrClient, token: string) =>
  tokenRequest(t, { grant_type: 'refresh_token', refresh_token: token, client_id: c.client_id });

function revokeAt(form: Record<string, string>): Promise<Response> {
  return fetch(t.url('/oauth/revoke'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
}

/** Waits until the clock is past the current second (`iat` has one-second resolution). */
async function nextSecond(): Promise<void> {
  const second = Math.floor(Date.now() / 1000);
  await eventually('the next second', () => Math.floor(Date.now() / 1000) > second);
}

test("T26 a user's revocation covers the refresh tokens issued before it: they mint nothing; a new login does", async () => {
  const c = await registerPublic(t);
  const before = await offline(c);
  assert.equal(await revoked(before.access), false);
  await t.revocations?.revoke({ kind: 'user', user: 'alice' }, 'test');
  assert.equal(await revoked(before.access), true);
  // Otherwise the client would refresh and get a token issued after the revocation, so not covered by it.
  const refused = await refresh(c, before.refresh);
  assert.equal(refused.status, 400);
  assert.equal(refused.body['error'], 'invalid_grant');
  await nextSecond();
  const after = await offline(c);
  assert.equal(await revoked(after.access), false, 'authorized again after the revocation');
  const refreshed = await refresh(c, after.refresh);
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.equal(await revoked(String(refreshed.body['access_token'])), false);
});

test("T26 an agent's revocation covers its refresh tokens too", async () => {
  const c = await registerPublic(t);
  const before = await offline(c, 'bob');
  await t.revocations?.revoke({ kind: 'agent', agent: c.client_id }, 'test');
  assert.equal(await revoked(before.access), true);
  assert.equal((await refresh(c, before.refresh)).body['error'], 'invalid_grant');
});

test('T06 OAuth 2.1 §4.1.3: a replayed authorization code revokes the access tokens issued from it', async () => {
  const c = await registerPublic(t);
  const first = await offline(c);
  assert.equal(await revoked(first.access), false);
  const replay = await tokenRequest(t, {
    grant_type: 'authorization_code',
    code: first.code,
    redirect_uri: REDIRECT,
    client_id: c.client_id,
    code_verifier: first.verifier,
  });
  assert.equal(replay.body['error'], 'invalid_grant');
  assert.equal(await revoked(first.access), true, 'not only the refresh token');
});

test('T26 RFC 7009 §2.1: revoking a refresh token revokes the access tokens of its grant', async () => {
  const c = await registerPublic(t);
  const tokens = await offline(c);
  const res = await revokeAt({ token: tokens.refresh, client_id: c.client_id });
  assert.equal(res.status, 200);
  assert.equal(await revoked(tokens.access), true);
  assert.equal((await refresh(c, tokens.refresh)).body['error'], 'invalid_grant');
});

test("T26 RFC 7009 §2.1 (public clients): a client revokes its own JWT access token, not another client's", async () => {
  const mine = await registerPublic(t);
  const theirs = await registerPublic(t);
  const { access } = await offline(mine, 'bob');
  const foreign = await revokeAt({ token: access, client_id: theirs.client_id });
  assert.equal(foreign.status, 200, 'a public client learns nothing');
  assert.equal(await revoked(access), false);
  const own = await revokeAt({ token: access, client_id: mine.client_id, token_type_hint: 'access_token' });
  assert.equal(own.status, 200);
  assert.equal(await revoked(access), true);
});
