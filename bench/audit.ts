// Audit writer throughput: `node --import tsx bench/audit.ts`.
// Durable events/s (each append resolved only after its commit) with 1, 16 and 256 concurrent
// appenders, SQLite WAL with synchronous=NORMAL (survives a process crash) and FULL (also survives
// power loss), on a real file in a temp dir. p50/p99 are per-append latency (append() to resolve).
// Writes bench/audit.json (flat keys). Env: BENCH_AUDIT_EVENTS (20000), BENCH_AUDIT_EVENTS_C1 (3000).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuditWriter } from '../src/audit/index.ts';
import { SqliteStorage } from '../src/storage/sqlite/index.ts';

const EVENTS = envInt('BENCH_AUDIT_EVENTS', 20_000);
const EVENTS_C1 = envInt('BENCH_AUDIT_EVENTS_C1', 3000);
const CONCURRENCY = [1, 16, 256] as const;
const MODES = ['normal', 'full'] as const;

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
  return v;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

interface Result {
  eventsPerSec: number;
  p50Us: number;
  p99Us: number;
  batches: number;
}

async function run(mode: (typeof MODES)[number], concurrency: number, total: number): Promise<Result> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-audit-'));
  const storage = new SqliteStorage(path.join(dir, 'gatehouse.db'), { synchronous: mode });
  let batches = 0;
  // Count transactions to report the mean group-commit batch size.
  const repo = storage.audit;
  // The repository is a class (private fields): wrap it, do not copy it.
  const counting = new Proxy(repo, {
    get(target, prop, receiver) {
      if (prop === 'appendBatch')
        return (...a: Parameters<typeof repo.appendBatch>) => {
          batches++;
          return target.appendBatch(...a);
        };
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const writer = await createAuditWriter({
    repo: counting,
    dataDir: dir,
    instance: 'bench',
    checkpointIntervalMs: 0,
  });
  const latencies: number[] = [];
  let next = 0;
  const appender = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      await writer.appendTrusted({
        type: 'call.attempted',
        requestId: `req-${i}`,
        grantId: `grant-${i % 50}`,
        sessionId: `sess-${i % 200}`,
        principal: {
          agent: 'agent-bench',
          user: `user-${i % 100}`,
          jti: `jti-${i % 500}`,
          issuer: 'https://as',
          authMethod: 'jwt',
        },
        server: 'files',
        method: 'tools/call',
        tool: 'read_file',
        args: { path: `/data/file-${i}.txt`, encoding: 'utf8' },
        decision: { effect: 'allow', policies: ['p-read'] },
      });
      latencies.push((performance.now() - t0) * 1000);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, appender));
  const secs = (performance.now() - start) / 1000;
  await writer.close();
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return {
    eventsPerSec: Math.round(total / secs),
    p50Us: Math.round(quantile(latencies, 0.5) * 10) / 10,
    p99Us: Math.round(quantile(latencies, 0.99) * 10) / 10,
    batches,
  };
}

const out: Record<string, number> = {};
const rows: string[] = [];
rows.push('sync    conc  events   events/s   p50 µs   p99 µs  mean batch');
for (const mode of MODES) {
  for (const c of CONCURRENCY) {
    const total = c === 1 ? EVENTS_C1 : EVENTS;
    await run(mode, c, Math.min(total, 500)); // warm-up (JIT, page cache)
    const r = await run(mode, c, total);
    const key = `audit_${mode}_c${c}`;
    out[`${key}_events_per_s`] = r.eventsPerSec;
    out[`${key}_p50_us`] = r.p50Us;
    out[`${key}_p99_us`] = r.p99Us;
    out[`${key}_mean_batch`] = Math.round((total / r.batches) * 10) / 10;
    rows.push(
      `${mode.padEnd(6)} ${String(c).padStart(5)} ${String(total).padStart(7)} ${String(r.eventsPerSec).padStart(10)} ${String(r.p50Us).padStart(8)} ${String(r.p99Us).padStart(8)} ${String(out[`${key}_mean_batch`]).padStart(11)}`,
    );
  }
}
process.stdout.write(`${rows.join('\n')}\n`);
const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'audit.json');
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
process.stdout.write(`wrote ${file}\n`);
