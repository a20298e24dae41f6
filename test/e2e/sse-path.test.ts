/**
 * The 2025-11-25 SSE response path of POST /mcp through Gatehouse, which the conformance suite never
 * exercises (through the gateway it sees `application/json` for first messages):
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#sending-messages-to-the-server
 * and #resumability-and-redelivery.
 *
 * - the priming event (an event id and empty data, first) with a `retry` field;
 * - resumption with GET + `Last-Event-ID` after a dropped connection: the events after that id are
 *   replayed, none twice, then the stream continues live up to the response;
 * - never from another stream ("MUST NOT replay messages that would have been delivered on a different
 *   stream"), another session or another principal (T10–11);
 * - replay is bounded (1 MiB and 1,000 events per stream, the last event always kept) and dropped once a
 *   finished stream reached its client (src/session/sse.ts).
 *
 * A real upstream (test/fixtures/misbehaving-server.ts, `progress-burst`: N progress notifications, then
 * the answer after a delay) makes the answer go via SSE. The delay (1 s) gives the gateway time to see
 * a dropped connection before the answer is written; nothing asserts on timing. (A drop the gateway has
 * not seen yet when a finished stream is flushed to the dead connection loses the replay: see
 * src/session/sse.ts, `endConnection`.) the gateway runs with the embedded
 * authorization server and two client-credentials agents (two principals).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SSE_RETRY_MS, SseStream } from '../../src/session/sse.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { clientCredentialsToken } from '../helpers/oauth.ts';

const FIXTURE = new URL('../fixtures/misbehaving-server.ts', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;
const VERSION = '2025-11-25';
// Obvious fake canaries (test secrets only).
const AGENT_A = { id: 'sse-agent-a', secret: 'fake-canary-sse-agent-a-secret' };
const AGENT_B = { id: 'sse-agent-b', secret: 'fake-canary-sse-agent-b-secret' };

interface SseEvent {
  id: string | undefined;
  retry: string | undefined;
  data: string;
}

/** Parses SSE frames (`\n\n`-separated blocks of `field: value` lines). */
function parseFrames(text: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  let rest = text;
  for (let i = rest.indexOf('\n\n'); i !== -1; i = rest.indexOf('\n\n')) {
    const block = rest.slice(0, i);
    rest = rest.slice(i + 2);
    const ev: SseEvent = { id: undefined, retry: undefined, data: '' };
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') ev.id = value;
      else if (field === 'retry') ev.retry = value;
      else if (field === 'data') ev.data += value;
    }
    events.push(ev);
  }
  return { events, rest };
}

/**
 * Reads SSE events until `stop` returns true (then drops the connection: the client "loses" it) or
 * the server ends the stream.
 */
async function readEvents(
  res: Response,
  stop: (ev: SseEvent) => boolean = () => false,
  ctrl?: AbortController,
): Promise<{ events: SseEvent[]; ended: boolean }> {
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: SseEvent[] = [];
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { events, ended: true };
    buf += decoder.decode(value, { stream: true });
    const parsed = parseFrames(buf);
    buf = parsed.rest;
    for (const ev of parsed.events) {
      events.push(ev);
      if (stop(ev)) {
        ctrl?.abort();
        await reader.cancel().catch(() => {});
        return { events, ended: false };
      }
    }
  }
}

/** `<stream>_<seq>` → [stream, seq]. */
function split(id: string | undefined): [string, number] {
  const i = (id ?? '').lastIndexOf('_');
  return [(id ?? '').slice(0, i), Number((id ?? '').slice(i + 1))];
}

const isResponseTo =
  (id: number) =>
  (ev: SseEvent): boolean =>
    ev.data !== '' && (JSON.parse(ev.data) as { id?: unknown }).id === id;
const progressOf = (ev: SseEvent): number | undefined => {
  if (ev.data === '') return undefined;
  const m = JSON.parse(ev.data) as { method?: string; params?: { progress?: number } };
  return m.method === 'notifications/progress' ? m.params?.progress : undefined;
};

describe('SSE response path through the gateway (2025-11-25)', () => {
  let gw: TestGateway;
  let tokenA: string;
  let tokenB: string;

  before(async () => {
    gw = await startTestGateway({
      upstreams: {
        bad: {
          type: 'stdio',
          command: process.execPath,
          args: ['--import', 'tsx', FIXTURE],
          cwd: ROOT,
          pool: { warm: 0 },
        },
      },
      auth: {
        mode: 'embedded',
        embedded: {
          clients: [
            { clientId: AGENT_A.id, clientSecret: AGENT_A.secret, grantTypes: ['client_credentials'] },
            { clientId: AGENT_B.id, clientSecret: AGENT_B.secret, grantTypes: ['client_credentials'] },
          ],
        },
      },
    });
    tokenA = await clientCredentialsToken(gw.origin, AGENT_A, gw.url);
    tokenB = await clientCredentialsToken(gw.origin, AGENT_B, gw.url);
  });
  after(async () => gw?.close());

  /** A raw 2025-11-25 session of a principal. */
  async function open(token: string): Promise<Record<string, string>> {
    const base = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
    };
    const init = await fetch(gw.url, {
      method: 'POST',
      headers: base,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'raw-sse', version: '1' } },
      }),
    });
    assert.equal(init.status, 200, await init.clone().text());
    await init.json();
    const h = {
      ...base,
      'mcp-session-id': init.headers.get('mcp-session-id') ?? '',
      'mcp-protocol-version': VERSION,
    };
    const ack = await fetch(gw.url, {
      method: 'POST',
      headers: h,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    assert.equal(ack.status, 202);
    return h;
  }

  function burst(
    h: Record<string, string>,
    id: number,
    args: { count: number; bytes?: number; ms?: number },
    token: string | undefined,
    signal?: AbortSignal,
  ): Promise<Response> {
    return fetch(gw.url, {
      method: 'POST',
      headers: h,
      ...(signal ? { signal } : {}),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: {
          name: 'bad__progress-burst',
          arguments: { count: args.count, bytes: args.bytes ?? 8, ms: args.ms ?? 0 },
          ...(token === undefined ? {} : { _meta: { progressToken: token } }),
        },
      }),
    });
  }

  function resume(h: Record<string, string>, lastEventId: string, signal?: AbortSignal): Promise<Response> {
    return fetch(gw.url, {
      headers: { ...h, accept: 'text/event-stream', 'last-event-id': lastEventId },
      ...(signal ? { signal } : {}),
    });
  }

  test('a response that comes first is plain JSON (the path the conformance suite sees)', async () => {
    const h = await open(tokenA);
    const res = await burst(h, 1, { count: 3 }, undefined);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.match(await res.text(), /burst done/);
  });

  test('2025-11-25: progress first turns the answer into SSE: a priming event (id, empty data, retry) first, then the events in order, the response last, then the stream ends', async () => {
    const h = await open(tokenA);
    const res = await burst(h, 2, { count: 3 }, 'tok-prime');
    const { events, ended } = await readEvents(res);
    assert.ok(ended, 'the stream ends after the response ("the server SHOULD terminate the SSE stream")');
    const [priming, ...rest] = events;
    assert.equal(priming?.data, '', 'priming event: empty data');
    assert.match(priming?.id ?? '', /^p\d+_1$/, 'priming event: an event id the client can resume from');
    assert.equal(priming?.retry, String(SSE_RETRY_MS), 'priming event: the retry field (ms)');
    assert.deepEqual(rest.map(progressOf), [1, 2, 3, undefined], 'progress 1..3, then the response');
    assert.ok(isResponseTo(2)(rest.at(-1) as SseEvent));
    const [stream] = split(priming?.id);
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((_, i) => `${stream}_${i + 1}`),
      'every event has an id of this stream, in sequence',
    );
  });

  test('resumption: after a dropped connection, GET + Last-Event-ID replays what came after it, none twice, and continues to the response', async () => {
    const h = await open(tokenA);
    const ctrl = new AbortController();
    const res = await burst(h, 3, { count: 6, ms: 1000 }, 'tok-resume', ctrl.signal);
    // The connection drops right after progress 2.
    const first = await readEvents(res, (ev) => progressOf(ev) === 2, ctrl);
    const lastSeen = first.events.at(-1)?.id ?? '';
    // Disconnection is not cancellation: the call goes on and its events are kept.
    const again = await readEvents(await resume(h, lastSeen), isResponseTo(3));
    const all = [...first.events, ...again.events];
    const ids = all.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `no event twice: ${ids.join(' ')}`);
    assert.ok(!again.events.some((e) => split(e.id)[1] <= split(lastSeen)[1]), 'nothing up to Last-Event-ID');
    assert.deepEqual(
      all.map(progressOf).filter((p) => p !== undefined),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(all.filter(isResponseTo(3)).length, 1, 'the response exactly once');
    assert.ok(!again.events.some((e) => e.data === ''), 'no second priming event on resumption');
    const [stream] = split(lastSeen);
    assert.deepEqual(
      ids,
      all.map((_, i) => `${stream}_${i + 1}`),
    );
  });

  test('resumption from the priming event, twice: each resume continues where the client stopped', async () => {
    const h = await open(tokenA);
    const c1 = new AbortController();
    const res = await burst(h, 4, { count: 5, ms: 1000 }, 'tok-twice', c1.signal);
    const a = await readEvents(res, (ev) => ev.data === '', c1);
    const c2 = new AbortController();
    const b = await readEvents(
      await resume(h, a.events.at(-1)?.id ?? '', c2.signal),
      (ev) => progressOf(ev) === 3,
      c2,
    );
    const c = await readEvents(await resume(h, b.events.at(-1)?.id ?? ''), isResponseTo(4));
    const all = [...a.events, ...b.events, ...c.events];
    const ids = all.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `no event twice: ${ids.join(' ')}`);
    assert.deepEqual(
      all.map(progressOf).filter((p) => p !== undefined),
      [1, 2, 3, 4, 5],
    );
    assert.equal(all.filter(isResponseTo(4)).length, 1);
  });

  test('T10 2025-11-25 "MUST NOT replay messages that would have been delivered on a different stream": two calls of one session, each resumes only its own', async () => {
    const h = await open(tokenA);
    const ca = new AbortController();
    const cb = new AbortController();
    const [resA, resB] = await Promise.all([
      burst(h, 5, { count: 4, ms: 1000 }, 'tok-stream-a', ca.signal),
      burst(h, 6, { count: 4, ms: 1000 }, 'tok-stream-b', cb.signal),
    ]);
    const a = await readEvents(resA, (ev) => ev.data === '', ca);
    const b = await readEvents(resB, (ev) => ev.data === '', cb);
    const [streamA] = split(a.events[0]?.id);
    const [streamB] = split(b.events[0]?.id);
    assert.notEqual(streamA, streamB);
    const ra = await readEvents(await resume(h, a.events[0]?.id ?? ''), isResponseTo(5));
    const rb = await readEvents(await resume(h, b.events[0]?.id ?? ''), isResponseTo(6));
    for (const [got, own, other, otherId] of [
      [ra.events, streamA, 'tok-stream-b', 6],
      [rb.events, streamB, 'tok-stream-a', 5],
    ] as const) {
      assert.ok(
        got.every((e) => split(e.id)[0] === own),
        'only ids of the resumed stream',
      );
      assert.ok(!got.some((e) => e.data.includes(other)), 'no event of the other stream');
      assert.ok(!got.some(isResponseTo(otherId)), "not the other stream's response");
      assert.deepEqual(
        got.map(progressOf).filter((p) => p !== undefined),
        [1, 2, 3, 4],
      );
    }
  });

  test('T10–11: another session or another principal never gets this stream: refused, nothing replayed', async () => {
    const h = await open(tokenA);
    const ctrl = new AbortController();
    const res = await burst(h, 7, { count: 3, ms: 1000 }, 'tok-private-a', ctrl.signal);
    const first = await readEvents(res, (ev) => ev.data === '', ctrl);
    const eventId = first.events[0]?.id ?? '';
    // A fresh session of the same principal has no such stream.
    const sameUser = await open(tokenA);
    const s1 = await resume(sameUser, eventId);
    assert.equal(s1.status, 400);
    assert.doesNotMatch(await s1.text(), /tok-private-a/);
    // Another principal with the session id: the session is not theirs.
    const s2 = await resume({ ...h, authorization: `Bearer ${tokenB}` }, eventId);
    assert.ok([403, 404].includes(s2.status), `status ${s2.status}`);
    assert.doesNotMatch(await s2.text(), /tok-private-a/);
    // Another principal in their own session, naming the event id.
    const other = await open(tokenB);
    const s3 = await resume(other, eventId);
    assert.equal(s3.status, 400);
    assert.doesNotMatch(await s3.text(), /tok-private-a/);
    // No credentials at all.
    const { authorization: _drop, ...anonymous } = h;
    const s4 = await resume(anonymous, eventId);
    assert.equal(s4.status, 401);
    // The owner still gets everything.
    const mine = await readEvents(await resume(h, eventId), isResponseTo(7));
    assert.deepEqual(
      mine.events.map(progressOf).filter((p) => p !== undefined),
      [1, 2, 3],
    );
  });

  test('a malformed or unknown Last-Event-ID is refused with 400', async () => {
    const h = await open(tokenA);
    for (const bad of ['nope', '_1', 'p1_', 'p1_x', 'p1_-1', 'p999_1', 'g1_1x']) {
      const r = await resume(h, bad);
      assert.equal(r.status, 400, bad);
      await r.text();
    }
  });

  test('a stream delivered in full still replays what came after Last-Event-ID (the answer may have died in the socket), once per resume; nothing after the last id', async () => {
    const h = await open(tokenA);
    const done = await readEvents(await burst(h, 8, { count: 2 }, 'tok-done'), isResponseTo(8));
    // Everything was handed to the connection. A client whose connection died without a reset never
    // got it: resuming from the priming event must still bring the progress and the answer.
    const again = await readEvents(await resume(h, done.events[0]?.id ?? ''), isResponseTo(8));
    assert.deepEqual(
      again.events.map((e) => e.id),
      done.events.slice(1).map((e) => e.id),
      'the events after Last-Event-ID, in order',
    );
    assert.equal(again.events.filter(isResponseTo(8)).length, 1, 'the response once');
    // A client that did get everything resumes from the last id: nothing is sent twice.
    const res = await resume(h, done.events.at(-1)?.id ?? '');
    assert.equal(res.status, 200);
    const none = await readEvents(res);
    assert.deepEqual(none.events, [], 'nothing after the last event');
    assert.ok(none.ended);
  });
});

describe('SSE replay limits (src/session/sse.ts on a real HTTP connection)', () => {
  let server: http.Server;
  let base: string;
  let onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => {};

  before(async () => {
    server = http.createServer((req, res) => onRequest(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /**
   * Attaches the stream to a new HTTP connection (resuming after `afterSeq`, or fresh). `closed`
   * resolves when the server saw the connection close (a client drop the stream has noticed).
   */
  async function connect(
    stream: SseStream,
    afterSeq?: number,
    signal?: AbortSignal,
  ): Promise<{ res: Response; closed: Promise<void> }> {
    let closed: Promise<void> = Promise.resolve();
    const attached = new Promise<void>((resolve) => {
      onRequest = (_req, res) => {
        closed = new Promise((r) => res.once('close', () => r()));
        stream.attach(res, {}, afterSeq);
        resolve();
      };
    });
    const res = await fetch(base, signal ? { signal } : {});
    await attached;
    return { res, closed };
  }

  /** Connects, reads the priming event, drops the connection and waits until the server noticed. */
  async function dropAfterPriming(stream: SseStream): Promise<void> {
    const ctrl = new AbortController();
    const { res, closed } = await connect(stream, undefined, ctrl.signal);
    const first = await readEvents(res, () => true, ctrl);
    assert.equal(first.events[0]?.id, `${stream.id}_1`);
    assert.equal(first.events[0]?.data, '');
    await closed;
  }

  async function replayAfter(stream: SseStream, seq: number): Promise<string> {
    return (await connect(stream, seq)).res.text();
  }

  /** A message of about `bytes` bytes, numbered. */
  const message = (n: number, bytes: number): string =>
    JSON.stringify({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { n, data: 'x'.repeat(bytes) },
    });
  const numberOf = (ev: SseEvent): number => (JSON.parse(ev.data) as { params: { n: number } }).params.n;

  test('replay keeps at most 1 MiB per stream: the newest events, contiguous, the last always kept', async () => {
    const stream = new SseStream('p1', true);
    await dropAfterPriming(stream);
    // The client is gone: 40 events of 64 KiB (2.5 MiB) and a response arrive meanwhile.
    for (let n = 1; n <= 40; n++) stream.write(message(n, 64 * 1024));
    stream.write(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [] } }));
    stream.finish();
    const raw = await replayAfter(stream, 1);
    const { events } = parseFrames(raw);
    assert.ok(Buffer.byteLength(raw) <= 1024 * 1024, `replayed ${Buffer.byteLength(raw)} bytes`);
    assert.ok(isResponseTo(1)(events.at(-1) as SseEvent), 'the response is kept');
    const numbers = events.slice(0, -1).map(numberOf);
    assert.ok(numbers.length >= 10 && numbers.length < 40, `kept ${numbers.length} of 40`);
    assert.deepEqual(
      numbers,
      numbers.map((_, i) => 40 - numbers.length + 1 + i),
      'the newest, contiguous',
    );
    const seqs = events.map((e) => split(e.id)[1]);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => 42 - seqs.length + 1 + i),
      'ids are the stream positions',
    );
  });

  test('replay keeps at most 1,000 events per stream', async () => {
    const stream = new SseStream('p2', true);
    await dropAfterPriming(stream);
    for (let n = 1; n <= 1500; n++) stream.write(message(n, 1));
    stream.finish();
    const { events } = parseFrames(await replayAfter(stream, 1));
    assert.equal(events.length, 1000);
    assert.equal(numberOf(events[0] as SseEvent), 501);
    assert.equal(numberOf(events.at(-1) as SseEvent), 1500);
  });

  test('one event larger than the limit is still kept whole (it may be the response)', async () => {
    const stream = new SseStream('p3', true);
    await dropAfterPriming(stream);
    stream.write(JSON.stringify({ jsonrpc: '2.0', id: 9, result: { data: 'y'.repeat(1536 * 1024) } }));
    stream.finish();
    const { events } = parseFrames(await replayAfter(stream, 1));
    assert.equal(events.length, 1);
    assert.ok(isResponseTo(9)(events[0] as SseEvent));
  });
});
