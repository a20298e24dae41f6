/**
 * `upstreams.<name>.isolation` (issue #12): stdio processes shared per principal or by everyone, with
 * real parts only: the embedded authorization server (two agents, one user), the SDK client, and real
 * stdio servers (test/fixtures/tool-server.ts, test/fixtures/misbehaving-server.ts and
 * @modelcontextprotocol/server-everything). Negative tests first: a shared process must never let one
 * session see another's results, progress, cancellations or server-to-client requests (T10-11: one
 * principal's data never reaches another).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ProgressNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { EmbeddedAs } from '../../src/auth/as/index.ts';
import { openSecretStore } from '../../src/secrets/store.ts';
import {
  allTools,
  eventually,
  processGone,
  refusedOnceRevoked,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.ts';
import { seedUser } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const TOOL_SERVER = join(ROOT, 'test/fixtures/tool-server.ts');
const MISBEHAVING = join(ROOT, 'test/fixtures/misbehaving-server.ts');
const EVERYTHING = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-everything/dist/index.js',
);
/** A resource URI the sessions subscribe to (server-everything accepts any). */
const WATCHED = 'demo://resource/static/document/architecture.md';

let gw: TestGateway;
let dataDir: string;
let events: string;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-isolation-'));
  events = join(dataDir, 'events.log');
  await seedUser(dataDir, { username: 'alice', password: 'fake-canary-password-alice' });
  const { store } = openSecretStore(dataDir);
  await store.set('iso-key', 'fake-canary-static-key-isolation', { service: 'keyed' });
  await store.close();
  const policy = join(dataDir, 'policy.cedar');
  writeFileSync(
    policy,
    [
      '@id("allow-all")',
      'permit (principal, action, resource);',
      // Sharing a process changes nothing in what each session may do.
      '@id("b-reads-nothing")',
      'forbid (principal == Gatehouse::Agent::"agent-b", action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"work__read_file");',
      '',
    ].join('\n'),
  );
  const stdio = (file: string, extra: Record<string, unknown>) => ({
    type: 'stdio' as const,
    command: process.execPath,
    args: ['--import', 'tsx', file],
    cwd: ROOT,
    pool: { warm: 0 },
    timeoutMs: 20_000,
    ...extra,
  });
  gw = await startTestGateway(
    {
      auth: {
        mode: 'embedded',
        embedded: {
          clients: ['agent-a', 'agent-b'].map((clientId) => ({
            clientId,
            clientSecret: `fake-canary-secret-${clientId}`,
            grantTypes: ['client_credentials' as const],
          })),
        },
      },
      policy: { files: [policy] },
      // A static key is the same value for every grant: the one kind of credential a process may share.
      credentials: { key: { type: 'static', secret: 'iso-key' } },
      upstreams: {
        keyed: stdio(TOOL_SERVER, { isolation: 'shared', env: { TOOL_KEY: { credential: 'key' } } }),
        work: stdio(TOOL_SERVER, { isolation: 'shared', env: { TOOL_SERVER_EVENTS: events } }),
        mine: stdio(TOOL_SERVER, { isolation: 'principal' }),
        bad: stdio(MISBEHAVING, { isolation: 'shared' }),
        every: {
          type: 'stdio',
          command: process.execPath,
          args: [EVERYTHING, 'stdio'],
          isolation: 'shared',
          pool: { warm: 0 },
        },
      },
    },
    { dataDir },
  );
});

after(async () => {
  await gw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Seen {
  progress: { progressToken: unknown; progress: number; total?: number }[];
  logs: { logger?: string; level: string }[];
  updated: string[];
  listChanged: number;
  sampled: number;
}

/** A session of `agent` (acting for `user`), keeping what the gateway pushed to it. */
interface Session {
  client: Client;
  seen: Seen;
  sid: string;
  /** Ends the session (DELETE) and closes the client. */
  end(): Promise<void>;
}

async function connect(agent: 'agent-a' | 'agent-b', user?: string): Promise<Session> {
  const as = gw.parts.authServer as unknown as EmbeddedAs;
  const token = await as.mintAccessToken({ clientId: agent, ...(user ? { user } : {}), scope: 'mcp' });
  const seen: Seen = { progress: [], logs: [], updated: [], listChanged: 0, sampled: 0 };
  // It declares sampling: were a server's request ever handed to a session, this one would take it.
  const client = new Client({ name: 'isolation-test', version: '1' }, { capabilities: { sampling: {} } });
  client.setNotificationHandler(ProgressNotificationSchema, (n) => {
    seen.progress.push(n.params);
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    seen.logs.push(n.params);
  });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    seen.updated.push(n.params.uri);
  });
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    seen.listChanged++;
  });
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    seen.sampled++;
    return { role: 'assistant', content: { type: 'text', text: 'misdelivered' }, model: 'none' };
  });
  const transport = new StreamableHTTPClientTransport(new URL(gw.url), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  await client.connect(transport);
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await transport.terminateSession();
    await client.close();
  };
  return { client, seen, sid: transport.sessionId as string, end };
}

function text(result: unknown): string {
  return ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<string> {
  return text(await client.callTool({ name, arguments: args }));
}

async function rpcError(p: Promise<unknown>): Promise<McpError> {
  const r = await p.then(
    (v) => v,
    (e: unknown) => e,
  );
  assert.ok(r instanceof McpError, `expected a JSON-RPC error, got ${JSON.stringify(r)}`);
  return r;
}

function eventLines(): string[] {
  return existsSync(events) ? readFileSync(events, 'utf8').trim().split('\n') : [];
}

function linkOf(sid: string, server: string) {
  const link = gw.parts.registry.get(sid)?.links.get(server);
  assert.ok(link, `session has a link to ${server}`);
  return link;
}

test('T10-11 shared: sessions of two agents on one process get only their own results, under the same JSON-RPC ids', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  try {
    const pid = Number(await call(a.client, 'work__pid'));
    assert.equal(Number(await call(b.client, 'work__pid')), pid, 'one process serves both');
    assert.equal(gw.managers.get('work')?.processes, 1);
    // Two SDK clients number their requests alike: every call below has the same id on both sessions.
    const n = 25;
    const runs = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        Promise.all([
          call(a.client, 'work__search_code', { q: `a-${i}` }),
          call(b.client, 'work__search_code', { q: `b-${i}` }),
        ]),
      ),
    );
    runs.forEach(([ra, rb], i) => {
      assert.equal(ra, `found a-${i}`);
      assert.equal(rb, `found b-${i}`);
    });
    // Every call is still decided for its own session: agent-b may not read files, agent-a may.
    assert.equal(await call(a.client, 'work__read_file', { path: '/x' }), 'contents of /x');
    const refused = await rpcError(b.client.callTool({ name: 'work__read_file', arguments: { path: '/x' } }));
    assert.equal(refused.code, -32020, refused.message); // tool_not_permitted
  } finally {
    await a.end();
    await b.end();
  }
});

test('T10-11 shared: progress tokens that collide reach only their own session', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  try {
    // Both ask for progress under the very same token; the steps tell the two operations apart.
    const op = (c: Client, steps: number) =>
      c.callTool(
        {
          name: 'every__trigger-long-running-operation',
          arguments: { duration: 0.2 * steps, steps },
          _meta: { progressToken: 'same-token' },
        },
        undefined,
        { timeout: 30_000 },
      );
    await Promise.all([op(a.client, 2), op(b.client, 4)]);
    assert.deepEqual(
      a.seen.progress.map((p) => [p.progressToken, p.progress, p.total]),
      [
        ['same-token', 1, 2],
        ['same-token', 2, 2],
      ],
    );
    assert.deepEqual(
      b.seen.progress.map((p) => [p.progressToken, p.progress, p.total]),
      [1, 2, 3, 4].map((i) => ['same-token', i, 4]),
    );
  } finally {
    await a.end();
    await b.end();
  }
});

test('T10-11 shared: cancelling one session’s call does not cancel the other session’s call with the same id', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  try {
    const abort = new AbortController();
    const callA = a.client
      .callTool({ name: 'work__slow', arguments: { ms: 60_000, tag: 'a' } }, undefined, {
        signal: abort.signal,
      })
      .then(
        () => 'answered',
        () => 'aborted',
      );
    const callB = call(b.client, 'work__slow', { ms: 1_500, tag: 'b' });
    await eventually('both calls reached the process', () => {
      const lines = eventLines();
      return lines.includes('called slow a') && lines.includes('called slow b');
    });
    abort.abort('test cancels a');
    assert.equal(await callA, 'aborted');
    await eventually('the process saw a’s cancellation', () => eventLines().includes('cancelled slow a'));
    // b's call, same JSON-RPC id on its session, runs to its end.
    assert.equal(await callB, 'slow done b');
    assert.ok(!eventLines().includes('cancelled slow b'), eventLines().join('\n'));
  } finally {
    await a.end();
    await b.end();
  }
});

test('T10-11 shared: a server-to-client request is refused, never delivered, even with one call in flight', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  try {
    // Only a's call is in flight: "the only call" would be a guess, and the rule is not to guess.
    const answer = await call(a.client, 'work__ask', { prompt: 'secret of a' });
    assert.match(answer, /^refused: .*-32601/);
    assert.match(answer, /cannot be attributed to one session/);
    assert.equal(a.seen.sampled, 0);
    assert.equal(b.seen.sampled, 0);
    // The process was initialized without the sessions' capabilities: server-everything offers its
    // sampling tool only to clients that declared sampling (these did, the process did not).
    const tools = await allTools(a.client);
    assert.ok(tools.includes('every__echo'));
    assert.ok(!tools.includes('every__trigger-sampling-request'), tools.join(', '));
  } finally {
    await a.end();
    await b.end();
  }
});

test('shared: list changes reach every session on the process; resources/updated only subscribers; log messages nobody', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  try {
    await call(a.client, 'bad__add-tool');
    await eventually(
      'both sessions were told the list changed',
      () => a.seen.listChanged > 0 && b.seen.listChanged > 0,
    );

    // a subscribes; server-everything then sends an update at once when updates are switched on.
    await a.client.subscribeResource({ uri: WATCHED });
    await call(a.client, 'every__toggle-subscriber-updates');
    await eventually('a got the update of the resource it subscribed to', () =>
      a.seen.updated.includes(WATCHED),
    );
    await call(b.client, 'every__echo', { message: 'round trip' });
    assert.deepEqual(b.seen.updated, [], 'b did not subscribe');
    await call(a.client, 'every__toggle-subscriber-updates'); // off

    // b subscribes too, then a unsubscribes: the process keeps the subscription for b alone.
    await b.client.subscribeResource({ uri: WATCHED });
    await a.client.unsubscribeResource({ uri: WATCHED });
    const before = a.seen.updated.length;
    await call(b.client, 'every__toggle-subscriber-updates'); // on again: one update at once
    await eventually('b got the update', () => b.seen.updated.includes(WATCHED));
    await call(a.client, 'every__echo', { message: 'round trip' });
    assert.equal(a.seen.updated.length, before, 'a unsubscribed');
    await call(b.client, 'every__toggle-subscriber-updates'); // off

    // server-everything logged each subscribe: a log message names no session, so none got it.
    const upstreamLogs = [...a.seen.logs, ...b.seen.logs].filter((l) => l.logger !== 'gatehouse');
    assert.deepEqual(upstreamLogs, []);
  } finally {
    await a.end();
    await b.end();
  }
});

test('shared: a crashed process fails every session’s calls and is restarted once for all of them', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  try {
    const pid = Number(await call(a.client, 'bad__pid'));
    assert.equal(Number(await call(b.client, 'bad__pid')), pid);
    const hanging = rpcError(b.client.callTool({ name: 'bad__hang', arguments: {} }));
    const crashed = await rpcError(a.client.callTool({ name: 'bad__crash', arguments: {} }));
    assert.equal(crashed.code, -32012, crashed.message); // upstream_failed
    const lost = await hanging;
    assert.equal(lost.code, -32012, lost.message);
    const pidA = Number(await call(a.client, 'bad__pid'));
    const pidB = Number(await call(b.client, 'bad__pid'));
    assert.equal(pidA, pidB, 'both sessions joined the one replacement');
    assert.notEqual(pidA, pid);
    assert.ok(processGone(pid));
    assert.equal(gw.managers.get('bad')?.processes, 1);
    assert.equal(linkOf(a.sid, 'bad').restarts, 1);
    assert.equal(linkOf(b.sid, 'bad').restarts, 1);
  } finally {
    await a.end();
    await b.end();
  }
});

test('shared: a session that ends leaves the process to the others; the last one out stops it', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  const pid = Number(await call(a.client, 'work__pid'));
  await a.end();
  try {
    await eventually('a’s session ended', () => gw.parts.registry.get(a.sid) === undefined);
    assert.equal(Number(await call(b.client, 'work__pid')), pid);
    assert.ok(!processGone(pid));
  } finally {
    await b.end();
  }
  await eventually('the process stopped with its last session', () => processGone(pid));
  assert.equal(gw.managers.get('work')?.processes, 0);
});

test('principal: the sessions of one agent+user share a process; another agent or user gets its own', async () => {
  const a1 = await connect('agent-a');
  const a2 = await connect('agent-a');
  const b = await connect('agent-b');
  const alice = await connect('agent-a', 'alice');
  try {
    const pid = Number(await call(a1.client, 'mine__pid'));
    assert.equal(Number(await call(a2.client, 'mine__pid')), pid);
    const pidB = Number(await call(b.client, 'mine__pid'));
    const pidAlice = Number(await call(alice.client, 'mine__pid'));
    assert.equal(new Set([pid, pidB, pidAlice]).size, 3, 'one process per principal');
    assert.equal(gw.managers.get('mine')?.processes, 3);
    // The same isolation rules hold between the sessions of one principal.
    const [r1, r2] = await Promise.all([
      call(a1.client, 'mine__search_code', { q: 'one' }),
      call(a2.client, 'mine__search_code', { q: 'two' }),
    ]);
    assert.deepEqual([r1, r2], ['found one', 'found two']);
    await a1.end();
    assert.equal(Number(await call(a2.client, 'mine__pid')), pid);
    await a2.end();
    await eventually('the principal’s process stopped with its last session', () => processGone(pid));
    assert.ok(!processGone(pidB) && !processGone(pidAlice));
  } finally {
    await a1.end();
    await a2.end();
    await b.end();
    await alice.end();
  }
});

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), ...args, '--data-dir', dataDir],
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

// Last: it blocks the secret for the rest of the file.
test('shared with a static credential: a session whose lease is revoked leaves the process to the others; a blocked secret stops it', async () => {
  const a = await connect('agent-a');
  const b = await connect('agent-b');
  try {
    const pid = Number(await call(a.client, 'keyed__pid'));
    assert.equal(Number(await call(b.client, 'keyed__pid')), pid);
    assert.equal(linkOf(a.sid, 'keyed').transport.pid, pid);
    const revoked = await cli('credentials', 'revoke', '--agent', 'agent-a');
    assert.equal(revoked.code, 0, revoked.stderr);
    const err = await refusedOnceRevoked(a.client, 'keyed__pid');
    assert.equal(err.code, -32024, err.message); // credential_revoked
    // b's lease holds the same value: its session keeps the process.
    assert.equal(Number(await call(b.client, 'keyed__pid')), pid);
    assert.ok(!processGone(pid));
    const blocked = await cli('credentials', 'revoke', '--secret', 'iso-key');
    assert.equal(blocked.code, 0, blocked.stderr);
    const errB = await refusedOnceRevoked(b.client, 'keyed__pid');
    assert.equal(errB.code, -32024, errB.message);
    await eventually('the process holding the blocked secret stopped', () => processGone(pid));
  } finally {
    await a.end();
    await b.end();
  }
});
