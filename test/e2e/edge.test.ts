/**
 * The HTTP edge under hostile input (T31) and JSON-RPC semantics at the edge (docs/architecture.md,
 * "JSON-RPC at the edge"): every value is normalised once at parse time and refused with a typed error
 * (never `internal`, never a hang); every request gets exactly one response; names from outside are
 * never looked up on Object.prototype. Raw HTTP (fetch and sockets) against a real gateway in front of
 * @modelcontextprotocol/server-everything and test/fixtures/tool-server.ts over stdio.
 * Spec: https://www.jsonrpc.org/specification, RFC 8259 §8.2 and §9,
 * https://modelcontextprotocol.io/specification/2025-11-25/basic
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadKeys } from '../../src/auth/as/keys.ts';
import { mintAccessToken } from '../../src/auth/as/mint.ts';
import { demoConfig } from '../../src/cli/demo.ts';
import { eventually, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { clientCredentialsToken } from '../helpers/oauth.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const TOOL_SERVER = join(ROOT, 'test/fixtures/tool-server.ts');

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** Every name Object.prototype answers to: the lookups that must find nothing. */
const PROTO_NAMES = Object.getOwnPropertyNames(Object.prototype);

interface RpcError {
  code: number;
  message: string;
  data?: { gatehouse?: string };
}
interface RpcReply {
  status: number;
  sessionId: string | null;
  body: { id?: unknown; result?: Record<string, unknown>; error?: RpcError } | undefined;
  text: string;
}

function initBody(id: number | string, version = '2025-11-25'): object {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'edge', version: '1' } },
  };
}

/** A well-behaved raw client of one gateway. */
class Raw {
  sid = '';
  constructor(readonly url: string) {}

  async post(body: string | object | Buffer, headers: Record<string, string> = {}): Promise<RpcReply> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: {
        ...HEADERS,
        ...(this.sid ? { 'mcp-session-id': this.sid, 'mcp-protocol-version': '2025-11-25' } : {}),
        ...headers,
      },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: RpcReply['body'];
    const json = res.headers.get('content-type')?.includes('event-stream')
      ? /data: (\{.*\})/.exec(text)?.[1]
      : text;
    try {
      parsed = json ? JSON.parse(json) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, sessionId: res.headers.get('mcp-session-id'), body: parsed, text };
  }

  async open(version = '2025-11-25'): Promise<this> {
    const r = await this.post(initBody(1, version));
    assert.equal(r.status, 200, r.text);
    this.sid = r.sessionId ?? '';
    const ack = await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    assert.equal(ack.status, 202);
    return this;
  }
}

/** The error of a reply, asserting it is a typed, documented one and never `internal`. */
function typedError(r: RpcReply): RpcError {
  assert.ok(r.status < 500, `no 5xx: ${r.status} ${r.text.slice(0, 300)}`);
  const err = r.body?.error;
  assert.ok(err, `an error reply: ${r.text.slice(0, 300)}`);
  assert.notEqual(err.data?.gatehouse, 'internal', r.text.slice(0, 300));
  assert.notEqual(err.code, -32603);
  return err;
}

describe('the edge', () => {
  let gw: TestGateway;
  let raw: Raw;

  before(async () => {
    gw = await startTestGateway({
      ...demoConfig(),
      auth: { mode: 'none' },
      policy: undefined,
      upstreams: {
        ...demoConfig().upstreams,
        gh: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', TOOL_SERVER] },
      },
      limits: { maxCallsInFlightPerGrant: 3, maxNameLength: 256 },
    });
    raw = await new Raw(gw.url).open();
  });
  after(async () => gw.close());

  describe('T31 values are normalised at parse time', () => {
    const deep = (n: number): unknown => {
      let v: unknown = 'x';
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    const call = (args: unknown, id: unknown = 10): object => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'everything__echo', arguments: args },
    });
    const cases: [
      string,
      () => string | object | Buffer,
      'invalid_params' | 'invalid_request' | 'parse_error',
    ][] = [
      ['arguments nested 100 deep', () => call({ message: deep(100) }), 'invalid_params'],
      // 20,000 levels is a 40 KB body: refused on its bytes before JSON.parse builds 20,000 arrays.
      [
        'arguments nested 20,000 deep',
        () =>
          `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"everything__echo","arguments":{"message":${'['.repeat(20_000)}${']'.repeat(20_000)}}}}`,
        'invalid_request',
      ],
      ['a lone surrogate in an argument', () => call({ message: '\ud800' }), 'invalid_params'],
      ['a lone surrogate in an argument name', () => call({ ['m\udc00']: 'x' }), 'invalid_params'],
      ['a lone surrogate in the id', () => call({ message: 'x' }, 'id-\ud800'), 'invalid_request'],
      [
        'a lone surrogate in the method',
        () => ({ jsonrpc: '2.0', id: 3, method: 'tools/\ud800', params: {} }),
        'invalid_request',
      ],
      [
        'a lone surrogate in the tool name',
        () => ({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'everything__\ud800' } }),
        'invalid_params',
      ],
      [
        '1e999 in an argument',
        () =>
          '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"everything__echo","arguments":{"message":1e999}}}',
        'invalid_params',
      ],
      ['an id of 1e999', () => '{"jsonrpc":"2.0","id":1e999,"method":"ping"}', 'invalid_request'],
      ['a fractional id', () => ({ jsonrpc: '2.0', id: 1.5, method: 'ping' }), 'invalid_request'],
      [
        'an id beyond 2^53',
        () => '{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}',
        'invalid_request',
      ],
      [
        'an id longer than maxNameLength',
        () => ({ jsonrpc: '2.0', id: 'i'.repeat(300), method: 'ping' }),
        'invalid_request',
      ],
      [
        'a method longer than maxNameLength',
        () => ({ jsonrpc: '2.0', id: 5, method: 'm'.repeat(300) }),
        'invalid_request',
      ],
      [
        'a tool name longer than maxNameLength',
        () => ({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'n'.repeat(300) } }),
        'invalid_params',
      ],
      [
        'a progressToken that is an object',
        () => ({
          jsonrpc: '2.0',
          id: 6,
          method: 'tools/list',
          params: { _meta: { progressToken: { a: 1 } } },
        }),
        'invalid_params',
      ],
      [
        'a fractional progressToken (an SDK upstream would drop the message and the client would wait)',
        () => ({ jsonrpc: '2.0', id: 6, method: 'tools/list', params: { _meta: { progressToken: 1.5 } } }),
        'invalid_params',
      ],
      [
        '_meta that is a string',
        () => ({ jsonrpc: '2.0', id: 6, method: 'ping', params: { _meta: 'x' } }),
        'invalid_params',
      ],
      [
        'an array longer than maxCollectionSize',
        () => call({ message: Array.from({ length: 10_001 }, () => 0) }),
        'invalid_params',
      ],
      [
        'tools/call without a name',
        () => ({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { arguments: {} } }),
        'invalid_params',
      ],
      [
        'prompts/get with a non-string argument',
        () => ({
          jsonrpc: '2.0',
          id: 7,
          method: 'prompts/get',
          params: { name: 'everything__simple-prompt', arguments: { a: 1 } },
        }),
        'invalid_params',
      ],
      [
        'resources/read with a numeric uri',
        () => ({ jsonrpc: '2.0', id: 7, method: 'resources/read', params: { uri: 1 } }),
        'invalid_params',
      ],
      [
        'logging/setLevel with an unknown level',
        () => ({ jsonrpc: '2.0', id: 7, method: 'logging/setLevel', params: { level: 'loud' } }),
        'invalid_params',
      ],
      ['invalid UTF-8 bytes', () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'parse_error'],
    ];
    for (const [what, body, code] of cases) {
      test(`T31 ${what} → ${code}`, async () => {
        const r = await raw.post(body());
        const err = typedError(r);
        assert.equal(err.data?.gatehouse, code, r.text.slice(0, 300));
        assert.ok(r.text.length < 2000, 'the answer does not echo the input');
      });
    }

    test('T31 a malformed initialize is refused without a session id', async () => {
      const r = await new Raw(gw.url).post({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25' },
      });
      assert.equal(typedError(r).data?.gatehouse, 'invalid_params');
      assert.equal(r.sessionId, null);
      assert.equal(r.body?.id, 1);
    });

    test('T31 a valid call still works after all of the above', async () => {
      const r = await raw.post(call({ message: 'still here' }, 99));
      assert.equal(r.status, 200, r.text);
      assert.match(JSON.stringify(r.body?.result), /still here/);
    });
  });

  describe('JSON-RPC at the edge: exactly one response per request', () => {
    for (const id of [0, -1, Number.MAX_SAFE_INTEGER, '', 'x', 'ünïcødé ✓', 'i'.repeat(256)]) {
      test(`an id of ${JSON.stringify(id).slice(0, 20)} comes back unchanged`, async () => {
        const r = await raw.post({ jsonrpc: '2.0', id, method: 'ping' });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.body, { jsonrpc: '2.0', id, result: {} });
      });
    }

    test('a duplicate id in flight on the session is refused; the first still gets its answer', async () => {
      const slow = raw.post({
        jsonrpc: '2.0',
        id: 'dup',
        method: 'tools/call',
        params: { name: 'gh__slow', arguments: { ms: 4000 } },
      });
      await eventually(
        'the first is in flight',
        () => gw.parts.registry.get(raw.sid)?.isOpen('dup') === true,
      );
      const second = await raw.post({ jsonrpc: '2.0', id: 'dup', method: 'ping' });
      assert.equal(second.status, 400);
      assert.equal(typedError(second).data?.gatehouse, 'invalid_request');
      assert.equal(second.body?.id, 'dup');
      const first = await slow;
      assert.equal(first.status, 200, first.text);
      assert.match(JSON.stringify(first.body?.result), /slow done/);
      // Once answered, the id may be used again.
      assert.equal((await raw.post({ jsonrpc: '2.0', id: 'dup', method: 'ping' })).status, 200);
    });

    test('the same id twice in one batch is refused as a whole (2025-03-26, the last revision with batches)', async () => {
      const old = await new Raw(gw.url).open('2025-03-26');
      const r = await old.post(
        [
          { jsonrpc: '2.0', id: 1, method: 'ping' },
          { jsonrpc: '2.0', id: 1, method: 'ping' },
        ],
        { 'mcp-protocol-version': '2025-03-26' },
      );
      assert.equal(r.status, 400);
      assert.equal(typedError(r).data?.gatehouse, 'invalid_request');
      assert.match(r.body?.error?.message ?? '', /duplicate request id/);
    });

    test('a header cannot change the negotiated revision: no batch on a 2025-11-25 session', async () => {
      const r = await raw.post(
        [
          { jsonrpc: '2.0', id: 1, method: 'ping' },
          { jsonrpc: '2.0', id: 2, method: 'ping' },
        ],
        { 'mcp-protocol-version': '2025-03-26' },
      );
      assert.equal(r.status, 400);
      assert.equal(typedError(r).data?.gatehouse, 'batch_not_supported');
    });

    test('a notification gets 202 and no body; a request named like a notification gets a response', async () => {
      const n = await raw.post({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
      assert.equal(n.status, 202);
      assert.equal(n.text, '');
      const r = await raw.post({ jsonrpc: '2.0', id: 'n1', method: 'notifications/initialized' });
      assert.equal(r.body?.id, 'n1');
      typedError(r);
    });

    test('a response to a server-to-client request this session never sent is refused (400)', async () => {
      for (const id of [12345, 'abc', 0, -3]) {
        const r = await raw.post({ jsonrpc: '2.0', id, result: {} });
        assert.equal(r.status, 400, r.text);
        assert.equal(typedError(r).data?.gatehouse, 'invalid_request');
      }
      const e = await raw.post({ jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'x' } });
      assert.equal(e.status, 400);
    });

    test('capacity: requests in flight per grant are capped (limits.maxCallsInFlightPerGrant)', async () => {
      const s = await new Raw(gw.url).open();
      const slow = (id: number): Promise<RpcReply> =>
        s.post({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name: 'gh__slow', arguments: { ms: 4000 } },
        });
      const running = [slow(1), slow(2), slow(3)];
      await eventually('three calls in flight', () => gw.parts.registry.get(s.sid)?.grant.inflight === 3);
      const over = await s.post({ jsonrpc: '2.0', id: 4, method: 'ping' });
      assert.equal(over.status, 503, over.text);
      assert.equal(over.body?.error?.data?.gatehouse, 'capacity_exceeded');
      assert.equal(over.body?.id, 4);
      for (const r of await Promise.all(running)) assert.equal(r.status, 200, r.text);
      assert.equal((await s.post({ jsonrpc: '2.0', id: 5, method: 'ping' })).status, 200);
    });
  });

  describe('names from outside never reach Object.prototype', () => {
    for (const name of PROTO_NAMES) {
      test(`\`${name}\` as method, tool, prompt, resource scheme and argument name: typed answers`, async () => {
        const bodies = [
          { jsonrpc: '2.0', id: 1, method: name, params: {} },
          {
            jsonrpc: '2.0',
            id: 2,
            method: 'tools/call',
            params: { name: `everything__${name}`, arguments: {} },
          },
          { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name, arguments: {} } },
          { jsonrpc: '2.0', id: 4, method: 'prompts/get', params: { name: `everything__${name}` } },
          { jsonrpc: '2.0', id: 5, method: 'resources/read', params: { uri: `${name}://x/y` } },
          {
            jsonrpc: '2.0',
            id: 6,
            method: 'tools/call',
            params: { name: 'gh__search_code', arguments: { q: 'x', [name]: 'y' } },
          },
          {
            jsonrpc: '2.0',
            id: 7,
            method: 'completion/complete',
            params: { ref: { type: 'ref/prompt', name }, argument: { name, value: 'x' } },
          },
        ];
        for (const b of bodies) {
          const r = await raw.post(JSON.stringify(b));
          assert.ok(r.status < 500, `${JSON.stringify(b)} → ${r.status} ${r.text.slice(0, 200)}`);
          assert.equal(r.body?.id, b.id, `exactly one answer with the request's id: ${r.text.slice(0, 200)}`);
          if (r.body?.error) assert.notEqual(r.body.error.data?.gatehouse, 'internal', r.text.slice(0, 200));
        }
        // A `__proto__` argument name is an ordinary argument: the schema check sees and refuses it.
        assert.equal((await raw.post({ jsonrpc: '2.0', id: 8, method: 'ping' })).status, 200);
      });
    }
  });
});

describe('T31 slow and partial requests are cut on every route (limits.headersTimeoutMs, bodyTimeoutMs)', () => {
  let gw: TestGateway;
  let token = '';
  const client = { id: 'edge-agent', secret: 'canary-edge-secret-not-real-0031' };
  before(async () => {
    gw = await startTestGateway({
      ...demoConfig(),
      auth: {
        mode: 'embedded',
        embedded: {
          clients: [{ clientId: client.id, clientSecret: client.secret, grantTypes: ['client_credentials'] }],
        },
      },
      policy: undefined,
      limits: {
        headersTimeoutMs: 1000,
        bodyTimeoutMs: 1500,
        maxHeaderBytes: 4096,
        maxConnectionsPerAddress: 8,
      },
    });
    token = await clientCredentialsToken(gw.origin, client, gw.url);
  });
  after(async () => gw.close());

  /** Sends `head` (and nothing more) on a raw socket; resolves with what came back when the gateway closed it. */
  function stall(head: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(gw.port, '127.0.0.1');
      let got = '';
      const guard = setTimeout(() => {
        s.destroy();
        reject(new Error('the gateway held the partial request open'));
      }, 20_000);
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => {
        clearTimeout(guard);
        resolve(got);
      });
      s.on('error', () => {});
      s.write(head);
    });
  }

  // Server-wide: /mcp after authentication, and the authorization server's endpoints that read a body.
  for (const [path, type] of [
    ['/mcp', 'application/json'],
    ['/oauth/token', 'application/x-www-form-urlencoded'],
    ['/oauth/register', 'application/json'],
  ] as const) {
    test(`a body that never finishes on ${path} gets 408 and a closed connection`, async (t) => {
      const t0 = Date.now();
      const got = await stall(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nAuthorization: Bearer ${token}\r\nContent-Type: ${type}\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{"partial":`,
      );
      t.diagnostic(`closed after ${Date.now() - t0} ms (limits.bodyTimeoutMs 1500)`);
      assert.match(got, /^HTTP\/1\.1 408/);
    });
  }

  test('headers that never finish get 408', async () => {
    const got = await stall(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nX-Slow: `);
    assert.match(got, /^HTTP\/1\.1 408/);
  });

  test('a head over limits.maxHeaderBytes gets 431', async () => {
    const res = await fetch(`${gw.origin}/healthz`, { headers: { 'x-big': 'b'.repeat(8000) } });
    assert.equal(res.status, 431);
  });

  test('connections beyond limits.maxConnectionsPerAddress get 503 and are closed', async () => {
    const sockets = Array.from({ length: 8 }, () => connect(gw.port, '127.0.0.1'));
    await Promise.all(sockets.map((s) => new Promise((r) => s.once('connect', r))));
    const got = await new Promise<string>((resolve) => {
      const s = connect(gw.port, '127.0.0.1');
      let text = '';
      s.on('data', (d) => (text += d.toString()));
      s.on('close', () => resolve(text));
      s.on('error', () => {});
    });
    assert.match(got, /^HTTP\/1\.1 503/);
    for (const s of sockets) s.destroy();
  });
});

describe('claim values named like Object.prototype members are ordinary names', () => {
  let gw: TestGateway;
  let keys: Awaited<ReturnType<typeof loadKeys>>;
  before(async () => {
    gw = await startTestGateway({
      ...demoConfig(),
      auth: { mode: 'embedded', requiredScopes: ['mcp'] },
      policy: undefined,
    });
    keys = await loadKeys(gw.dataDir, { create: false });
  });
  after(async () => gw.close());

  for (const name of PROTO_NAMES) {
    test(`a token whose client_id and sub are \`${name}\` gets a session and typed answers`, async () => {
      const key = keys.signing[0];
      assert.ok(key);
      const token = await mintAccessToken({
        key,
        issuer: gw.origin,
        resource: gw.url,
        clientId: name,
        sub: `${name}`,
        scope: 'mcp',
        ttlSec: 60,
      });
      const raw = new Raw(gw.url);
      const auth = { authorization: `Bearer ${token}` };
      const init = await raw.post(initBody(1), auth);
      assert.equal(init.status, 200, init.text.slice(0, 300));
      raw.sid = init.sessionId ?? '';
      assert.equal(
        (await raw.post({ jsonrpc: '2.0', method: 'notifications/initialized' }, auth)).status,
        202,
      );
      const list = await raw.post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, auth);
      assert.equal(list.status, 200, list.text.slice(0, 300));
      const call = await raw.post(
        {
          jsonrpc: '2.0',
          id: 3,
          method: 'tools/call',
          params: { name: 'everything__echo', arguments: { message: name } },
        },
        auth,
      );
      assert.equal(call.status, 200, call.text.slice(0, 300));
      assert.ok(JSON.stringify(call.body?.result).includes(name), call.text.slice(0, 300));
    });
  }
});

describe('capacity and lifecycle', () => {
  test('T30 an initialize refused at the upstream process limit is 503 without a session id', async () => {
    const gw = await startTestGateway({
      upstreams: {
        gh: {
          type: 'stdio',
          command: process.execPath,
          args: ['--import', 'tsx', TOOL_SERVER],
          pool: { warm: 0, max: 1 },
        },
      },
    });
    try {
      const first = await new Raw(gw.url).open();
      assert.ok(first.sid);
      const r = await new Raw(gw.url).post(initBody(7));
      assert.equal(r.status, 503, r.text);
      assert.equal(r.body?.error?.data?.gatehouse, 'capacity_exceeded');
      assert.equal(r.body?.id, 7);
      assert.equal(r.sessionId, null, 'no id of a session that does not exist');
    } finally {
      await gw.close();
    }
  });

  test('gatehouse start exits 1 when its port is taken', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-edge-'));
    try {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'src/cli/index.ts'),
          'start',
          '--port',
          String(port),
          '--data-dir',
          dir,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 1, stderr);
      assert.match(stderr, /cannot start: listen EADDRINUSE/);
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
