/**
 * Revoking a plain access token (issue #11): the token revocation list through the real stack, the
 * embedded authorization server over HTTP, the real CLI in another process, and the SDK client. Each
 * feed (RFC 7009, `grants revoke --user/--agent`, `users rm`, a client removed from the configuration)
 * must stop a token that was already used, i.e. sits in the verified-token cache, on its next request.
 * Named after THREATS ids: T26 (session-scoped grants), T02-03 (tokens).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pino from 'pino';
import { loadKeys } from '../../src/auth/as/keys.ts';
import { mintAccessToken } from '../../src/auth/as/mint.ts';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { startGateway } from '../../src/gateway.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../fixtures/recording-upstream.ts';
import { auditEvents, eventually, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { clientCredentialsToken, connectWithBearer, exchangeToken, seedUser } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange' as const;
/** Obviously fake canary secrets. */
const SECRETS = { agent: 'canary-agent-secret-not-real-0011', other: 'canary-other-secret-not-real-0012' };
type ClientId = keyof typeof SECRETS;

let upstream: RecordingUpstream;
let gw: TestGateway;

function config(upstreamUrl: string, clients: ClientId[] = ['agent', 'other']): GatehouseConfigInput {
  return {
    auth: {
      mode: 'embedded',
      embedded: {
        clients: clients.map((id) => ({
          clientId: id,
          clientSecret: SECRETS[id],
          grantTypes: ['client_credentials', TOKEN_EXCHANGE],
          owner: `${id}-owners`,
        })),
      },
    },
    upstreams: { up: { type: 'http', url: upstreamUrl } },
    pinning: { newTools: 'trust' },
    // Refusals without a principal (a revoked token's included) are counted per window (T32): short here.
    audit: { anonymousFailures: { windowSec: 1 } },
  };
}

before(async () => {
  upstream = await startRecordingUpstream();
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-revocation-'));
  for (const username of ['alice', 'bob', 'carol'])
    await seedUser(dataDir, { username, password: 'correct horse battery' });
  gw = await startTestGateway(config(upstream.url), { dataDir });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
});

const agent = (id: ClientId) => ({ id, secret: SECRETS[id] });
const clientToken = (id: ClientId): Promise<string> => clientCredentialsToken(gw.origin, agent(id), gw.url);

/** A token of `client` acting for local user `user`, as the AS issues it (signed with its key, jti, iat). */
async function userToken(user: string, client: ClientId = 'agent'): Promise<string> {
  const key = (await loadKeys(gw.dataDir, { create: false })).signing[0];
  assert.ok(key);
  const issuer = gw.origin;
  return mintAccessToken({
    key,
    issuer,
    resource: gw.url,
    clientId: client,
    sub: user,
    scope: 'mcp',
    ttlSec: 300,
  });
}

/** Waits until the clock is past the second of a revocation made now (`iat` has one-second resolution). */
async function nextSecond(): Promise<void> {
  const second = Math.floor(Date.now() / 1000);
  await eventually('the next second', () => Math.floor(Date.now() / 1000) > second);
}

/** A bare POST to /mcp (no SDK client: the status and headers are what is asserted). */
function post(bearer: string, body: Record<string, unknown>, session?: string): Promise<Response> {
  return fetch(gw.url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
      ...(session ? { 'mcp-session-id': session } : {}),
    },
    body: JSON.stringify(body),
  });
}

const initialize = (bearer: string): Promise<Response> =>
  post(bearer, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });

/** Whether `bearer` can open a session now. */
async function accepted(bearer: string): Promise<boolean> {
  const res = await initialize(bearer);
  await res.body?.cancel();
  return res.status === 200;
}

/** A revoked token's answer: 401 invalid_token that says "revoked" and nothing more. */
async function assertRevoked(res: Response): Promise<void> {
  assert.equal(res.status, 401);
  assert.equal(
    res.headers.get('www-authenticate'),
    `Bearer error="invalid_token", scope="mcp", resource_metadata="${gw.origin}/.well-known/oauth-protected-resource/mcp", error_description="token revoked"`,
  );
  const body = (await res.json()) as { error: { data: { gatehouse: string } } };
  assert.equal(body.error.data.gatehouse, 'invalid_token');
}

/** A client that has made one tool call (so its token sits in the verified-token cache). */
async function usedClient(bearer: string): Promise<{ client: Client; session: string }> {
  const client = await connectWithBearer(gw.url, bearer);
  const r = await client.callTool({ name: 'up__echo', arguments: { text: 'before' } });
  assert.notEqual(r.isError, true);
  return { client, session: (client.transport as StreamableHTTPClientTransport).sessionId as string };
}

function revoke(client: { id: string; secret: string }, token: string): Promise<Response> {
  return fetch(`${gw.origin}/oauth/revoke`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
  });
}

/** `gatehouse ARGS --data-dir <the gateway's>` as a separate process (the real CLI). */
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), ...args, '--data-dir', gw.dataDir],
    { encoding: 'utf8' },
  );
}

describe('RFC 7009 revocation of a plain access token', () => {
  test('T26 a plain token revoked by its client opens no new session and cannot continue its own (verified-cache hit)', async () => {
    const bearer = await clientToken('agent');
    const { client, session } = await usedClient(bearer);
    const res = await revoke(agent('agent'), bearer);
    assert.equal(res.status, 200, await res.text());
    // In process: the very next request is refused, the cached verification notwithstanding.
    await assertRevoked(
      await post(bearer, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, session),
    );
    await assert.rejects(client.callTool({ name: 'up__echo', arguments: { text: 'after' } }));
    await assertRevoked(await initialize(bearer));
    // The session it opened ended with it (its grant recorded the token's jti).
    await eventually('the session is gone', () => gw.parts.registry.get(session) === undefined);
    await client.close().catch(() => {});
    // Revocation is per token: a new token of the same agent works.
    const fresh = await usedClient(await clientToken('agent'));
    await fresh.client.close();
    await eventually('the revocation and the refusal are audited', () => {
      const events = auditEvents(gw.dataDir);
      return (
        events.some(
          (e) =>
            e['type'] === 'admin.action' &&
            (e['detail'] as Record<string, unknown>)['action'] === 'tokens.revoked' &&
            (e['detail'] as Record<string, unknown>)['kind'] === 'jti',
        ) &&
        events.some(
          (e) =>
            e['type'] === 'authn.failure.summary' &&
            (e['detail'] as Record<string, unknown>)['reason'] === 'token revoked',
        )
      );
    });
  });

  test('T02-03 a revoked token stays revoked for a token exchange: it buys no fresh token', async () => {
    const alice = await userToken('alice');
    assert.equal((await revoke(agent('agent'), alice)).status, 200);
    const { status, body } = await exchangeToken(gw.origin, agent('agent'), alice, {
      resource: gw.url,
      scope: 'mcp',
    });
    assert.equal(status, 400);
    assert.equal(body.error, 'invalid_grant');
  });

  test('T26 RFC 7009 §2.1: only the client the token was issued to may revoke it, and only with its credentials', async () => {
    const bearer = await clientToken('agent');
    assert.ok(await accepted(bearer));
    const foreign = await revoke(agent('other'), bearer);
    assert.equal(foreign.status, 400);
    assert.equal(((await foreign.json()) as { error: string }).error, 'invalid_request');
    const forged = await revoke({ id: 'agent', secret: 'not-the-secret' }, bearer);
    assert.equal(forged.status, 401, 'no revocation without client authentication');
    assert.equal(((await forged.json()) as { error: string }).error, 'invalid_client');
    assert.ok(await accepted(bearer), 'still valid');
    assert.equal((await revoke(agent('agent'), bearer)).status, 200);
    assert.equal(await accepted(bearer), false);
  });

  test('RFC 7009 §2.2: an invalid or foreign token is answered 200 and changes nothing', async () => {
    const res = await revoke(agent('agent'), 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });
});

describe('operator revocation through the CLI (another process; the gateway notices on its poll)', () => {
  test("T26 grants revoke --user: the user's older tokens are refused after the poll; a token issued after works", async () => {
    const alice = await userToken('alice');
    const bob = await userToken('bob');
    const { client } = await usedClient(alice);
    const out = cli('grants', 'revoke', '--user', 'alice');
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /revoked 1 grant\(s\):\n {2}gr_\S+\nrevoked tokens of user alice issued until /);
    await eventually("alice's token is refused", async () => !(await accepted(alice)));
    await assertRevoked(await initialize(alice));
    await assert.rejects(client.callTool({ name: 'up__echo', arguments: { text: 'after' } }));
    await client.close().catch(() => {});
    assert.ok(await accepted(bob), "another user's token is untouched");
    const exchanged = await exchangeToken(gw.origin, agent('agent'), alice, {
      resource: gw.url,
      scope: 'mcp',
    });
    assert.equal(exchanged.body.error, 'invalid_grant', 'no fresh token for a revoked one');
    await nextSecond();
    const later = await usedClient(await userToken('alice'));
    await later.client.close();
  });

  test('T26 grants revoke --agent: every token of the agent issued until now, for itself or for a user', async () => {
    const own = await clientToken('other');
    const forBob = await userToken('bob', 'other');
    assert.ok(await accepted(forBob));
    const out = cli('grants', 'revoke', '--agent', 'other');
    assert.equal(out.status, 0, out.stderr);
    await eventually("the agent's tokens are refused", async () => !(await accepted(own)));
    assert.equal(await accepted(forBob), false);
    assert.ok(
      await accepted(await userToken('bob', 'agent')),
      'another agent for the same user is untouched',
    );
    await nextSecond();
    assert.ok(await accepted(await clientToken('other')), 'a token issued after the revocation works');
  });

  test("T26 users rm: the removed user's tokens are refused after the poll", async () => {
    const carol = await userToken('carol');
    assert.ok(await accepted(carol));
    const out = cli('users', 'rm', 'carol');
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /user carol removed; tokens issued to them are revoked/);
    await eventually("carol's token is refused", async () => !(await accepted(carol)));
  });
});

describe('client removal', () => {
  test('T26 a pre-registered client removed from the configuration: its tokens are refused from the next start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-revocation-restart-'));
    // The same port both times: the issuer (and so the tokens' `iss`) is the gateway's origin.
    const start = (clients: ClientId[], port = 0) =>
      startGateway({
        config: { ...config(upstream.url, clients), server: { host: '127.0.0.1', port } },
        dataDir,
        logger: pino({ level: 'silent' }),
      });
    try {
      const first = await start(['agent', 'other']);
      const bearer = await clientCredentialsToken(first.origin, agent('other'), first.url);
      const kept = await clientCredentialsToken(first.origin, agent('agent'), first.url);
      await first.close();
      const second = await start(['agent'], first.port);
      try {
        // A fresh connection (no keep-alive socket left over from the first gateway on this port).
        const status = (token: string): Promise<number | undefined> =>
          new Promise((resolve, reject) => {
            const req = request(
              second.url,
              {
                method: 'POST',
                agent: false,
                headers: {
                  authorization: `Bearer ${token}`,
                  'content-type': 'application/json',
                  accept: 'application/json, text/event-stream',
                },
              },
              (res) => {
                res.resume();
                resolve(res.statusCode);
              },
            );
            req.on('error', reject);
            req.end(
              JSON.stringify({
                jsonrpc: '2.0',
                id: 1,
                method: 'initialize',
                params: {
                  protocolVersion: '2025-11-25',
                  capabilities: {},
                  clientInfo: { name: 'x', version: '1' },
                },
              }),
            );
          });
        // Same signing key (oauth-keys.json), so only the revocation list refuses it.
        assert.equal(await status(bearer), 401);
        assert.equal(await status(kept), 200, 'a client still configured keeps its tokens');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
