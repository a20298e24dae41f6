/**
 * Soak: a sustained mix of valid and hostile traffic against a gateway started as a child process
 * (`gatehouse start`). Memory must be bounded by bytes (T31): once the bounded tables are warm, what
 * the gateway retains levels off. Retained memory is sampled as the heap (plus external memory) after
 * a full GC, which the child runs on SIGUSR2 (test/helpers/heap-probe.ts); RSS from /proc/<pid>/status
 * is sampled too and reported (it is allocator noise at the scale of a short run, so not judged). The test
 * (test/e2e/soak.test.ts) runs it for a short time; `node --import tsx scripts/soak.ts --seconds 600`
 * runs it long and prints the series and the slope.
 *
 * Traffic, from `workers` concurrent loops, each request picked at random:
 * - valid calls on a session (an allowed tool);
 * - refused calls whose tool names are large and distinct (policy, attribute and metrics tables);
 * - calls with large distinct argument strings that the schema refuses (and log lines);
 * - hostile bodies refused at parse time (deep nesting, unpaired surrogates, huge ids, 1e999);
 * - unauthenticated requests with distinct garbage tokens (401s, their audit);
 * - sessions opened and closed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startCliGateway } from '../test/helpers/gateway.ts';
import { clientCredentialsToken } from '../test/helpers/oauth.ts';

const ROOT = join(import.meta.dirname, '..');
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const CLIENT = { id: 'soak-agent', secret: 'canary-soak-secret-not-real-0007' };

/** One sample: seconds since the start, and a size in MB (RSS, or the heap retained after a GC). */
export interface Sample {
  readonly t: number;
  readonly mb: number;
}

export interface SoakResult {
  readonly samples: readonly Sample[];
  /** Least-squares slope of RSS (MB per second) over the samples after `warmupFraction` of the run. */
  readonly slopeMbPerSec: number;
  /** The retained heap (heap used + external, after a full GC), sampled once per `sampleMs`. */
  readonly heap: readonly Sample[];
  /** Least-squares slope of the retained heap (MB per second) after `warmupFraction` of the run. */
  readonly heapSlopeMbPerSec: number;
  readonly requests: number;
  /** Requests answered with a 5xx or a JSON-RPC `internal` error (must be 0). */
  readonly serverErrors: number;
  readonly startMb: number;
  readonly endMb: number;
  readonly peakMb: number;
}

function rssMb(pid: number): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return Number.NaN; // the process is gone: the run fails on its exit
  }
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m?.[1] ? Number(m[1]) / 1024 : Number.NaN;
}

/** Least-squares slope of y over x. */
export function slope(points: readonly Sample[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.t, 0) / n;
  const my = points.reduce((s, p) => s + p.mb, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mx) * (p.mb - my);
    den += (p.t - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const rnd = (bytes: number): string => randomBytes(bytes).toString('base64url');

/** Runs the soak; the gateway is stopped and its data dir removed before it returns. */
export async function runSoak(opts: {
  seconds: number;
  workers?: number;
  warmupFraction?: number;
  sampleMs?: number;
}): Promise<SoakResult> {
  const work = mkdtempSync(join(tmpdir(), 'gatehouse-soak-'));
  const policy = join(work, 'soak.cedar');
  writeFileSync(
    policy,
    '@id("soak-search") permit (principal, action, resource == Gatehouse::Tool::"gh__search_code");\n' +
      '@id("soak-list") permit (principal, action == Gatehouse::Action::"list_tools", resource);\n',
  );
  const config = join(work, 'gatehouse.yaml');
  writeFileSync(
    config,
    JSON.stringify({
      auth: {
        mode: 'embedded',
        embedded: {
          clients: [{ clientId: CLIENT.id, clientSecret: CLIENT.secret, grantTypes: ['client_credentials'] }],
        },
      },
      policy: { files: [policy] },
      logging: { level: 'info' },
      pinning: { newTools: 'trust' },
      upstreams: {
        gh: {
          type: 'stdio',
          command: process.execPath,
          args: ['--import', 'tsx', join(ROOT, 'test/fixtures/tool-server.ts')],
          pool: { warm: 2, max: 64 },
        },
      },
    }),
  );
  const probe = join(work, 'heap.txt');
  const gw = await startCliGateway(['--config', config, '--data-dir', join(work, 'data')], {
    nodeArgs: ['--expose-gc', '--import', join(ROOT, 'test/helpers/heap-probe.ts')],
    env: { GATEHOUSE_HEAP_PROBE: probe },
  });
  const pid = gw.child.pid ?? 0;
  let requests = 0;
  let serverErrors = 0;
  try {
    const token = await clientCredentialsToken(gw.origin, CLIENT, gw.url);
    const auth = { authorization: `Bearer ${token}` };
    const post = async (body: string, headers: Record<string, string>): Promise<Response> => {
      requests++;
      // A connection the gateway drops is a failure of the run (reported with its stderr on exit).
      const res = await fetch(gw.url, { method: 'POST', headers: { ...HEADERS, ...headers }, body }).catch(
        async (err: unknown) => {
          await new Promise((r) => setTimeout(r, 500));
          if (gw.child.exitCode !== null || gw.child.signalCode !== null)
            throw new Error(`the gateway exited under the soak:\n${gw.stderr().slice(-4000)}`);
          throw err;
        },
      );
      const text = await res.text();
      if (res.status >= 500 && res.status !== 503) serverErrors++;
      else if (text.includes('"gatehouse":"internal"')) serverErrors++;
      return Object.assign(res, { bodyText: text });
    };
    const open = async (): Promise<Record<string, string>> => {
      const res = await post(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 0,
          method: 'initialize',
          params: {
            protocolVersion: '2025-11-25',
            capabilities: {},
            clientInfo: { name: 'soak', version: '1' },
          },
        }),
        auth,
      );
      const sid = res.headers.get('mcp-session-id') ?? '';
      const h = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), h);
      return h;
    };
    const call = (id: number, name: string, args: unknown): string =>
      JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

    const samples: Sample[] = [];
    const t0 = Date.now();
    const end = t0 + opts.seconds * 1000;
    const sampler = setInterval(() => {
      samples.push({ t: (Date.now() - t0) / 1000, mb: rssMb(pid) });
      gw.child.kill('SIGUSR2');
    }, opts.sampleMs ?? 1000);
    const worker = async (): Promise<void> => {
      let session = await open();
      let id = 1;
      while (Date.now() < end) {
        id++;
        const pick = Math.random();
        if (pick < 0.25) await post(call(id, 'gh__search_code', { q: 'todo' }), session);
        else if (pick < 0.5) await post(call(id, `gh__${rnd(700)}`, {}), session);
        else if (pick < 0.6) await post(call(id, 'gh__search_code', { q: 1, big: rnd(60_000) }), session);
        else if (pick < 0.7) {
          const hostile = [
            `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"gh__search_code","arguments":{"q":${'['.repeat(5000)}${']'.repeat(5000)}}}}`,
            `{"jsonrpc":"2.0","id":"${rnd(200)}\\ud800","method":"ping"}`,
            `{"jsonrpc":"2.0","id":${id},"method":"${rnd(900)}","params":{"x":1e999}}`,
            `{"jsonrpc":"2.0","id":${id},"method":"tools/list","params":{"_meta":{"progressToken":{"${rnd(300)}":1}}}}`,
          ];
          await post(hostile[id % hostile.length] as string, session);
        } else if (pick < 0.85) {
          await post(JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }), {
            authorization: `Bearer ${rnd(40)}.${rnd(400)}.${rnd(40)}`,
          });
        } else if (pick < 0.86) {
          requests++;
          await fetch(gw.url, { method: 'DELETE', headers: session }).then((r) => r.text());
          session = await open();
        } else await post(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/list' }), session);
      }
    };
    const died = new Promise<never>((_, reject) =>
      gw.child.once('exit', (code, signal) =>
        reject(
          new Error(`the gateway exited (${code ?? signal}) under the soak:\n${gw.stderr().slice(-4000)}`),
        ),
      ),
    );
    try {
      await Promise.race([Promise.all(Array.from({ length: opts.workers ?? 4 }, worker)), died]);
    } finally {
      clearInterval(sampler);
    }
    const warmFrom = opts.seconds * (opts.warmupFraction ?? 0.4);
    const heap = readFileSync(probe, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ').map(Number))
      .map(([ms = 0, bytes = 0]) => ({ t: (ms - t0) / 1000, mb: bytes / 1024 / 1024 }));
    return {
      samples,
      slopeMbPerSec: slope(samples.filter((s) => s.t >= warmFrom)),
      heap,
      heapSlopeMbPerSec: slope(heap.filter((s) => s.t >= warmFrom)),
      requests,
      serverErrors,
      startMb: samples[0]?.mb ?? Number.NaN,
      endMb: samples.at(-1)?.mb ?? Number.NaN,
      peakMb: Math.max(...samples.map((s) => s.mb)),
    };
  } finally {
    if (gw.child.exitCode === null && gw.child.signalCode === null) {
      gw.child.kill('SIGTERM');
      await new Promise((r) => gw.child.once('exit', r));
    }
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '120' }, workers: { type: 'string', default: '4' } },
  });
  const r = await runSoak({ seconds: Number(values.seconds), workers: Number(values.workers) });
  process.stdout.write('seconds\tRSS MB\tretained heap MB\n');
  for (const [i, s] of r.samples.entries())
    process.stdout.write(`${s.t.toFixed(1)}\t${s.mb.toFixed(1)}\t${r.heap[i]?.mb.toFixed(1) ?? ''}\n`);
  process.stdout.write(
    `requests ${r.requests}, server errors ${r.serverErrors}, RSS ${r.startMb.toFixed(1)} → ${r.endMb.toFixed(1)} MB (peak ${r.peakMb.toFixed(1)}), RSS slope after warm-up ${(r.slopeMbPerSec * 1024).toFixed(1)} KB/s, retained heap ${r.heap[0]?.mb.toFixed(1)} → ${r.heap.at(-1)?.mb.toFixed(1)} MB, slope after warm-up ${(r.heapSlopeMbPerSec * 1024).toFixed(1)} KB/s\n`,
  );
}
