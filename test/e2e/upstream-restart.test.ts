/**
 * Upstreams that end inside a session (issue #20): a stdio process that exits is restarted for its
 * session with backoff, an HTTP upstream that ends its MCP session gets a new one, and repeated
 * failures open a breaker.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { startHttpUpstream } from '../fixtures/http-upstream.ts';
import { connectClient, eventually, processGone, startTestGateway } from '../helpers/gateway.ts';

const FIXTURE = new URL('../fixtures/misbehaving-server.ts', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

interface LogParams {
  level: string;
  logger?: string;
  data: { event?: string; message?: string; upstream?: string };
}

function text(result: unknown): string {
  return ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');
}

/** A client that keeps the log messages it receives. */
async function loggingClient(url: string, logs: LogParams[]): Promise<Client> {
  return connectClient(url, {
    setup: (c) =>
      c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logs.push(n.params as LogParams);
      }),
  });
}

async function rpcError(p: Promise<unknown>): Promise<McpError> {
  const r = await p.then(
    (v) => v,
    (e: unknown) => e,
  );
  assert.ok(r instanceof McpError, `expected a JSON-RPC error, got ${JSON.stringify(r)}`);
  return r;
}

test('a stdio upstream that exits is restarted for its session: calls in flight fail, later calls work, the client is told', async () => {
  const gw = await startTestGateway({
    upstreams: {
      bad: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', FIXTURE], cwd: ROOT },
    },
  });
  const logs: LogParams[] = [];
  const client = await loggingClient(gw.url, logs);
  try {
    const sid = (client.transport as StreamableHTTPClientTransport).sessionId as string;
    const pid = Number(text(await client.callTool({ name: 'bad__pid', arguments: {} })));
    const crashed = await rpcError(client.callTool({ name: 'bad__crash', arguments: {} }));
    assert.equal(crashed.code, -32012, crashed.message); // upstream_failed
    assert.match(crashed.message, /upstream bad exited/);
    // The next call waits for the replacement and is answered by it, in the same session.
    const pid2 = Number(text(await client.callTool({ name: 'bad__pid', arguments: {} })));
    assert.notEqual(pid2, pid);
    assert.ok(processGone(pid));
    const link = gw.parts.registry.get(sid)?.links.get('bad');
    assert.equal(link?.restarts, 1);
    assert.equal(link?.alive, true);
    await eventually('the client was told with a log message', () =>
      logs.some((l) => l.level === 'warning' && l.data.event === 'upstream_restarted'),
    );
    const told = logs.find((l) => l.data.event === 'upstream_restarted');
    assert.equal(told?.logger, 'gatehouse');
    assert.equal(told?.data.upstream, 'bad');
    // And again: a restart is not a one-off.
    await rpcError(client.callTool({ name: 'bad__crash', arguments: {} }));
    const pid3 = Number(text(await client.callTool({ name: 'bad__pid', arguments: {} })));
    assert.ok(pid3 !== pid2 && pid3 !== pid);
    assert.equal(link?.restarts, 2);
  } finally {
    await client.close();
    await gw.close();
  }
});

test('T30 an upstream that keeps crashing opens the breaker: a clear upstream_unavailable and no more restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-crash-'));
  const crashFile = join(dir, 'crash');
  const gw = await startTestGateway({
    upstreams: {
      bad: {
        type: 'stdio',
        command: process.execPath,
        args: ['--import', 'tsx', FIXTURE],
        cwd: ROOT,
        env: { MISBEHAVING_CRASH_FILE: crashFile },
        pool: { warm: 0 },
      },
    },
  });
  const logs: LogParams[] = [];
  const client = await loggingClient(gw.url, logs);
  try {
    const first = await rpcError(client.callTool({ name: 'bad__crash-loop', arguments: {} }));
    assert.equal(first.code, -32012, first.message);
    // Every replacement exits at start; the call waits through the restarts until the breaker opens.
    const open = await rpcError(client.callTool({ name: 'bad__pid', arguments: {} }));
    assert.equal(open.code, -32010, open.message); // upstream_unavailable
    assert.match(open.message, /upstream bad failed 5 times within 60 s: its circuit breaker is open/);
    const manager = gw.managers.get('bad');
    await eventually('no process of the session is left', () => manager?.processes === 0);
    // Later calls get the same clear answer at once, and spawn nothing.
    const again = await rpcError(client.callTool({ name: 'bad__pid', arguments: {} }));
    assert.equal(again.code, -32010);
    assert.match(again.message, /circuit breaker is open/);
    assert.equal(manager?.processes, 0);
    await eventually('the client was told with an error log message', () =>
      logs.some((l) => l.level === 'error' && /circuit breaker is open/.test(l.data.message ?? '')),
    );
    // The breaker belongs to the session: once the upstream can start again, a new session gets it.
    rmSync(crashFile);
    const other = await connectClient(gw.url);
    assert.match(text(await other.callTool({ name: 'bad__pid', arguments: {} })), /^\d+$/);
    await other.close();
  } finally {
    await client.close();
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an HTTP upstream that ends its MCP session (404) is initialized again for the session', async () => {
  const upstream = await startHttpUpstream();
  const gw = await startTestGateway({ upstreams: { web: { type: 'http', url: upstream.url } } });
  const logs: LogParams[] = [];
  const client = await loggingClient(gw.url, logs);
  try {
    assert.equal(text(await client.callTool({ name: 'web__echo', arguments: { text: 'a' } })), 'a');
    assert.equal(text(await client.callTool({ name: 'web__forget', arguments: {} })), 'forgotten');
    // The upstream drops its session just after answering. The request that meets the 404 fails; the
    // link starts a new upstream session ("it MUST start a new session by sending a new InitializeRequest").
    let failure: unknown;
    await eventually('a call meets the ended upstream session', async () => {
      failure = await client.callTool({ name: 'web__echo', arguments: { text: 'b' } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      return failure !== undefined;
    });
    assert.ok(failure instanceof McpError);
    assert.match(failure.message, /upstream web ended its session/);
    assert.equal(text(await client.callTool({ name: 'web__echo', arguments: { text: 'c' } })), 'c');
    await eventually('the client was told with a log message', () =>
      logs.some((l) => l.data.event === 'upstream_restarted'),
    );
  } finally {
    await client.close();
    await gw.close();
    await upstream.close();
  }
});

test('HTTP upstream client: multi-byte text split across chunks arrives intact; an oversized answer is result_too_large (T30) and the session goes on', async () => {
  const upstream = await startHttpUpstream();
  const gw = await startTestGateway({
    limits: { maxResultBytes: 512 * 1024 },
    upstreams: { web: { type: 'http', url: upstream.url } },
  });
  const client = await connectClient(gw.url);
  try {
    // 3- and 4-byte characters, 120 KiB of them: the SSE answer comes in many chunks, and a character
    // that straddles two of them must not become U+FFFD.
    const unit = 'é€😀';
    const got = text(await client.callTool({ name: 'web__big', arguments: { unit, count: 10_000 } }));
    assert.equal(got.length, unit.length * 10_000);
    assert.equal(got, unit.repeat(10_000));
    assert.ok(!got.includes('\ufffd'));
    // Past limits.maxResultBytes (and the upstream reader's own bound) the call fails with a typed error.
    const big = await rpcError(
      client.callTool({ name: 'web__big', arguments: { unit: 'x', count: 3 * 1024 * 1024 } }),
    );
    assert.match(big.message, /result_too_large|exceeds limits\.maxResultBytes|too large/i);
    // The session and the upstream's socket pool are fine afterwards.
    assert.equal(text(await client.callTool({ name: 'web__echo', arguments: { text: 'after' } })), 'after');
  } finally {
    await client.close();
    await gw.close();
    await upstream.close();
  }
});
