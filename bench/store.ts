// The store comparison (issue #15): per-call latency of a Gatehouse process on the PostgreSQL
// store vs the same process on SQLite, same run, same config otherwise, interleaved. See
// bench/README.md ("Stores"). `BENCH_STORE=1 npm run bench`, or `node --import tsx bench/store.ts`.
//
// Env: BENCH_RUNS (3), BENCH_SECONDS (3), BENCH_WARMUP (1), BENCH_STORE_SCENARIOS ("1:1,64:64" as
// concurrency:sessions), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/postgres),
// BENCH_GATEHOUSE_CLI (a built dist/cli/index.js; default: the sources through tsx),
// BENCH_STORE_SYNC (`normal`, the default, or `full`: audit.synchronous of both gateways).
//
// Each gateway runs with authentication and policy on (as bench/run.ts's gatehouse_http), in front
// of the HTTP echo server; PostgreSQL uses a random schema, dropped at the end. No timing assertion
// anywhere: this prints and writes bench/store.json (bench/store-full.json with BENCH_STORE_SYNC=full).
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { RUNTIME_FLAGS } from '../src/cli/runtime-flags.ts';
import { BENCH_CLIENT, benchGatewayYaml, startArgs } from './gateway-config.ts';
import type { LoadResult } from './load.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 1);
const SCENARIOS = (process.env['BENCH_STORE_SCENARIOS'] ?? '1:1,64:64').split(',').map((s) => {
  const [c, n] = s.split(':').map(Number);
  if (!c || !n) throw new Error(`bad BENCH_STORE_SCENARIOS entry: ${s}`);
  return { c, s: n, name: `c${c}_s${n}` };
});
const PG_URL = process.env['BENCH_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SYNC = process.env['BENCH_STORE_SYNC'] === 'full' ? 'full' : 'normal';
const OUT = SYNC === 'full' ? 'store-full.json' : 'store.json';
const TMP = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-store-'));
const SCHEMA = `gh_bench_${randomBytes(6).toString('hex')}`;
const TSX = ['--import', 'tsx'];

const children = new Set<ChildProcess>();

function log(msg: string): void {
  process.stderr.write(`[bench:store] ${msg}\n`);
}

function start(args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return { child, output: () => tail };
}

function killAll(): void {
  for (const c of children) {
    try {
      if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}
process.on('exit', () => {
  killAll();
  rmSync(TMP, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function startEcho(): Promise<string> {
  const p = start([...TSX, path.join(BENCH_DIR, 'echo-server.ts'), '--http', '0']);
  let url = '';
  await until('the echo server', async () => {
    url = /LISTENING (\S+)/.exec(p.output())?.[1] ?? '';
    return url !== '';
  });
  return url;
}

interface Gateway {
  name: string;
  url: string;
  bearer: string;
}

async function startGateway(name: string, echoUrl: string, storage: string[]): Promise<Gateway> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(TMP, `${name}-data-`));
  const policy = path.join(TMP, 'bench.cedar');
  writeFileSync(
    policy,
    `@id("bench-echo")\npermit (principal == Gatehouse::Agent::"${BENCH_CLIENT.id}", action, resource in Gatehouse::Server::"echo");\n`,
  );
  const config = path.join(TMP, `${name}.yaml`);
  writeFileSync(
    config,
    benchGatewayYaml(policy, `    type: http\n    url: ${echoUrl}\n`, [
      'audit:',
      `  synchronous: ${SYNC}`,
      ...storage,
    ]),
  );
  const cli = process.env['BENCH_GATEHOUSE_CLI']
    ? [path.resolve(process.env['BENCH_GATEHOUSE_CLI'])]
    : [...TSX, path.join(ROOT, 'src/cli/index.ts')];
  // The Node flags Gatehouse ships with (src/cli/runtime-flags.ts); both stores get them.
  const p = start([...RUNTIME_FLAGS, ...cli, ...startArgs(config, port, dataDir)]);
  const origin = `http://127.0.0.1:${port}`;
  await until(`${name} /readyz`, async () => (await fetch(`${origin}/readyz`)).status === 200).catch(
    (err) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${p.output()}`);
    },
  );
  const url = `${origin}/mcp`;
  const res = await fetch(`${origin}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${BENCH_CLIENT.id}:${BENCH_CLIENT.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'mcp', resource: url }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`${name}: no bench token (HTTP ${res.status})`);
  return { name, url, bearer: body.access_token };
}

async function measure(gw: Gateway, c: number, s: number): Promise<LoadResult> {
  const args = [
    ...TSX,
    path.join(BENCH_DIR, 'load.ts'),
    '--url',
    gw.url,
    '--tool',
    'echo__echo',
    '--concurrency',
    String(c),
    '--sessions',
    String(s),
    '--seconds',
    String(SECONDS),
    '--warmup',
    String(WARMUP),
    '--bearer',
    gw.bearer,
  ];
  const p = start(args);
  await new Promise((r) => p.child.once('exit', r));
  const line = p.output().trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as LoadResult;
  } catch {
    throw new Error(`load generator failed: ${p.output().slice(-1000)}`);
  }
}

function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] ?? Number.NaN) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
}

function num(v: number | string | undefined): number {
  return typeof v === 'number' ? v : Number.NaN;
}

function fmt(v: number | string | undefined, digits: number): string {
  return num(v).toFixed(digits).padStart(7);
}

async function dropSchema(): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(SCHEMA)} CASCADE`);
  await c.end();
}

export async function benchStores(): Promise<void> {
  const t0 = Date.now();
  const echoUrl = await startEcho();
  const gateways = [
    await startGateway('sqlite', echoUrl, ['storage:', '  kind: sqlite']),
    await startGateway('postgres', echoUrl, [
      'storage:',
      '  kind: postgres',
      '  postgres:',
      `    url: ${PG_URL}`,
      `    schema: ${SCHEMA}`,
    ]),
  ];
  try {
    log(`gateways up; ${RUNS} runs × ${SCENARIOS.length} scenarios × 2 stores, ${SECONDS} s each`);
    for (const gw of gateways) await measure(gw, 4, 4); // unrecorded warm-up pass (JIT, pools)
    const results = new Map<string, LoadResult[]>();
    for (let run = 0; run < RUNS; run++) {
      for (const sc of SCENARIOS) {
        // Interleaved: drift on the shared machine hits both stores alike.
        for (const gw of run % 2 ? [...gateways].reverse() : gateways) {
          const r = await measure(gw, sc.c, sc.s);
          const key = `${gw.name}_${sc.name}`;
          results.set(key, [...(results.get(key) ?? []), r]);
          log(
            `run ${run + 1} ${key}: ${r.calls_per_s.toFixed(0)} calls/s p50 ${r.p50_ms.toFixed(2)} ms errors ${r.errors}`,
          );
        }
      }
    }
    const json: Record<string, number | string> = { audit_synchronous: SYNC };
    const lines = ['', 'store     scenario  calls/s  p50 ms  p99 ms  errors'];
    for (const sc of SCENARIOS) {
      for (const gw of gateways) {
        const rs = results.get(`${gw.name}_${sc.name}`) ?? [];
        const k = `${gw.name}_${sc.name}`;
        json[`${k}_calls_per_s`] = median(rs.map((r) => r.calls_per_s));
        json[`${k}_p50_ms`] = median(rs.map((r) => r.p50_ms));
        json[`${k}_p99_ms`] = median(rs.map((r) => r.p99_ms));
        json[`${k}_errors`] = rs.reduce((n, r) => n + r.errors, 0);
        lines.push(
          `${gw.name.padEnd(9)} ${sc.name.padEnd(9)} ${fmt(json[`${k}_calls_per_s`], 0)} ${fmt(json[`${k}_p50_ms`], 2)} ${fmt(json[`${k}_p99_ms`], 2)} ${fmt(json[`${k}_errors`], 0)}`,
        );
      }
      const added50 = num(json[`postgres_${sc.name}_p50_ms`]) - num(json[`sqlite_${sc.name}_p50_ms`]);
      const added99 = num(json[`postgres_${sc.name}_p99_ms`]) - num(json[`sqlite_${sc.name}_p99_ms`]);
      json[`postgres_added_p50_ms_${sc.name}`] = added50;
      json[`postgres_added_p99_ms_${sc.name}`] = added99;
      lines.push(`postgres - sqlite, ${sc.name}: p50 ${added50.toFixed(2)} ms, p99 ${added99.toFixed(2)} ms`);
    }
    lines.push(
      `(audit.synchronous: ${SYNC})`,
      '',
      `wrote bench/${OUT} (${((Date.now() - t0) / 1000).toFixed(0)} s total)`,
    );
    writeFileSync(path.join(BENCH_DIR, OUT), `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    killAll();
    await dropSchema();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  benchStores().catch((err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAll();
    process.exit(1);
  });
}
