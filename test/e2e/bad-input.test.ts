/**
 * Bad input at the front door: each case gets the precise error, and the
 * gateway keeps serving a well-behaved client afterwards.
 * Spec: https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { demoConfig } from '../../src/cli/demo.ts';
import { connectClient, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

describe('bad input', () => {
  let gw: TestGateway;
  let sid: string;

  async function post(body: string | object, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(gw.url, {
      method: 'POST',
      headers: { ...HEADERS, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  async function errorOf(
    res: Response,
  ): Promise<{ code: number; message: string; data: { gatehouse: string } }> {
    const body = (await res.json()) as {
      error: { code: number; message: string; data: { gatehouse: string } };
    };
    return body.error;
  }

  before(async () => {
    gw = await startTestGateway({
      ...demoConfig(),
      auth: { mode: 'none' },
      policy: undefined,
      limits: { maxRequestBytes: 64 * 1024 },
    });
    const res = await post(INIT);
    assert.equal(res.status, 200);
    sid = res.headers.get('mcp-session-id') ?? '';
    assert.ok(sid.length >= 22, 'session id carries at least 128 bits');
    await res.json();
    const ack = await post(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    );
    assert.equal(ack.status, 202);
  });
  after(async () => gw.close());

  const session = (): Record<string, string> => ({
    'mcp-session-id': sid,
    'mcp-protocol-version': '2025-11-25',
  });

  test('malformed JSON → 400 with JSON-RPC -32700 parse error', async () => {
    const res = await post('{"jsonrpc": "2.0", "id": 1, "method": ', session());
    assert.equal(res.status, 400);
    const err = await errorOf(res);
    assert.equal(err.code, -32700);
    assert.equal(err.data.gatehouse, 'parse_error');
  });

  test('not a JSON-RPC message → 400 -32600 naming the problem', async () => {
    const res = await post({ jsonrpc: '1.0', id: 2, method: 'tools/list' }, session());
    assert.equal(res.status, 400);
    const err = await errorOf(res);
    assert.equal(err.code, -32600);
    assert.match(err.message, /jsonrpc must be "2.0"/);
  });

  test('a JSON-RPC batch in protocol 2025-11-25 → 400 batch_not_supported (batches were removed in 2025-06-18)', async () => {
    const res = await post(
      [
        { jsonrpc: '2.0', id: 3, method: 'ping' },
        { jsonrpc: '2.0', id: 4, method: 'ping' },
      ],
      session(),
    );
    assert.equal(res.status, 400);
    assert.equal((await errorOf(res)).data.gatehouse, 'batch_not_supported');
  });

  test('a batch is accepted for a 2025-03-26 session', async () => {
    const init = await post({ ...INIT, params: { ...INIT.params, protocolVersion: '2025-03-26' } });
    const old = init.headers.get('mcp-session-id') ?? '';
    assert.equal(
      ((await init.json()) as { result: { protocolVersion: string } }).result.protocolVersion,
      '2025-03-26',
    );
    const res = await post(
      [
        { jsonrpc: '2.0', id: 'a', method: 'ping' },
        { jsonrpc: '2.0', id: 'b', method: 'ping' },
      ],
      { 'mcp-session-id': old, 'mcp-protocol-version': '2025-03-26' },
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string }[];
    assert.deepEqual(body.map((m) => m.id).sort(), ['a', 'b']);
  });

  test('T30 body over limits.maxRequestBytes → 413 body_too_large', async () => {
    const big = {
      jsonrpc: '2.0',
      id: 5,
      method: 'tools/call',
      params: { name: 'everything__echo', arguments: { message: 'x'.repeat(100 * 1024) } },
    };
    const res = await post(big, session());
    assert.equal(res.status, 413);
    assert.equal((await errorOf(res)).data.gatehouse, 'body_too_large');
  });

  test('unknown session id → 404 session_not_found', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 6, method: 'tools/list' },
      { 'mcp-session-id': 'not-a-session' },
    );
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).data.gatehouse, 'session_not_found');
  });

  test('missing session id after initialization → 400 session_required', async () => {
    const res = await post({ jsonrpc: '2.0', id: 7, method: 'tools/list' });
    assert.equal(res.status, 400);
    assert.equal((await errorOf(res)).data.gatehouse, 'session_required');
  });

  test('unknown tool of a known server → the upstream own answer, on HTTP 200', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'everything__nope', arguments: {} } },
      session(),
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      id: number;
      error?: { code: number };
      result?: { isError?: boolean };
    };
    assert.equal(body.id, 8);
    assert.ok(body.error !== undefined || body.result?.isError === true, JSON.stringify(body));
  });

  test('T29 a tool of an unconfigured server is never routed', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'evil__steal', arguments: {} } },
      session(),
    );
    const body = (await res.json()) as { error: { code: number; data: { gatehouse: string } } };
    assert.equal(body.error.data.gatehouse, 'unknown_tool');
    assert.equal(body.error.code, -32602);
  });

  test('unsupported MCP-Protocol-Version → 400', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 10, method: 'ping' },
      { ...session(), 'mcp-protocol-version': '1999-01-01' },
    );
    assert.equal(res.status, 400);
    assert.equal((await errorOf(res)).data.gatehouse, 'unsupported_protocol_version');
  });

  test('T12 foreign Origin → 403 (DNS rebinding), before the session is even looked up', async () => {
    const res = await post(
      { jsonrpc: '2.0', id: 11, method: 'ping' },
      { ...session(), origin: 'https://evil.example' },
    );
    assert.equal(res.status, 403);
    assert.equal((await errorOf(res)).data.gatehouse, 'origin_forbidden');
    const other = await post(
      { jsonrpc: '2.0', id: 11, method: 'ping' },
      { ...session(), origin: 'http://localhost:1' },
    );
    assert.equal(other.status, 403, 'another local port is a foreign origin');
    const own = await post({ jsonrpc: '2.0', id: 12, method: 'ping' }, { ...session(), origin: gw.origin });
    assert.equal(own.status, 200);
  });

  test('T12 foreign Host → 403 host_forbidden', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        gw.url,
        { method: 'POST', headers: { ...HEADERS, ...session(), host: 'evil.example' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.once('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 13, method: 'ping' }));
    });
    assert.equal(status, 403);
  });

  test('wrong Accept → 406, wrong Content-Type → 415, other methods → 405', async () => {
    assert.equal(
      (await post({ jsonrpc: '2.0', id: 14, method: 'ping' }, { ...session(), accept: 'application/json' }))
        .status,
      406,
    );
    assert.equal((await post('x', { ...session(), 'content-type': 'text/plain' })).status, 415);
    const put = await fetch(gw.url, { method: 'PUT' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET, POST, DELETE');
  });

  test('initialize with a session id, or inside a batch, is refused', async () => {
    assert.equal((await post(INIT, session())).status, 400);
    assert.equal((await post([INIT])).status, 400);
  });

  test('a second standalone GET stream → 409; DELETE ends the session → later requests 404', async () => {
    const init = await post(INIT);
    const s = init.headers.get('mcp-session-id') ?? '';
    await init.json();
    const h = { 'mcp-session-id': s, 'mcp-protocol-version': '2025-11-25', accept: 'text/event-stream' };
    const ctrl = new AbortController();
    const first = await fetch(gw.url, { headers: h, signal: ctrl.signal });
    assert.equal(first.status, 200);
    const second = await fetch(gw.url, { headers: h });
    assert.equal(second.status, 409);
    ctrl.abort();
    const del = await fetch(gw.url, { method: 'DELETE', headers: h });
    assert.equal(del.status, 200);
    assert.equal(
      (await post({ jsonrpc: '2.0', id: 15, method: 'ping' }, { 'mcp-session-id': s })).status,
      404,
    );
  });

  test('after all of the above, a real client is still served', async () => {
    const client = await connectClient(gw.url);
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'ok' } });
    assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: ok' }]);
    await client.close();
  });
});
