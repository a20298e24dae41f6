/**
 * SSE streams on the front transport: late choice of JSON vs SSE, priming
 * events, resumption with Last-Event-ID, and delivery of unrelated
 * server-initiated messages (queued until a GET stream opens).
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#resumability-and-redelivery
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const FIXTURE = new URL('../fixtures/misbehaving-server.ts', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

interface SseEvent {
  id: string | undefined;
  data: string;
}

/** Reads SSE events until `stop` says so, then aborts the connection. */
async function readEvents(
  res: Response,
  stop: (ev: SseEvent, all: SseEvent[]) => boolean,
  ctrl?: AbortController,
): Promise<SseEvent[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buf += decoder.decode(value, { stream: true });
    let i = buf.indexOf('\n\n');
    while (i !== -1) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: SseEvent = { id: undefined, data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) ev.id = line.slice(3).trim();
        else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
      }
      events.push(ev);
      if (stop(ev, events)) {
        ctrl?.abort();
        await reader.cancel().catch(() => {});
        return events;
      }
      i = buf.indexOf('\n\n');
    }
  }
}

describe('front SSE streams', () => {
  let gw: TestGateway;
  let sid: string;
  const h = (): Record<string, string> => ({
    ...HEADERS,
    'mcp-session-id': sid,
    'mcp-protocol-version': '2025-11-25',
  });

  before(async () => {
    gw = await startTestGateway({
      upstreams: {
        bad: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', FIXTURE], cwd: ROOT },
      },
    });
    const init = await fetch(gw.url, {
      method: 'POST',
      headers: HEADERS,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    });
    sid = init.headers.get('mcp-session-id') ?? '';
    await init.json();
    await fetch(gw.url, {
      method: 'POST',
      headers: h(),
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
  });
  after(async () => gw.close());

  test('a call whose progress comes first is answered as SSE, primed with an event id and empty data', async () => {
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: h(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'bad__slow-progress', arguments: { ms: 50 }, _meta: { progressToken: 'p1' } },
      }),
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const events = await readEvents(res, (ev) => ev.data.includes('"id":1'));
    assert.equal(events[0]?.data, '', 'priming event first');
    assert.ok(events[0]?.id, 'priming event has an id');
    const progress = events.filter((e) => e.data.includes('notifications/progress'));
    assert.equal(progress.length, 2);
    assert.match(events.at(-1)?.data ?? '', /slow done/);
  });

  test('a client that loses the stream resumes with Last-Event-ID and gets the rest, response included', async () => {
    const ctrl = new AbortController();
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: h(),
      signal: ctrl.signal,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'bad__slow-progress', arguments: { ms: 400 }, _meta: { progressToken: 'p2' } },
      }),
    });
    // Disconnect right after the first progress notification.
    const seen = await readEvents(res, (ev) => ev.data.includes('notifications/progress'), ctrl);
    const last = seen.at(-1)?.id;
    assert.ok(last);
    const resumed = await fetch(gw.url, {
      headers: { ...h(), accept: 'text/event-stream', 'last-event-id': last },
    });
    assert.equal(resumed.status, 200);
    const rest = await readEvents(resumed, (ev) => ev.data.includes('"id":2'));
    assert.ok(!rest.some((e) => e.id === last), 'nothing before Last-Event-ID is replayed');
    assert.match(rest.map((e) => e.data).join('\n'), /"progress":2/);
    assert.match(rest.at(-1)?.data ?? '', /slow done/);
  });

  test('an unknown Last-Event-ID is refused', async () => {
    const res = await fetch(gw.url, {
      headers: { ...h(), accept: 'text/event-stream', 'last-event-id': 'nope_3' },
    });
    assert.equal(res.status, 400);
  });

  test('list_changed sent while no GET stream is open is queued and delivered when one opens', async () => {
    const call = await fetch(gw.url, {
      method: 'POST',
      headers: h(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'bad__add-tool', arguments: {} },
      }),
    });
    const body = await call.text();
    assert.match(body, /added/);
    // list_changed is unrelated to any request: it goes to the standalone stream, which queues it.
    assert.ok(!body.includes('list_changed'));
    const ctrl = new AbortController();
    const get = await fetch(gw.url, {
      headers: { ...h(), accept: 'text/event-stream' },
      signal: ctrl.signal,
    });
    const events = await readEvents(get, (ev) => ev.data.includes('notifications/tools/list_changed'), ctrl);
    assert.ok(events.some((e) => e.data.includes('notifications/tools/list_changed')));
    const list = await fetch(gw.url, {
      method: 'POST',
      headers: h(),
      body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/list' }),
    });
    assert.match(await list.text(), /bad__added-/);
  });
});
