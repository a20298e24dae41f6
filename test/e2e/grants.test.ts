/**
 * Least privilege per task through the real stack: embedded OAuth (client credentials and token
 * exchange over HTTP), the real SDK client, Cedar policies, and a stdio MCP server
 * (test/fixtures/tool-server.ts). Negative tests are named after THREATS ids where one applies.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import {
  callError,
  eventually,
  processGone,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.ts';
import { clientCredentialsToken, connectWithBearer, exchangeToken } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const TOOL_SERVER = join(ROOT, 'test/fixtures/tool-server.ts');
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange' as const;

/** Obviously fake canary secrets. */
const SECRETS: Record<string, string> = {
  reader: 'canary-reader-secret-not-real-0001',
  dev: 'canary-dev-secret-not-real-0002',
  ops: 'canary-ops-secret-not-real-0003',
};

const TOOLS = ['search_code', 'read_file', 'create_issue', 'write_file', 'deploy', 'delete_repo'] as const;
type Tool = (typeof TOOLS)[number];
const ARGS: Record<Tool, Record<string, unknown>> = {
  search_code: { q: 'todo' },
  read_file: { path: '/srv/app/readme' },
  create_issue: { repo: 'acme/widgets', title: 'bug' },
  write_file: { path: '/srv/app/readme', content: 'x' },
  deploy: { env: 'staging' },
  delete_repo: { repo: 'acme/old' },
};

type Expect = 'allow' | 'deny' | 'approval';
/** 3 principals × 6 tools (test/fixtures/policies/matrix.cedar). */
const MATRIX: Record<string, Record<Tool, Expect>> = {
  reader: {
    search_code: 'allow',
    read_file: 'allow',
    create_issue: 'deny',
    write_file: 'deny',
    deploy: 'deny',
    delete_repo: 'deny',
  },
  dev: {
    search_code: 'allow',
    read_file: 'allow',
    create_issue: 'allow',
    write_file: 'allow',
    deploy: 'approval',
    delete_repo: 'deny',
  },
  ops: {
    search_code: 'allow',
    read_file: 'allow',
    create_issue: 'allow',
    write_file: 'allow',
    deploy: 'approval',
    delete_repo: 'approval',
  },
};

let gw: TestGateway;
let work: string;
let events: string;

function config(): GatehouseConfigInput {
  type GrantType = 'client_credentials' | typeof TOKEN_EXCHANGE;
  const client = (id: string, exchange = false) => ({
    clientId: id,
    clientSecret: SECRETS[id] as string,
    grantTypes: (exchange ? ['client_credentials', TOKEN_EXCHANGE] : ['client_credentials']) as GrantType[],
    owner: `${id}-owners`,
  });
  return {
    auth: {
      mode: 'embedded',
      embedded: { clients: [client('reader'), client('dev', true), client('ops', true)] },
    },
    grants: { requireOwner: true },
    policy: {
      files: [join(ROOT, 'test/fixtures/policies/matrix.cedar')],
      roles: { agents: { ops: ['operators'] } },
      tools: {
        work__search_code: { risk: 'low', sideEffect: 'read' },
        work__read_file: { risk: 'low', sideEffect: 'read' },
        work__create_issue: { risk: 'medium', sideEffect: 'write' },
        work__write_file: { risk: 'medium', sideEffect: 'write' },
        work__deploy: { risk: 'high', sideEffect: 'external' },
        work__delete_repo: { risk: 'high', sideEffect: 'destructive' },
        work__transfer: { risk: 'low', sideEffect: 'write' },
        // A meta-tool reaches every other tool: classified as the riskiest of them.
        work__call_tool: { risk: 'high', sideEffect: 'destructive' },
        work__pid: { risk: 'low', sideEffect: 'read' },
        'work__sl*': { risk: 'low', sideEffect: 'read' },
      },
    },
    upstreams: {
      work: {
        type: 'stdio',
        command: process.execPath,
        args: ['--import', 'tsx', TOOL_SERVER],
        cwd: ROOT,
        env: { TOOL_SERVER_EVENTS: events },
        pool: { warm: 0 },
      },
    },
  };
}

const agent = (id: string) => ({ id, secret: SECRETS[id] as string });
const token = (id: string): Promise<string> => clientCredentialsToken(gw.origin, agent(id), gw.url);
const exchange = (id: string, subject: string, params: Record<string, string>) =>
  exchangeToken(gw.origin, agent(id), subject, { resource: gw.url, ...params });
const connect = (bearer: string): Promise<Client> => connectWithBearer(gw.url, bearer);

/** A bare initialize with `bearer` (no SDK client: the answer's status is what is asserted). */
function initialize(bearer: string): Promise<Response> {
  return fetch(gw.url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    }),
  });
}

function seen(): string[] {
  return existsSync(events) ? readFileSync(events, 'utf8').trim().split('\n') : [];
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-grants-'));
  events = join(work, 'events.log');
  gw = await startTestGateway(config());
});

after(async () => {
  await gw?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('policy matrix: 3 principals × 6 tools through the SDK client', () => {
  for (const agent of Object.keys(MATRIX)) {
    test(`${agent}: tools/list shows exactly what may be called; each call is allowed, denied or held for approval`, async () => {
      const client = await connect(await token(agent));
      try {
        const listed = new Set((await client.listTools()).tools.map((t) => t.name));
        for (const tool of TOOLS) {
          const expect = MATRIX[agent]?.[tool] as Expect;
          const name = `work__${tool}`;
          assert.equal(listed.has(name), expect !== 'deny', `${agent} list ${name}`);
          const before = seen().length;
          if (expect === 'allow') {
            const r = await client.callTool({ name, arguments: ARGS[tool] });
            assert.notEqual(r.isError, true, `${agent} ${name}`);
            continue;
          }
          const err = await callError(client, name, ARGS[tool]);
          assert.equal(err.code, expect === 'deny' ? -32020 : -32021, `${agent} ${name}: ${err.message}`);
          const data = err.data as { reference?: string; gatehouse?: string };
          assert.match(data.reference ?? '', /^dec_[A-Za-z0-9_-]{12}$/, 'the error carries a reference id');
          assert.equal(data.gatehouse, expect === 'deny' ? 'tool_not_permitted' : 'approval_required');
          // Refused calls never reach the upstream.
          assert.deepEqual(seen().slice(before), [], `${agent} ${name} reached the upstream`);
        }
      } finally {
        await client.close();
      }
    });
  }

  test('T04: a tool outside the grant and a tool that does not exist get the same answer (names are not revealed)', async () => {
    const client = await connect(await token('reader'));
    try {
      const denied = await callError(client, 'work__delete_repo', { repo: 'x' });
      const missing = await callError(client, 'work__no_such_tool', {});
      assert.equal(denied.code, -32020);
      assert.equal(missing.code, -32020);
      assert.equal(denied.message, missing.message);
      // An agent policy could allow is told plainly that a name does not exist.
      const ops = await connect(await token('ops'));
      const e = await callError(ops, 'work__no_such_tool', {});
      assert.equal(e.code, -32602);
      await ops.close();
    } finally {
      await client.close();
    }
  });
});

describe('arguments', () => {
  test('T28: arguments are validated against inputSchema before policy and before forwarding', async () => {
    const client = await connect(await token('dev'));
    try {
      const before = seen().length;
      const wrongType = await callError(client, 'work__create_issue', { repo: 42, title: 'x' });
      assert.equal(wrongType.code, -32602);
      assert.match(wrongType.message, /\/repo/);
      const missing = await callError(client, 'work__create_issue', { title: 'x' });
      assert.equal(missing.code, -32602);
      assert.match(missing.message, /repo/);
      const extra = await callError(client, 'work__write_file', {
        path: '/srv/app/a',
        content: 'x',
        mode: '777',
      });
      assert.equal(extra.code, -32602);
      assert.match(extra.message, /unexpected property `mode`/);
      // Without additionalProperties: false in the schema, extra properties are the server's business.
      await client.callTool({
        name: 'work__create_issue',
        arguments: { repo: 'a/b', title: 'x', labels: 'bug' },
      });
      const badEnum = await callError(client, 'work__deploy', { env: 'moon' });
      assert.equal(badEnum.code, -32602);
      const notObject = await client
        .request(
          { method: 'tools/call', params: { name: 'work__read_file', arguments: ['/etc/passwd'] } },
          (await import('@modelcontextprotocol/sdk/types.js')).CallToolResultSchema,
        )
        .then(
          () => assert.fail('array arguments accepted'),
          (e: unknown) => e as McpError,
        );
      assert.equal(notObject.code, -32602);
      assert.deepEqual(
        seen().slice(before),
        ['called create_issue'],
        'only the valid call reached the upstream',
      );
    } finally {
      await client.close();
    }
  });

  test('T04: a Cedar rule on a numeric argument (amount below a limit)', async () => {
    const client = await connect(await token('ops'));
    try {
      const ok = await client.callTool({ name: 'work__transfer', arguments: { amount: 999, to: 'bob' } });
      assert.notEqual(ok.isError, true);
      const err = await callError(client, 'work__transfer', { amount: 1000, to: 'bob' });
      assert.equal(err.code, -32020);
    } finally {
      await client.close();
    }
  });

  test('T04: no meta-tool bypass: a tool that calls other tools by name is itself subject to policy', async () => {
    const client = await connect(await token('dev'));
    try {
      const listed = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(!listed.includes('work__call_tool'));
      const before = seen().length;
      const err = await callError(client, 'work__call_tool', {
        name: 'delete_repo',
        arguments: { repo: 'x' },
      });
      assert.equal(err.code, -32020);
      assert.deepEqual(seen().slice(before), []);
    } finally {
      await client.close();
    }
  });
});

describe('task tokens', () => {
  test('a task token for two tools only: the list shows those two, everything else is refused', async () => {
    const own = await token('ops');
    const { status, body } = await exchange('ops', own, {
      scope: 'mcp tool:work__search_code tool:work__create_issue',
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.scope, 'mcp tool:work__create_issue tool:work__search_code');
    assert.match(String(body.gatehouse_grant), /^gr_/);
    const client = await connect(String(body.access_token));
    try {
      const listed = (await client.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(listed, ['work__create_issue', 'work__search_code']);
      const r = await client.callTool({ name: 'work__search_code', arguments: { q: 'x' } });
      assert.notEqual(r.isError, true);
      // Policy would allow ops to read files, but this task's grant does not.
      const err = await callError(client, 'work__read_file', { path: '/srv/app/readme' });
      assert.equal(err.code, -32020);
    } finally {
      await client.close();
    }
  });

  test('the grant is the intersection of the request and the policy, never wider', async () => {
    const own = await token('dev');
    const { status, body } = await exchange('dev', own, {
      scope: 'mcp tool:work__read_file tool:work__delete_repo',
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.scope, 'mcp tool:work__read_file', 'delete_repo is not granted to dev');
    const none = await exchange('dev', own, { scope: 'mcp tool:work__delete_repo' });
    assert.equal(none.status, 400);
    assert.equal(none.body.error, 'invalid_scope');
  });

  test('authorization_details (RFC 9396) constrain arguments: one repository only', async () => {
    const own = await token('ops');
    const details = [
      { type: 'gatehouse_tools', tools: ['work__create_issue'], arguments: { repo: ['acme/widgets'] } },
    ];
    const { status, body } = await exchange('ops', own, {
      scope: 'mcp',
      authorization_details: JSON.stringify(details),
    });
    assert.equal(status, 200, JSON.stringify(body));
    const client = await connect(String(body.access_token));
    try {
      const ok = await client.callTool({
        name: 'work__create_issue',
        arguments: { repo: 'acme/widgets', title: 'x' },
      });
      assert.notEqual(ok.isError, true);
      const err = await callError(client, 'work__create_issue', { repo: 'acme/secrets', title: 'x' });
      assert.equal(err.code, -32020);
    } finally {
      await client.close();
    }
    const bad = await exchange('ops', own, { scope: 'mcp', authorization_details: '[{"type":"other"}]' });
    assert.equal(bad.status, 400);
  });

  test("T26: a task token cannot be exchanged again, and an agent cannot narrow another agent's token", async () => {
    const own = await token('ops');
    const first = await exchange('ops', own, { scope: 'mcp tool:work__search_code' });
    assert.equal(first.status, 200);
    const again = await exchange('ops', String(first.body.access_token), {
      scope: 'mcp tool:work__search_code',
    });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    const stolen = await exchange('dev', own, { scope: 'mcp tool:work__search_code' });
    assert.equal(stolen.status, 400);
    assert.equal(stolen.body.error, 'invalid_grant');
  });
});

describe('grant end', () => {
  test('T26: revoking a grant (gatehouse grants revoke) ends an in-flight call, cancels it upstream and stops the stdio process', async (t) => {
    const bearer = await token('dev');
    const client = await connect(bearer);
    const pid = Number(
      (
        (await client.callTool({ name: 'work__pid', arguments: {} }).catch(() => undefined)) as
          | { content: { text: string }[] }
          | undefined
      )?.content[0]?.text ?? Number.NaN,
    );
    assert.ok(Number.isInteger(pid), 'pid tool answered');
    const sid = (client.transport as StreamableHTTPClientTransport).sessionId as string;
    let answeredAt = 0;
    const slow = client.callTool({ name: 'work__slow', arguments: { ms: 60_000 } });
    const outcome = slow.then(
      () => assert.fail('the slow call completed'),
      (e: unknown) => {
        answeredAt = Date.now();
        return e;
      },
    );
    await eventually('the upstream started the slow call', () => seen().includes('called slow'));
    const grant = gw.parts.registry.get(sid)?.grant;
    assert.ok(grant);
    assert.equal(grant.record.kind, 'session');
    const { execFile } = await import('node:child_process');
    const cli = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'src/cli/index.ts'),
          'grants',
          'revoke',
          grant.id,
          '--data-dir',
          gw.dataDir,
        ],
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
    const revokedAt = Date.now();
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(grant.id));
    const err = await outcome;
    assert.ok(err instanceof McpError, String(err));
    assert.equal(err.code, -32022, err.message);
    t.diagnostic(`client error ${Math.max(0, answeredAt - revokedAt)} ms after the revoke command returned`);
    await eventually('the upstream saw notifications/cancelled', () => seen().includes('cancelled slow'));
    await eventually('the stdio process exited', () => processGone(pid));
    // The session is gone with its grant: the next message is refused.
    await assert.rejects(client.callTool({ name: 'work__search_code', arguments: { q: 'x' } }));
    await client.close().catch(() => {});
    // The token that opened the revoked grant cannot open a new one (issue #11); a fresh token can.
    await eventually(
      "the revoked grant's token is refused",
      async () => (await initialize(bearer)).status === 401,
    );
    const again = await connect(await token('dev'));
    const r = await again.callTool({ name: 'work__search_code', arguments: { q: 'x' } });
    assert.notEqual(r.isError, true);
    await again.close();
  });

  test('T26: a revoked task token is refused for good, with a new session too', async () => {
    const own = await token('ops');
    const { body } = await exchange('ops', own, { scope: 'mcp tool:work__search_code' });
    const task = String(body.access_token);
    const client = await connect(task);
    await client.callTool({ name: 'work__search_code', arguments: { q: 'x' } });
    const ids = await gw.parts.grants.revoke({ id: String(body.gatehouse_grant) });
    assert.deepEqual(ids, [body.gatehouse_grant]);
    await assert.rejects(client.callTool({ name: 'work__search_code', arguments: { q: 'x' } }));
    await client.close().catch(() => {});
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${task}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32022);
  });

  test('T26: revoking a task token at the authorization server (RFC 7009) ends its grant; only its own client may', async () => {
    const own = await token('ops');
    const { body } = await exchange('ops', own, { scope: 'mcp tool:work__search_code' });
    const revoke = (agent: string, secret = SECRETS[agent]) =>
      fetch(`${gw.origin}/oauth/revoke`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${agent}:${secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token: String(body.access_token), token_type_hint: 'access_token' }),
      });
    const grantId = String(body.gatehouse_grant);
    assert.equal((await revoke('dev')).status, 400);
    assert.ok(gw.parts.grants.get(grantId), 'another client cannot end it');
    assert.equal((await revoke('ops', 'not-the-secret')).status, 401);
    assert.ok(gw.parts.grants.get(grantId), 'nor its own client without authenticating');
    const res = await revoke('ops');
    assert.equal(res.status, 200, await res.text());
    assert.equal(gw.parts.grants.get(grantId), undefined);
  });

  test('T10-11: a session id is not usable with a task token of another grant, nor a task session with a plain token', async () => {
    const own = await token('ops');
    const plain = await connect(own);
    const sid = (plain.transport as StreamableHTTPClientTransport).sessionId as string;
    const { body } = await exchange('ops', own, { scope: 'mcp tool:work__search_code' });
    const post = (bearer: string, session: string) =>
      fetch(gw.url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${bearer}`,
          'mcp-session-id': session,
          'mcp-protocol-version': '2025-11-25',
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
    assert.equal((await post(String(body.access_token), sid)).status, 404);
    const taskClient = await connect(String(body.access_token));
    const taskSid = (taskClient.transport as StreamableHTTPClientTransport).sessionId as string;
    assert.equal((await post(own, taskSid)).status, 404);
    assert.equal((await post(own, sid)).status, 200);
    await plain.close();
    await taskClient.close();
  });

  test('grants.requireOwner: an agent without an owner gets no grant', async () => {
    const grants = gw.parts.grants;
    const made = grants.create({
      kind: 'session',
      principal: {
        agent: 'nobody',
        user: undefined,
        subject: 'nobody',
        actors: [],
        tenant: undefined,
        tokenId: undefined,
        issuer: 'x',
        scopes: new Set(),
        authMethod: 'jwt',
        expiresAt: 0,
      },
      createdBy: 'test',
    });
    assert.ok(!('grant' in made));
    assert.equal(made.code, 'grant_refused');
  });

  test('gatehouse grants list shows live grants with principal, owner, tools, age and expiry', async () => {
    const own = await token('ops');
    const { body } = await exchange('ops', own, { scope: 'mcp tool:work__search_code' });
    const { spawnSync } = await import('node:child_process');
    const run = (...args: string[]) =>
      spawnSync(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), 'grants', ...args, '--data-dir', gw.dataDir],
        {
          encoding: 'utf8',
        },
      );
    const json = run('list', '--json');
    assert.equal(json.status, 0, json.stderr);
    const list = JSON.parse(json.stdout) as { id: string; owner: string; tools: string[]; agent: string }[];
    const mine = list.find((g) => g.id === body.gatehouse_grant);
    assert.ok(mine);
    assert.equal(mine.owner, 'ops-owners');
    assert.deepEqual(mine.tools, ['work__search_code']);
    const table = run('list');
    assert.match(table.stdout, /ID\s+KIND\s+PRINCIPAL\s+OWNER\s+TOOLS\s+AGE\s+EXPIRES IN/);
    assert.match(
      table.stdout,
      new RegExp(`${body.gatehouse_grant}\\s+task\\s+ops\\s+ops-owners\\s+work__search_code`),
    );
    const none = run('revoke', '--user', 'nobody-at-all');
    assert.equal(none.status, 0, "the user's tokens are revoked even without a live grant");
    assert.match(none.stdout, /revoked 0 grant\(s\)\nrevoked tokens of user nobody-at-all issued until /);
    assert.equal(run('revoke', 'gr_no-such-grant').status, 1, 'an unknown grant id revokes nothing');
    const byAgent = run('revoke', '--agent', 'ops');
    assert.equal(byAgent.status, 0, byAgent.stderr);
    assert.match(byAgent.stdout, new RegExp(String(body.gatehouse_grant)));
  });

  test('/metrics: active grants, grant revocations, and refused calls by decision', async () => {
    const text = await (await fetch(`${gw.origin}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
    assert.ok(value(/^gatehouse_active_grants (\d+)/m) >= 0);
    assert.ok(
      value(/^gatehouse_revocations_total\{kind="grant"\} (\d+)/m) >= 3,
      'CLI, RFC 7009 and API revocations',
    );
    assert.ok(value(/^gatehouse_calls_total\{[^}]*decision="deny"[^}]*\} (\d+)/m) >= 1);
    assert.ok(value(/^gatehouse_calls_total\{[^}]*decision="approve"[^}]*\} (\d+)/m) >= 1);
  });
});
