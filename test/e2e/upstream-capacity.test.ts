/**
 * Upstream transport without cliffs (issue #20): many sessions through one Streamable HTTP upstream,
 * the per-upstream session cap, and calls abandoned on a hanging upstream. The upstream is the real SDK
 * server in its own process (test/fixtures/http-upstream.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type HttpUpstream, startHttpUpstream } from '../fixtures/http-upstream.ts';
import { connectClient, eventually, startTestGateway } from '../helpers/gateway.ts';

const VERSION = '2025-11-25';
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** The first JSON-RPC message of a reply, JSON or SSE. */
async function firstMessage(res: Response): Promise<Record<string, unknown>> {
  const body = await res.text();
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    for (const line of body.split('\n')) {
      if (line.startsWith('data:') && line.length > 6)
        return JSON.parse(line.slice(5)) as Record<string, unknown>;
    }
    throw new Error(`no message in ${body}`);
  }
  return JSON.parse(body) as Record<string, unknown>;
}

/** A session opened with plain HTTP (initialize + notifications/initialized); returns its id. */
async function openSession(url: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
  const sid = res.headers.get('mcp-session-id');
  const msg = await firstMessage(res);
  if (!sid || msg.result === undefined) throw new Error(`initialize failed: ${JSON.stringify(msg)}`);
  const note = await fetch(url, {
    method: 'POST',
    headers: { ...HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': VERSION },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await note.text();
  assert.equal(note.status, 202);
  return sid;
}

/** tools/call on a plain-HTTP session; returns the JSON-RPC response. */
async function callTool(
  url: string,
  sid: string,
  name: string,
  args: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': VERSION },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: args } }),
  });
  return firstMessage(res);
}

function text(result: unknown): string {
  return ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');
}

/** Runs `n` jobs, `width` at a time, in order of start. */
async function inBatches<T>(n: number, width: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += width) {
    const batch = Array.from({ length: Math.min(width, n - i) }, (_, k) => job(i + k));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

describe('one Streamable HTTP upstream under many sessions', () => {
  let upstream: HttpUpstream;
  before(async () => {
    upstream = await startHttpUpstream();
  });
  after(async () => upstream.close());

  test('T30 1,000 sessions through one Streamable HTTP upstream keep working, the oldest included', {
    timeout: 300_000, // hang guard only: before the fix, requests hung for good at ~255 sessions
  }, async () => {
    const gw = await startTestGateway({
      limits: { maxSessions: 1100, maxSessionsPerUpstream: 1100 },
      upstreams: { web: { type: 'http', url: upstream.url } },
    });
    let oldest: Client | undefined;
    try {
      // The oldest session is a real SDK client (it holds its own GET stream to the gateway, too).
      oldest = await connectClient(gw.url);
      assert.equal(text(await oldest.callTool({ name: 'web__echo', arguments: { text: 'first' } })), 'first');
      const sids = await inBatches(999, 25, () => openSession(gw.url));
      assert.equal(new Set(sids).size, 999);
      assert.equal(gw.managers.get('web')?.sessions, 1000);
      const newest = sids.at(-1) as string;
      const fromNewest = await callTool(gw.url, newest, 'web__echo', { text: 'newest' });
      assert.equal(text(fromNewest.result), 'newest', JSON.stringify(fromNewest));
      assert.equal(
        text(await oldest.callTool({ name: 'web__echo', arguments: { text: 'oldest' } })),
        'oldest',
      );
      const first = await callTool(gw.url, sids[0] as string, 'web__echo', { text: 'second-oldest' });
      assert.equal(text(first.result), 'second-oldest');
      // Every upstream session that may push holds its standalone stream, and requests still flow.
      const client = oldest;
      let stats = { sessions: 0, getStreams: 0 };
      await eventually(
        'every upstream session holds its GET stream',
        async () => {
          const r = await client.callTool({ name: 'web__stats', arguments: {} });
          stats = JSON.parse(text(r)) as typeof stats;
          return stats.getStreams >= 1000;
        },
        60_000, // hang guard only
      );
      assert.ok(stats.sessions >= 1000, JSON.stringify(stats));
    } finally {
      await oldest?.close();
      await gw.close();
    }
  });

  test('T30 limits.maxSessionsPerUpstream refuses the next session with capacity_exceeded, before the upstream sees it', async () => {
    const gw = await startTestGateway({
      limits: { maxSessions: 10, maxSessionsPerUpstream: 2 },
      upstreams: { web: { type: 'http', url: upstream.url } },
    });
    const clients: Client[] = [];
    try {
      clients.push(await connectClient(gw.url), await connectClient(gw.url));
      const stats = (): Promise<{ sessions: number }> =>
        (clients[0] as Client)
          .callTool({ name: 'web__stats', arguments: {} })
          .then((r) => JSON.parse(text(r)) as { sessions: number });
      const before = (await stats()).sessions;
      const refused = await connectClient(gw.url).then(
        (c) => {
          clients.push(c);
          return undefined;
        },
        (e: unknown) => e,
      );
      // A refused initialize is an HTTP error (503) carrying the JSON-RPC error, and no session id.
      assert.ok(refused instanceof Error, `a third session was admitted: ${String(refused)}`);
      assert.match(refused.message, /"code":-32015/);
      assert.match(refused.message, /limits\.maxSessionsPerUpstream/);
      assert.equal((await stats()).sessions, before, 'the upstream never saw the refused session');
      // The sessions that hold a place keep working; ending one frees its place.
      assert.equal(
        text(await (clients[1] as Client).callTool({ name: 'web__echo', arguments: { text: 'ok' } })),
        'ok',
      );
      const leaving = clients.pop() as Client;
      await (leaving.transport as StreamableHTTPClientTransport).terminateSession();
      await leaving.close();
      assert.equal(gw.managers.get('web')?.sessions, 1);
      const next = await connectClient(gw.url);
      clients.push(next);
      assert.equal(text(await next.callTool({ name: 'web__echo', arguments: { text: 'in' } })), 'in');
    } finally {
      for (const c of clients) await c.close();
      await gw.close();
    }
  });

  test('T30 an upstream that cannot push anything gets no long-lived GET stream', async () => {
    // "The client MAY issue an HTTP GET": only worth a socket (here and upstream) when the negotiated
    // capabilities let the upstream send something outside a request.
    const quiet = await startHttpUpstream({ quiet: true });
    const gw = await startTestGateway({ upstreams: { quiet: { type: 'http', url: quiet.url } } });
    try {
      const sids = await inBatches(5, 5, () => openSession(gw.url));
      const r = await callTool(gw.url, sids[0] as string, 'quiet__echo', { text: 'hi' });
      assert.equal(text(r.result), 'hi', JSON.stringify(r));
      const stats = await callTool(gw.url, sids[4] as string, 'quiet__stats', {});
      assert.deepEqual(JSON.parse(text(stats.result)), { sessions: 5, getStreams: 0 });
    } finally {
      await gw.close();
      await quiet.close();
    }
  });

  test('T30 calls abandoned on a hanging HTTP upstream give their sockets back', {
    timeout: 180_000, // hang guard only
  }, async () => {
    const gw = await startTestGateway({
      limits: { callTimeoutMs: 2000, maxCallsInFlightPerGrant: 1000 },
      upstreams: { web: { type: 'http', url: upstream.url } },
    });
    const client = await connectClient(gw.url);
    try {
      // More hung calls than the request pool has sockets: each one times out and must free its socket,
      // though the upstream never ends its response stream.
      const hung = await Promise.allSettled(
        Array.from({ length: 300 }, () => client.callTool({ name: 'web__hang', arguments: {} })),
      );
      for (const r of hung) {
        assert.equal(r.status, 'rejected');
        assert.match(String((r as PromiseRejectedResult).reason), /did not answer tools\/call/);
      }
      assert.equal(text(await client.callTool({ name: 'web__echo', arguments: { text: 'after' } })), 'after');
    } finally {
      await client.close();
      await gw.close();
    }
  });
});
