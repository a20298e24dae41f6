/**
 * MCP 2026-07-28 clients in front of a 2025-11-25 upstream (src/rev2026/, docs/protocol.md): a raw
 * 2026-07-28 client (fetch) and the 2025-11-25 SDK client use one gateway, one stdio upstream (the
 * conformance fixture) and one Cedar policy, with embedded OAuth (client credentials). Negative tests
 * are named after THREATS ids where one fits (T10-11: state bound to its principal and grant).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { approvalsCommand } from '../../src/cli/approvals.ts';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { auditEvents, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { clientCredentialsToken, connectWithBearer } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const FIXTURE = join(ROOT, 'test/fixtures/conformance-server.ts');
const V = '2026-07-28';

/** Obviously fake canary secrets. */
const SECRETS: Record<string, string> = {
  alice: 'canary-alice-secret-not-real-2026',
  bob: 'canary-bob-secret-not-real-2026',
  carol: 'canary-carol-secret-not-real-2026',
};

/** bob may not call conf__test_simple_text; everything else is allowed to everyone. */
const POLICY = `@id("allow-all")
permit (principal, action, resource);

@id("bob-no-simple-text")
forbid (principal == Gatehouse::Agent::"bob", action, resource == Gatehouse::Tool::"conf__test_simple_text");

@id("confirm-needs-approval")
@approval("required")
forbid (principal, action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"conf__test_input_required_result_request_state")
unless { context.approved };
`;

let gw: TestGateway;
let work: string;
let configFile: string;
const tokens: Record<string, string> = {};

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-rev2026-'));
  mkdirSync(join(work, 'data'), { mode: 0o700 });
  const policy = join(work, 'policy.cedar');
  writeFileSync(policy, POLICY);
  const config: GatehouseConfigInput = {
    // carol decides; a held call is answered approval_pending at once (the test approves, then retries).
    approvals: { approvers: ['carol'], holdSec: 0 },
    auth: {
      mode: 'embedded',
      embedded: {
        clients: Object.keys(SECRETS).map((id) => ({
          clientId: id,
          clientSecret: SECRETS[id] as string,
          grantTypes: ['client_credentials' as const],
        })),
      },
    },
    policy: { files: [policy] },
    upstreams: {
      conf: {
        type: 'stdio',
        command: process.execPath,
        args: ['--import', 'tsx', FIXTURE, '--stdio'],
        cwd: ROOT,
        pool: { warm: 0 },
      },
    },
  };
  gw = await startTestGateway(config, { dataDir: join(work, 'data') });
  // The CLI reads the same approvers (YAML is a superset of JSON).
  configFile = join(work, 'gatehouse.json');
  writeFileSync(configFile, JSON.stringify({ ...config, server: { host: '127.0.0.1', port: 0 } }));
  for (const id of Object.keys(SECRETS)) {
    tokens[id] = await clientCredentialsToken(gw.origin, { id, secret: SECRETS[id] as string }, gw.url);
  }
});

after(async () => {
  await gw?.close();
  rmSync(work, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Headers;
  body: {
    id?: unknown;
    result?: Record<string, unknown>;
    error?: { code: number; message: string; data?: Record<string, unknown> };
  };
}

const META = {
  'io.modelcontextprotocol/protocolVersion': V,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-2026-client', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': { elicitation: {}, sampling: {} },
};

let nextId = 1;

/**
 * One 2026-07-28 request: headers mirror the body unless `headers` overrides them (a value of
 * `undefined` removes the header); `meta` replaces `_meta`.
 */
async function send(
  who: string,
  method: string,
  params: Record<string, unknown> = {},
  opts: { headers?: Record<string, string | undefined>; meta?: unknown; id?: unknown } = {},
): Promise<Answer> {
  const name = params.name ?? params.uri;
  const headers: Record<string, string | undefined> = {
    authorization: `Bearer ${tokens[who]}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': V,
    'mcp-method': method,
    ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
    ...opts.headers,
  };
  const clean = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  const res = await fetch(gw.url, {
    method: 'POST',
    headers: clean,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: opts.id ?? nextId++,
      method,
      params: { ...params, _meta: opts.meta === undefined ? META : opts.meta },
    }),
  });
  const type = res.headers.get('content-type') ?? '';
  let body: Answer['body'];
  if (type.includes('text/event-stream')) {
    // The last data line of the stream is the response.
    const lines = (await res.text()).split('\n').filter((l) => l.startsWith('data:') && l.length > 6);
    body = JSON.parse((lines.at(-1) ?? 'data: {}').slice(5)) as Answer['body'];
  } else body = (await res.json()) as Answer['body'];
  return { status: res.status, headers: res.headers, body };
}

const call = (
  who: string,
  tool: string,
  args: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
) => send(who, 'tools/call', { name: tool, arguments: args, ...extra });

describe('2026-07-28 requests through Gatehouse', () => {
  test('a plain call: complete result, the client id back, no session id; server/discover is private', async () => {
    const res = await call('alice', 'conf__test_simple_text', {}, {});
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('mcp-session-id'), null);
    assert.equal(res.body.result?.resultType, 'complete');
    const discover = await send('alice', 'server/discover', {}, { id: 'discover-1' });
    assert.equal(discover.body.id, 'discover-1');
    assert.equal(discover.body.result?.cacheScope, 'private');
    assert.ok(((discover.body.result?.supportedVersions ?? []) as string[]).includes(V));
    assert.ok(((discover.body.result?.supportedVersions ?? []) as string[]).includes('2025-11-25'));
  });

  test('the same client id in concurrent requests is fine (each travels under a gateway id)', async () => {
    const answers = await Promise.all([1, 2, 3].map(() => call('alice', 'conf__test_simple_text', {}, {})));
    for (const a of answers) assert.equal(a.body.result?.resultType, 'complete');
    const same = await Promise.all([7, 7].map((id) => send('alice', 'tools/list', {}, { id })));
    for (const a of same) assert.equal(a.body.id, 7);
  });

  test("T04 tools/list is the grant's view, never cached as shared", async () => {
    const names = async (who: string) => {
      const res = await send(who, 'tools/list');
      assert.equal(res.body.result?.cacheScope, 'private');
      return ((res.body.result?.tools ?? []) as { name: string }[]).map((t) => t.name);
    };
    assert.ok((await names('alice')).includes('conf__test_simple_text'));
    assert.ok(!(await names('bob')).includes('conf__test_simple_text'));
  });
});

describe('header/body validation (SEP-2243): HTTP 400, -32020, with the id, before anything acts', () => {
  const mismatch = (res: Answer, id: unknown) => {
    assert.equal(res.status, 400);
    assert.equal(res.body.error?.code, -32020);
    assert.equal(res.body.error?.data?.gatehouse, 'header_mismatch');
    assert.equal(res.body.id, id);
  };

  test('Mcp-Method differs from the body', async () => {
    // A call that passes is recorded write-ahead (before it is forwarded), so it is on disk now.
    assert.equal((await call('alice', 'conf__test_simple_text')).body.result?.resultType, 'complete');
    const before = auditEvents(gw.dataDir, 'call.attempted').length;
    assert.ok(before > 0);
    const res = await send(
      'alice',
      'tools/call',
      { name: 'conf__test_simple_text', arguments: {} },
      { headers: { 'mcp-method': 'tools/list' }, id: 'm1' },
    );
    mismatch(res, 'm1');
    // Refused before policy, the write-ahead audit or the upstream: nothing recorded.
    assert.equal(auditEvents(gw.dataDir, 'call.attempted').length, before);
  });

  test('Mcp-Name differs from the body (a policy-allowed name in the header, another in the body)', async () => {
    const res = await send(
      'bob',
      'tools/call',
      { name: 'conf__test_simple_text', arguments: {} },
      { headers: { 'mcp-name': 'conf__test_image_content' }, id: 'n1' },
    );
    mismatch(res, 'n1');
  });

  test('both headers differ', async () => {
    const res = await send(
      'alice',
      'tools/call',
      { name: 'conf__test_simple_text', arguments: {} },
      { headers: { 'mcp-method': 'prompts/get', 'mcp-name': 'x' }, id: 'b1' },
    );
    mismatch(res, 'b1');
  });

  test('headers missing: Mcp-Method, Mcp-Name', async () => {
    mismatch(await send('alice', 'tools/list', {}, { headers: { 'mcp-method': undefined }, id: 'h1' }), 'h1');
    mismatch(
      await send(
        'alice',
        'tools/call',
        { name: 'conf__test_simple_text', arguments: {} },
        { headers: { 'mcp-name': undefined }, id: 'h2' },
      ),
      'h2',
    );
  });

  test('a base64-encoded Mcp-Name is decoded before the comparison', async () => {
    const encoded = `=?base64?${Buffer.from('conf__test_simple_text').toString('base64')}?=`;
    const ok = await send(
      'alice',
      'tools/call',
      { name: 'conf__test_simple_text', arguments: {} },
      { headers: { 'mcp-name': encoded } },
    );
    assert.equal(ok.body.result?.resultType, 'complete');
    const other = `=?base64?${Buffer.from('conf__test_image_content').toString('base64')}?=`;
    mismatch(
      await send(
        'alice',
        'tools/call',
        { name: 'conf__test_simple_text', arguments: {} },
        { headers: { 'mcp-name': other }, id: 'e1' },
      ),
      'e1',
    );
  });
});

describe('revisions, versions and removed methods', () => {
  test('_meta missing or incomplete: 400, -32602', async () => {
    for (const meta of [null, { 'io.modelcontextprotocol/protocolVersion': V }]) {
      const res = await send('alice', 'tools/list', {}, { meta, id: 'meta' });
      assert.equal(res.status, 400);
      assert.equal(res.body.error?.code, -32602);
      assert.equal(res.body.id, 'meta');
    }
  });

  test('an unknown version: 400, -32022, the versions supported and the one asked, with the id', async () => {
    const res = await send(
      'alice',
      'server/discover',
      {},
      {
        headers: { 'mcp-protocol-version': '2099-01-01' },
        meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' },
        id: 99,
      },
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error?.code, -32022);
    assert.equal(res.body.id, 99);
    assert.deepEqual(res.body.error?.data?.requested, '2099-01-01');
    assert.ok(((res.body.error?.data?.supported ?? []) as string[]).includes(V));
  });

  test('removed methods (initialize, ping, logging/setLevel) and unknown ones: 404, -32601', async () => {
    for (const method of ['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'no/such']) {
      const res = await send('alice', method, {}, { id: method });
      assert.equal(res.status, 404, method);
      assert.equal(res.body.error?.code, -32601, method);
      assert.equal(res.body.id, method);
    }
  });

  test('GET and DELETE under 2026-07-28: 405 (no standalone stream, no session to end)', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(gw.url, {
        method,
        headers: {
          authorization: `Bearer ${tokens.alice}`,
          accept: 'text/event-stream',
          'mcp-protocol-version': V,
        },
      });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get('allow'), 'POST');
      await res.body?.cancel();
    }
  });

  test('mixing revisions: a 2026-07-28 request carrying a 2025-11-25 session id is refused', async () => {
    const client = await connectWithBearer(gw.url, tokens.alice as string);
    try {
      const sid = (client.transport as { sessionId?: string } | undefined)?.sessionId;
      assert.ok(sid);
      const res = await send('alice', 'tools/list', {}, { headers: { 'mcp-session-id': sid }, id: 'mix' });
      assert.equal(res.status, 400);
      assert.equal(res.body.error?.code, -32020);
      assert.equal(res.body.id, 'mix');
    } finally {
      await client.close();
    }
  });

  test('downgrade: a 2026-07-28 body under a 2025-11-25 (or no) version header is refused', async () => {
    for (const version of ['2025-11-25', undefined]) {
      const res = await send(
        'alice',
        'tools/list',
        {},
        { headers: { 'mcp-protocol-version': version }, id: 'd' },
      );
      assert.equal(res.status, 400, String(version));
      assert.equal(res.body.error?.code, -32020, String(version));
    }
  });
});

describe('policy and grants apply to 2026-07-28 requests as to sessions', () => {
  test('T04 a tool outside the grant is refused; tool_not_permitted as for a session', async () => {
    const res = await call('bob', 'conf__test_simple_text', {}, {});
    assert.equal(res.body.error?.data?.gatehouse, 'tool_not_permitted');
  });

  test('a 2025-11-25 SDK client and a 2026-07-28 client at once, same upstream, same policy', async () => {
    const [legacyBob, legacyAlice] = await Promise.all([
      connectWithBearer(gw.url, tokens.bob as string),
      connectWithBearer(gw.url, tokens.alice as string),
    ]);
    try {
      const [a, b, c, d] = await Promise.allSettled([
        legacyAlice.callTool({ name: 'conf__test_simple_text', arguments: {} }),
        legacyBob.callTool({ name: 'conf__test_simple_text', arguments: {} }),
        call('alice', 'conf__test_simple_text', {}, {}),
        call('bob', 'conf__test_simple_text', {}, {}),
      ]);
      assert.equal(a.status, 'fulfilled');
      assert.equal(b.status, 'rejected');
      assert.ok(b.status === 'rejected' && b.reason instanceof McpError);
      assert.equal(c.status === 'fulfilled' && c.value.body.result?.resultType, 'complete');
      assert.equal(d.status === 'fulfilled' && d.value.body.error?.data?.gatehouse, 'tool_not_permitted');
    } finally {
      await Promise.all([legacyAlice.close(), legacyBob.close()]);
    }
  });
});

describe('InputRequiredResult and requestState (SEP-2322)', () => {
  const ask = async (who: string) => {
    const res = await call(who, 'conf__test_input_required_result_elicitation');
    assert.equal(res.body.result?.resultType, 'input_required');
    const state = res.body.result?.requestState;
    assert.equal(typeof state, 'string');
    return state as string;
  };
  const retry = (who: string, state: string, tool = 'conf__test_input_required_result_elicitation') =>
    call(
      who,
      tool,
      {},
      {
        requestState: state,
        inputResponses: { user_name: { action: 'accept', content: { name: 'Alice' } } },
      },
    );
  const refused = (res: Answer) => {
    assert.equal(res.body.error?.data?.gatehouse, 'request_state_invalid');
    assert.equal(res.body.error?.code, -32602);
  };

  test('the retry resumes the held upstream call; the state carries nothing in clear', async () => {
    const state = await ask('alice');
    assert.ok(!Buffer.from(state, 'base64url').toString('latin1').includes('alice'));
    const done = await retry('alice', state);
    assert.equal(done.body.result?.resultType, 'complete');
    assert.deepEqual(done.body.result?.content, [{ type: 'text', text: 'Hello, Alice!' }]);
  });

  test('T10-11: replayed after use', async () => {
    const state = await ask('alice');
    assert.equal((await retry('alice', state)).body.result?.resultType, 'complete');
    refused(await retry('alice', state));
  });

  test('T10-11: presented by another principal (and it stays usable by its own)', async () => {
    const state = await ask('alice');
    refused(await retry('bob', state));
    assert.equal((await retry('alice', state)).body.result?.resultType, 'complete');
  });

  test('tampered, or presented on another request', async () => {
    const state = await ask('alice');
    const raw = Buffer.from(state, 'base64url');
    raw[20] = (raw[20] ?? 0) ^ 1;
    refused(await retry('alice', raw.toString('base64url')));
    refused(await retry('alice', state, 'conf__test_input_required_result_sampling'));
    refused(await retry('alice', 'not-a-state'));
    assert.equal((await retry('alice', state)).body.result?.resultType, 'complete');
  });

  test('a state resumes only the arguments it was issued for; gateway keys when the upstream names none', async () => {
    const first = await call('alice', 'conf__test_elicitation', { message: 'who are you?' });
    assert.equal(first.body.result?.resultType, 'input_required');
    assert.deepEqual(Object.keys(first.body.result?.inputRequests ?? {}), ['input-1']);
    const state = first.body.result?.requestState as string;
    const answer = { 'input-1': { action: 'accept', content: { username: 'a', email: 'a@example.test' } } };
    refused(
      await call(
        'alice',
        'conf__test_elicitation',
        { message: 'other' },
        { requestState: state, inputResponses: answer },
      ),
    );
    const done = await call(
      'alice',
      'conf__test_elicitation',
      { message: 'who are you?' },
      { requestState: state, inputResponses: answer },
    );
    assert.equal(done.body.result?.resultType, 'complete');
  });

  test('a request needing a capability its _meta does not declare: 400, -32021, requiredCapabilities', async () => {
    const res = await send(
      'alice',
      'tools/call',
      { name: 'conf__test_missing_capability', arguments: {} },
      { meta: { ...META, 'io.modelcontextprotocol/clientCapabilities': {} }, id: 'cap' },
    );
    assert.equal(res.status, 400);
    assert.equal(res.body.error?.code, -32021);
    assert.deepEqual(res.body.error?.data?.requiredCapabilities, { sampling: {} });
    assert.equal(res.body.id, 'cap');
  });

  test('T25 an approved call is approved once: its retries continue under that approval, a forged state does not', async () => {
    const tool = 'conf__test_input_required_result_request_state';
    const pending = await call('alice', tool);
    assert.equal(pending.body.error?.data?.gatehouse, 'approval_pending');
    const id = String(pending.body.error?.data?.approval);
    const silent = new Writable({ write: (_c, _e, cb) => cb() });
    const code = await approvalsCommand(
      ['approve', id, '--as', 'carol', '--data-dir', gw.dataDir, '--config', configFile],
      { stdin: process.stdin, stdout: silent, stderr: silent, env: process.env },
    );
    assert.equal(code, 0);
    // The identical call consumes the approval, reaches the upstream, which asks for a confirmation.
    const asked = await call('alice', tool);
    assert.equal(asked.body.result?.resultType, 'input_required', JSON.stringify(asked.body));
    const state = asked.body.result?.requestState as string;
    const inputResponses = { confirm: { action: 'accept', content: { ok: true } } };
    // A state that does not open is no way around the approval: the call is held again.
    const forged = await call('alice', tool, {}, { requestState: `${state.slice(0, -2)}AA`, inputResponses });
    assert.equal(forged.body.error?.data?.gatehouse, 'approval_pending');
    const done = await call('alice', tool, {}, { requestState: state, inputResponses });
    assert.equal(done.body.result?.resultType, 'complete', JSON.stringify(done.body));
    assert.match(JSON.stringify(done.body.result?.content), /state-ok/);
  });

  test('T26: revoking the grant ends a held call; the state and the token are refused after', async () => {
    const state = await ask('carol');
    await gw.parts.grants.revoke({ agent: 'carol' });
    const res = await retry('carol', state);
    assert.notEqual(res.body.result?.resultType, 'complete');
    assert.ok(res.status === 401 || res.body.error !== undefined, JSON.stringify(res.body));
  });
});
