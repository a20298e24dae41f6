/**
 * SSE replay of finished streams (src/session/sse.ts), over real HTTP connections. An answer handed
 * to a socket is not an answer received: a client whose connection died without a reset resumes with
 * Last-Event-ID and must still get it, within a shared byte budget (T31: memory bounded by bytes).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { RETAINED_REPLAY_MAX_BYTES, retainedReplayBytes, SseStream } from '../../src/session/sse.ts';

/** A server that hands each GET to `onRequest`; returns the base URL and a closer. */
async function serve(onRequest: (res: http.ServerResponse, url: string) => void) {
  const server = http.createServer((req, res) => onRequest(res, req.url ?? '/'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function body(url: string): Promise<string> {
  const res = await fetch(url);
  return res.text();
}

test('T31 a finished stream whose answer was flushed still replays it on resume; the stream can be released', async () => {
  const stream = new SseStream('s1', true);
  const srv = await serve((res, url) => {
    if (url === '/post') {
      stream.attach(res, {});
      stream.write('{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}');
      stream.write('{"jsonrpc":"2.0","id":1,"result":{}}');
      stream.finish();
    } else {
      // The client lost the connection after the priming event (seq 1): it resumes from there.
      stream.attach(res, {}, 1);
    }
  });
  try {
    const first = await body(`${srv.url}/post`);
    assert.match(first, /"id":1/);
    // Everything was flushed to the first connection; the replay is still there for a client that never got it.
    const resumed = await body(`${srv.url}/get`);
    assert.match(resumed, /id: s1_2\n/);
    assert.match(resumed, /id: s1_3\ndata: \{"jsonrpc":"2.0","id":1,"result":\{\}\}/);
    assert.doesNotMatch(resumed, /id: s1_1\n/, 'nothing at or before Last-Event-ID');
    assert.ok(retainedReplayBytes() > 0);
    stream.release();
    assert.equal(retainedReplayBytes(), 0);
    assert.equal(await body(`${srv.url}/get`), '', 'a released stream replays nothing');
  } finally {
    await srv.close();
  }
});

test('T31 replay kept by finished streams is bounded in bytes across streams: the oldest go first', async () => {
  const chunk = 'x'.repeat(256 * 1024);
  const count = Math.ceil(RETAINED_REPLAY_MAX_BYTES / (3 * chunk.length)) + 2;
  const streams = Array.from({ length: count }, (_, i) => new SseStream(`b${i}`, false));
  const srv = await serve((res, url) => {
    const [, kind, n] = url.split('/');
    const s = streams[Number(n)] as SseStream;
    if (kind === 'post') {
      s.attach(res, {});
      // Three events of 256 KiB: under the per-stream bound (1 MiB), so each stream keeps all three.
      for (let k = 0; k < 3; k++) s.write(JSON.stringify({ jsonrpc: '2.0', method: 'm', params: { chunk } }));
      s.finish();
    } else {
      s.attach(res, {}, 0);
    }
  });
  try {
    for (let i = 0; i < count; i++) await body(`${srv.url}/post/${i}`);
    // Give the last end() callbacks their turn.
    await new Promise((r) => setImmediate(r));
    assert.ok(retainedReplayBytes() <= RETAINED_REPLAY_MAX_BYTES, `${retainedReplayBytes()} bytes retained`);
    assert.equal(await body(`${srv.url}/get/0`), '', 'the oldest stream gave its replay up');
    assert.match(await body(`${srv.url}/get/${count - 1}`), /id: b\d+_3\n/, 'the newest keeps it');
  } finally {
    for (const s of streams) s.release();
    await srv.close();
  }
  assert.equal(retainedReplayBytes(), 0);
});
