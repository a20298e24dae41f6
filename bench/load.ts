// Raw JSON-RPC load generator for MCP Streamable HTTP endpoints (the SDK client tops out
// around 1,000-1,400 calls/s, below what the servers under test can do).
//
// usage: load --url URL [--concurrency C] [--sessions S] [--seconds N] [--warmup N] [--tool NAME]
//             [--revision 2026-07-28]
//
// With --revision 2026-07-28 there is no initialize and no session: each request carries its `_meta`
// and the Mcp-Method/Mcp-Name headers, and the S "sessions" are S clients (distinct clientInfo names,
// so S grants at Gatehouse, each with its pooled upstream session).
//
// Opens S sessions, runs C workers (round-robin over the sessions) that send `tools/call`
// back-to-back, and prints one JSON line (LoadResult) on stdout. Only calls that complete
// inside the timed window (after the warm-up) are counted.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface LoadResult {
  calls: number;
  seconds: number;
  calls_per_s: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  error_samples: string[];
  fatal?: string;
  /** Filled in by the runner: the server process's CPU time per call in the timed window, µs. */
  cpu_us_per_call?: number;
  /** Filled in by the runner for targets in front of the shared HTTP echo server: its CPU time per call, µs. */
  upstream_cpu_us_per_call?: number;
  /** Filled in by the runner: the load generator's own CPU in the timed window, % of one core. */
  load_cpu_pct?: number;
}

interface Options {
  url: URL;
  concurrency: number;
  sessions: number;
  seconds: number;
  warmup: number;
  tool: string;
  /** Bearer token sent with every request (Gatehouse runs with authentication on). */
  bearer: string | undefined;
  /** `2026-07-28`: stateless requests (no initialize); otherwise 2025-11-25 sessions. */
  revision: string | undefined;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const PROTOCOL_VERSION = '2025-11-25';
const REQUEST_TIMEOUT_MS = 10_000;

function parseArgs(argv: string[]): Options {
  const get = (name: string, fallback?: string): string => {
    const i = argv.indexOf(`--${name}`);
    const value = i >= 0 ? argv[i + 1] : fallback;
    if (value === undefined) throw new Error(`missing --${name}`);
    return value;
  };
  const num = (name: string, fallback: string): number => {
    const n = Number(get(name, fallback));
    if (!Number.isFinite(n) || n <= 0) throw new Error(`bad --${name}`);
    return n;
  };
  return {
    url: new URL(get('url')),
    concurrency: num('concurrency', '1'),
    sessions: num('sessions', '1'),
    seconds: num('seconds', '3'),
    warmup: num('warmup', '1'),
    tool: get('tool', 'echo'),
    bearer: argv.includes('--bearer') ? get('bearer') : undefined,
    revision: argv.includes('--revision') ? get('revision') : undefined,
  };
}

class Client {
  private readonly agent: http.Agent;

  constructor(
    private readonly url: URL,
    maxSockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(method: string, headers: http.OutgoingHttpHeaders, body?: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          hostname: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname + this.url.search,
          method,
          agent: this.agent,
          headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(REQUEST_TIMEOUT_MS, () =>
        req.destroy(new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

interface JsonRpcMessage {
  id?: unknown;
  result?: unknown;
  error?: { message?: unknown };
}

/** Finds the JSON-RPC response with `id` in a body that is either application/json or text/event-stream. */
function findResponse(reply: Reply, id: number): JsonRpcMessage {
  const type = reply.headers['content-type'] ?? '';
  let messages: unknown[];
  if (type.startsWith('text/event-stream')) {
    messages = [];
    for (const event of reply.body.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (data) messages.push(JSON.parse(data));
    }
  } else if (type.startsWith('application/json')) {
    const parsed: unknown = JSON.parse(reply.body);
    messages = Array.isArray(parsed) ? parsed : [parsed];
  } else {
    throw new Error(`HTTP ${reply.status}, unexpected content-type "${type}": ${reply.body.slice(0, 200)}`);
  }
  for (const m of messages) {
    if (typeof m === 'object' && m !== null && (m as JsonRpcMessage).id === id) return m as JsonRpcMessage;
  }
  throw new Error(`HTTP ${reply.status}, no response with id ${id}: ${reply.body.slice(0, 200)}`);
}

function expectResult(reply: Reply, id: number): Record<string, unknown> {
  if (reply.status !== 200) throw new Error(`HTTP ${reply.status}: ${reply.body.slice(0, 200)}`);
  const msg = findResponse(reply, id);
  if (msg.error) throw new Error(`JSON-RPC error: ${JSON.stringify(msg.error)}`);
  if (typeof msg.result !== 'object' || msg.result === null) throw new Error('response without result');
  return msg.result as Record<string, unknown>;
}

const BASE_HEADERS: http.OutgoingHttpHeaders = {
  accept: 'application/json, text/event-stream',
  'content-type': 'application/json',
};

interface Session {
  id: string;
  headers: http.OutgoingHttpHeaders;
  /** 2026-07-28: the request `_meta` (version, client, capabilities); no session id. */
  meta?: Record<string, unknown>;
}

const MODERN = '2026-07-28';

/** A 2026-07-28 "session": a client name and the headers every request of it carries. */
function statelessClient(n: number, tool: string): Session {
  return {
    id: `client-${n}`,
    headers: {
      ...BASE_HEADERS,
      'mcp-protocol-version': MODERN,
      'mcp-method': 'tools/call',
      'mcp-name': tool,
    },
    meta: {
      'io.modelcontextprotocol/protocolVersion': MODERN,
      'io.modelcontextprotocol/clientInfo': { name: `gatehouse-bench-${n}`, version: '0' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  };
}

async function openSession(client: Client): Promise<Session> {
  const init = JSON.stringify({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'gatehouse-bench', version: '0' },
    },
  });
  const reply = await client.request('POST', BASE_HEADERS, init);
  const result = expectResult(reply, 0);
  const id = reply.headers['mcp-session-id'];
  if (typeof id !== 'string') throw new Error('initialize response has no mcp-session-id header');
  const version = typeof result.protocolVersion === 'string' ? result.protocolVersion : PROTOCOL_VERSION;
  const headers = { ...BASE_HEADERS, 'mcp-session-id': id, 'mcp-protocol-version': version };
  const ack = await client.request(
    'POST',
    headers,
    JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  );
  if (ack.status < 200 || ack.status >= 300)
    throw new Error(`notifications/initialized: HTTP ${ack.status} ${ack.body}`);
  return { id, headers };
}

/** Opens `count` sessions, a few at a time (a stdio upstream may spawn a process per session). */
async function openSessions(client: Client, count: number): Promise<Session[]> {
  const sessions: Session[] = [];
  while (sessions.length < count) {
    const batch = Math.min(8, count - sessions.length);
    sessions.push(...(await Promise.all(Array.from({ length: batch }, () => openSession(client)))));
  }
  return sessions;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

async function run(opts: Options): Promise<LoadResult> {
  const client = new Client(opts.url, opts.concurrency + 8);
  const sessions =
    opts.revision === MODERN
      ? Array.from({ length: opts.sessions }, (_, n) => statelessClient(n, opts.tool))
      : await openSessions(client, opts.sessions);
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  let nextId = 1;

  const start = performance.now();
  const windowStart = start + opts.warmup * 1000;
  const windowEnd = windowStart + opts.seconds * 1000;
  // Marks for the runner, which samples the servers' CPU time at the window's edges (bench/run.ts).
  setTimeout(() => process.stdout.write('WINDOW_START\n'), opts.warmup * 1000);
  setTimeout(() => process.stdout.write('WINDOW_END\n'), (opts.warmup + opts.seconds) * 1000);

  const worker = async (session: Session): Promise<void> => {
    while (performance.now() < windowEnd) {
      const id = nextId++;
      const body = JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: {
          name: opts.tool,
          arguments: { text: `hello ${id}` },
          ...(session.meta ? { _meta: session.meta } : {}),
        },
      });
      const t0 = performance.now();
      try {
        const result = expectResult(await client.request('POST', session.headers, body), id);
        // A fast wrong answer must not count: the echo has to come back intact.
        const first: unknown = Array.isArray(result.content) ? result.content[0] : undefined;
        if (result.isError === true || (first as { text?: unknown } | undefined)?.text !== `hello ${id}`)
          throw new Error(`unexpected tool result: ${JSON.stringify(result).slice(0, 200)}`);
        const t1 = performance.now();
        if (t1 >= windowStart && t1 <= windowEnd) latencies.push(t1 - t0);
      } catch (err) {
        const t1 = performance.now();
        if (t1 >= windowStart && t1 <= windowEnd) errors++;
        if (errorSamples.length < 5) errorSamples.push(err instanceof Error ? err.message : String(err));
        // Do not spin on a dead target.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(
    Array.from({ length: opts.concurrency }, (_, i) => worker(sessions[i % sessions.length] as Session)),
  );

  if (opts.revision !== MODERN) {
    await Promise.allSettled(sessions.map((s) => client.request('DELETE', s.headers)));
  }
  client.close();

  const sorted = Float64Array.from(latencies).sort();
  return {
    calls: sorted.length,
    seconds: opts.seconds,
    calls_per_s: sorted.length / opts.seconds,
    p50_ms: percentile(sorted, 0.5),
    p99_ms: percentile(sorted, 0.99),
    errors,
    error_samples: errorSamples,
  };
}

try {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.bearer) BASE_HEADERS.authorization = `Bearer ${opts.bearer}`;
  const result = await run(opts);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (err) {
  const fatal: LoadResult = {
    calls: 0,
    seconds: 0,
    calls_per_s: 0,
    p50_ms: Number.NaN,
    p99_ms: Number.NaN,
    errors: 1,
    error_samples: [],
    fatal: err instanceof Error ? err.message : String(err),
  };
  process.stdout.write(`${JSON.stringify(fatal)}\n`);
  process.exitCode = 1;
}
