// Result sanitiser cost: `node --import tsx bench/sanitize.ts`.
// Runs the response stages (RESPONSE_STAGES: limit-result, redact-secrets with 10 brokered secrets,
// sanitize-result with the default profile) over tools/call responses whose text is 4 KiB and 64 KiB,
// and a small (~100 B) one, and reports process CPU time (user + system, so a loaded machine inflates
// it less than wall time would) per call and per KiB, with and without sanitize-result; the difference
// is the stage's added cost. Texts: plain English prose with numbers and URLs ("ascii"), and the same
// with accented words, emoji and CJK ("mixed", which takes the normalising path). Writes
// bench/sanitize.json (flat keys). Env: BENCH_SANITIZE_MS (target CPU ms per measurement, 1500).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { parseConfig } from '../src/config/load.ts';
import { RESPONSE_STAGES } from '../src/pipeline/order.ts';
import type { JsonRpcMessage } from '../src/protocol/jsonrpc.ts';
import { ProfileResolver } from '../src/sanitize/profile.ts';
import { LeakGuard } from '../src/secrets/leak-guard.ts';
import type { ResponseContext, ResponseStage } from '../src/session/session.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const TARGET_MS = Number(process.env.BENCH_SANITIZE_MS ?? 1500);

const config = parseConfig({ upstreams: { bench: { type: 'http', url: 'http://127.0.0.1/unused' } } });
const guard = new LeakGuard();
for (let i = 0; i < 10; i++) guard.register(`bench-secret-value-${i}-${'x'.repeat(24)}`, `secret-${i}`);
const sanitizer = new ProfileResolver(config.sanitize);
const log = pino({ level: 'silent' });

const SENTENCES = [
  'The deployment finished at 14:32 UTC and all 48 health checks passed.',
  'See https://docs.example.com/guide/install#requirements for the full list of requirements.',
  'Revenue grew 12.5% year over year, driven by the enterprise segment in Europe and Asia.',
  'function add(a, b) { return a + b; } // returns the sum of two numbers',
  'The meeting with the design team is moved to Thursday; please update your calendars.',
  'Error: connection refused (ECONNREFUSED) while reading the cache at 10.0.3.17:6379.',
  'Customers can reset their password from the account page after signing in.',
  'The table below lists the top ten cities by population, with the 2020 census figures.',
];
const MIXED = [
  'Café déjà vu à Zürich — naïve façade. ',
  'Deploy done 🚀✅ ',
  '東京の天気は晴れです。 ',
  'Ünïcödé résumé. ',
];

function text(bytes: number, mixed: boolean): string {
  let out = '';
  for (let i = 0; out.length < bytes; i++) {
    out += `${SENTENCES[i % SENTENCES.length]} `;
    if (mixed && i % 3 === 0) out += MIXED[i % MIXED.length];
    if (i % 6 === 5) out += '\n';
  }
  return out.slice(0, bytes);
}

function response(t: string): JsonRpcMessage {
  return { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: t }] } } as JsonRpcMessage;
}

function run(stages: readonly ResponseStage[], msg: JsonRpcMessage): void {
  const ctx: ResponseContext = {
    msg,
    json: JSON.stringify(msg),
    limits: config.limits,
    log,
    leakGuard: guard,
    onRedacted: undefined,
    origin: { server: 'bench', method: 'tools/call', target: 'bench__echo', tool: undefined },
    sanitizer,
    onFindings: undefined,
    onTaint: undefined,
  };
  for (const s of stages) {
    s.run(ctx);
    if (!ctx.json) break;
  }
}

/** CPU µs per call: calibrated to about TARGET_MS of CPU, median of 5 rounds. */
function cpuPerCall(stages: readonly ResponseStage[], msg: JsonRpcMessage): number {
  for (let i = 0; i < 50; i++) run(stages, msg);
  const t0 = process.cpuUsage();
  let n = 0;
  while (n < 5 || (process.cpuUsage(t0).user + process.cpuUsage(t0).system) / 1000 < TARGET_MS / 10) {
    run(stages, msg);
    n++;
  }
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) run(stages, msg);
    const c = process.cpuUsage(c0);
    rounds.push((c.user + c.system) / n);
  }
  rounds.sort((a, b) => a - b);
  return rounds[2] ?? 0;
}

const all = RESPONSE_STAGES;
const without = RESPONSE_STAGES.filter((s) => s.name !== 'sanitize-result');
if (without.length === all.length) throw new Error('sanitize-result is not in RESPONSE_STAGES');
const json: Record<string, number> = {};
const round = (x: number): number => Math.round(x * 100) / 100;
const lines: string[] = [];
for (const mixed of [false, true]) {
  const kind = mixed ? 'mixed' : 'ascii';
  for (const kib of [4, 64]) {
    const msg = response(text(kib * 1024, mixed));
    const base = cpuPerCall(without, msg);
    const full = cpuPerCall(all, msg);
    const added = (full - base) / kib;
    json[`sanitize_${kind}_${kib}k_base_us`] = round(base);
    json[`sanitize_${kind}_${kib}k_full_us`] = round(full);
    json[`sanitize_${kind}_${kib}k_added_us_per_kib`] = round(added);
    lines.push(
      `${kind} ${String(kib).padStart(2)} KiB: response stages ${round(base)} µs without sanitize-result, ${round(full)} µs with: +${round(added)} µs/KiB`,
    );
  }
}
const small = response(
  '{"temperature": 18.5, "unit": "C", "city": "Paris", "updated": "2026-12-06T10:00:00Z"}',
);
const smallBase = cpuPerCall(without, small);
const smallFull = cpuPerCall(all, small);
json.sanitize_small_base_us = round(smallBase);
json.sanitize_small_full_us = round(smallFull);
json.sanitize_small_added_us = round(smallFull - smallBase);
lines.push(
  `small (~100 B): ${round(smallBase)} µs without, ${round(smallFull)} µs with: +${round(smallFull - smallBase)} µs per call`,
);
writeFileSync(path.join(BENCH_DIR, 'sanitize.json'), `${JSON.stringify(json, null, 2)}\n`);
process.stdout.write(`${lines.join('\n')}\nwrote bench/sanitize.json\n`);
