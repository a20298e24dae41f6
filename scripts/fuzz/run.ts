/**
 * `npm run fuzz`: a seeded, time- or count-bounded fuzzer against a gateway it starts itself
 * (docs/fuzzing.md). Families: jsonrpc, bytes, http, oauth, tokens. Oracles: see ORACLES in
 * oracles.ts. Exits 1 when any oracle failed, 2 on a usage error.
 *
 *   npm run fuzz -- [--seed N] [--duration S | --inputs N] [--families a,b] [--report FILE]
 *                   [--concurrency N] [--smoke] [--replay INDEX]
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { type Family, FuzzContext, type Probe, type StallProbe } from './core.ts';
import { bytesFamily } from './families/bytes.ts';
import { httpFamily } from './families/http.ts';
import { jsonrpcFamily } from './families/jsonrpc.ts';
import { memoryFamily } from './families/memory.ts';
import { oauthFamily } from './families/oauth.ts';
import { rev2026Family } from './families/rev2026.ts';
import { tokensFamily } from './families/tokens.ts';
import { DEFAULT_LIMITS, GatewayUnderTest, ROOT } from './gateway.ts';
import { check, type Observed, ORACLES, type OracleName, type Violation } from './oracles.ts';
import { Rng } from './rng.ts';
import { exchange, type WireResult } from './wire.ts';

/** Every family, in the order a run goes through them. */
const FAMILIES: readonly Family[] = [
  jsonrpcFamily,
  rev2026Family,
  memoryFamily,
  bytesFamily,
  httpFamily,
  oauthFamily,
  tokensFamily,
];

interface Options {
  seed: number;
  durationS: number | undefined;
  inputs: number | undefined;
  families: Family[];
  report: string;
  concurrency: number;
  slackMs: number;
  stallBoundMs: number;
  maxLogLine: number;
  rssMaxMb: number;
  rssGrowthMb: number;
  heapGrowthMb: number;
  auditBytesPer401: number;
  replay: number | undefined;
  smoke: boolean;
  stalls: boolean;
}

const USAGE = `usage: npm run fuzz -- [options]
  --seed N             PRNG seed (default: random, printed; env FUZZ_SEED)
  --duration S         total time budget in seconds, split evenly across families (env FUZZ_DURATION)
  --inputs N           total input budget, split evenly across families (env FUZZ_INPUTS)
  --families a,b       which families, in this order; any of ${FAMILIES.map((f) => f.name).join(',')} (env FUZZ_FAMILIES)
  --report FILE        JSON summary; failures/ and the gateway's data dir and log (gateway-*/) go
                       next to it, replacing an earlier run's (default fuzz-out/seed-<N>/report.json;
                       env FUZZ_REPORT)
  --concurrency N      inputs in flight per family (default 8)
  --smoke              short CI run: seed 1 unless given, 120 s unless --duration/--inputs
  --no-stalls          do not send the partial requests (stall probes)
  --replay INDEX       send only input INDEX of the one family given with --families, print it all
  --slack-ms N         added to each configured timeout to get a deadline (default 5000)
  --stall-bound-ms N   longest a partial request may be held open (default 100000: Node's
                       headersTimeout 66 s as the gateway sets it + its 30 s check interval)
  --max-log-line N     longest acceptable gateway log line in bytes (default 8192)
  --rss-max-mb N       RSS bound (default 768); --rss-growth-mb N growth bound (default 256)
  --heap-growth-mb N   heap-after-GC growth bound (default 64)
  --audit-bytes-per-401 N  audit bytes unauthenticated 401s may cost on average (default 128)
`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      duration: { type: 'string' },
      inputs: { type: 'string' },
      families: { type: 'string' },
      report: { type: 'string' },
      concurrency: { type: 'string' },
      smoke: { type: 'boolean', default: false },
      'no-stalls': { type: 'boolean', default: false },
      replay: { type: 'string' },
      'slack-ms': { type: 'string' },
      'stall-bound-ms': { type: 'string' },
      'max-log-line': { type: 'string' },
      'rss-max-mb': { type: 'string' },
      'rss-growth-mb': { type: 'string' },
      'heap-growth-mb': { type: 'string' },
      'audit-bytes-per-401': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const env = process.env;
  const num = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new UsageError(`--${name} must be a non-negative number, got ${v}`);
    return n;
  };
  const smoke = values.smoke;
  let seed = num(values.seed ?? env.FUZZ_SEED, 'seed');
  if (seed === undefined) seed = smoke ? 1 : Math.floor(Math.random() * 2 ** 31);
  let durationS = num(values.duration ?? env.FUZZ_DURATION, 'duration');
  const inputs = num(values.inputs ?? env.FUZZ_INPUTS, 'inputs');
  if (durationS === undefined && inputs === undefined) durationS = smoke ? 120 : 60;
  const names = (values.families ?? env.FUZZ_FAMILIES ?? FAMILIES.map((f) => f.name).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const families: Family[] = [];
  for (const n of names) {
    const f = FAMILIES.find((x) => x.name === n);
    if (!f) throw new UsageError(`unknown family ${n} (families: ${FAMILIES.map((x) => x.name).join(', ')})`);
    families.push(f);
  }
  const replay = num(values.replay, 'replay');
  if (replay !== undefined && families.length !== 1)
    throw new UsageError('--replay needs exactly one --families');
  return {
    seed: Math.floor(seed),
    durationS,
    inputs,
    families,
    report: resolve(
      values.report ?? env.FUZZ_REPORT ?? join(ROOT, 'fuzz-out', `seed-${Math.floor(seed)}`, 'report.json'),
    ),
    concurrency: num(values.concurrency, 'concurrency') ?? 8,
    slackMs: num(values['slack-ms'], 'slack-ms') ?? 5000,
    stallBoundMs: num(values['stall-bound-ms'], 'stall-bound-ms') ?? 100_000,
    maxLogLine: num(values['max-log-line'], 'max-log-line') ?? 8192,
    rssMaxMb: num(values['rss-max-mb'], 'rss-max-mb') ?? 768,
    rssGrowthMb: num(values['rss-growth-mb'], 'rss-growth-mb') ?? 256,
    heapGrowthMb: num(values['heap-growth-mb'], 'heap-growth-mb') ?? 64,
    auditBytesPer401: num(values['audit-bytes-per-401'], 'audit-bytes-per-401') ?? 128,
    replay,
    smoke,
    stalls: !values['no-stalls'],
  };
}

class UsageError extends Error {}

/** A failure as saved and summarised. */
interface Failure {
  oracle: OracleName;
  family: string;
  index: number;
  label: string;
  what: string;
  detail?: string;
  /** A root cause from the gateway's log: failures with the same cause are one finding, whatever the input. */
  cause?: string;
  file?: string;
}

/** Findings grouped by (family, oracle, label shape, what). */
interface FindingGroup {
  key: string;
  oracle: OracleName;
  family: string;
  label: string;
  what: string;
  count: number;
  examples: Failure[];
  /** Distinct input labels (shapes) seen in this group. */
  labels: Set<string>;
}

/** Labels with their numbers blanked, so one input shape is one finding. */
function shape(text: string): string {
  return text.replace(/\d+/g, 'N').slice(0, 160);
}

/** Printable preview of bytes: UTF-8 with control characters and invalid bytes escaped, truncated. */
function preview(buf: Buffer, max = 4096): string {
  const cut = buf.subarray(0, max);
  let text = '';
  for (const ch of cut.toString('utf8')) {
    const c = ch.charCodeAt(0);
    if (ch === '\uFFFD') text += '\\ufffd';
    else if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f)
      text += `\\x${c.toString(16).padStart(2, '0')}`;
    else text += ch;
  }
  return buf.length > max ? `${text}… (${buf.length} bytes in all)` : text;
}

/** The bytes sent, for one console line: text if printable UTF-8, else base64; truncated. */
function bytesForConsole(buf: Buffer): string {
  const max = 240;
  const text = buf.toString('utf8');
  let controls = false;
  for (let i = 0; i < text.length && !controls; i++) {
    const c = text.charCodeAt(i);
    controls = c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d;
  }
  const printable = !controls && Buffer.from(text, 'utf8').equals(buf);
  const shown = printable
    ? JSON.stringify(text.slice(0, max))
    : `base64:${buf.subarray(0, Math.floor((max * 3) / 4)).toString('base64')}`;
  return buf.length > max ? `${shown}… (full bytes in the repro file)` : shown;
}

function describeResult(r: WireResult): Record<string, unknown> {
  return {
    ms: r.ms,
    timedOut: r.timedOut,
    closedByServer: r.closedByServer,
    error: r.error,
    responses: r.responses.map((x) => ({
      status: x.status,
      complete: x.complete,
      streaming: x.streaming,
      ms: x.ms,
      headers: Object.fromEntries([...x.headers].map(([k, v]) => [k, v.length === 1 ? v[0] : v])),
      body: preview(x.body, 2048),
    })),
  };
}

class Recorder {
  readonly groups = new Map<string, FindingGroup>();
  readonly perOracle = new Map<OracleName, number>();
  readonly perFamily = new Map<string, number>();
  private fileCount = 0;

  constructor(
    private readonly dir: string,
    private readonly seed: number,
  ) {
    mkdirSync(join(dir, 'failures'), { recursive: true });
  }

  get total(): number {
    let n = 0;
    for (const c of this.perOracle.values()) n += c;
    return n;
  }

  /** Records a failure; saves a repro file for the first few of each group; prints new groups. */
  add(
    f: Omit<Failure, 'file'>,
    repro?: { probe?: Probe | StallProbe; result?: WireResult; extra?: Record<string, unknown> },
  ): void {
    this.perOracle.set(f.oracle, (this.perOracle.get(f.oracle) ?? 0) + 1);
    this.perFamily.set(f.family, (this.perFamily.get(f.family) ?? 0) + 1);
    const key = f.cause
      ? `${f.family}|${f.oracle}|cause|${shape(f.cause)}`
      : `${f.family}|${f.oracle}|${shape(f.label)}|${shape(f.what)}`;
    let g = this.groups.get(key);
    const isNew = !g;
    if (!g) {
      g = {
        key,
        oracle: f.oracle,
        family: f.family,
        label: f.label,
        what: f.what,
        count: 0,
        examples: [],
        labels: new Set(),
      };
      this.groups.set(key, g);
    }
    g.count++;
    if (g.labels.size < 50) g.labels.add(shape(f.label));
    if (g.examples.length >= 3) return;
    const failure: Failure = { ...f };
    if (this.fileCount < 2000) {
      this.fileCount++;
      const base = `${f.family}-${f.index}-${f.oracle}`;
      const file = join(this.dir, 'failures', `${base}.json`);
      const sent = repro?.probe ? Buffer.concat(repro.probe.wire.chunks.map((c) => c.data)) : undefined;
      const doc = {
        seed: this.seed,
        family: f.family,
        index: f.index,
        oracle: f.oracle,
        oracleMeaning: ORACLES[f.oracle],
        label: f.label,
        what: f.what,
        detail: f.detail,
        replay:
          f.index >= 0
            ? `npm run fuzz -- --seed ${this.seed} --families ${f.family} --replay ${f.index}`
            : undefined,
        request: sent
          ? {
              bytes: sent.length,
              chunks: repro?.probe?.wire.chunks.map((c) => ({
                delayMs: c.delayMs ?? 0,
                bytes: c.data.length,
              })),
              text: preview(sent),
              base64: sent.length <= 512 * 1024 ? sent.toString('base64') : undefined,
              file: `${base}.bin`,
            }
          : undefined,
        result: repro?.result ? describeResult(repro.result) : undefined,
        ...repro?.extra,
      };
      writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
      if (sent) writeFileSync(join(this.dir, 'failures', `${base}.bin`), sent);
      failure.file = file;
    }
    g.examples.push(failure);
    if (isNew) {
      const sent = repro?.probe ? Buffer.concat(repro.probe.wire.chunks.map((c) => c.data)) : undefined;
      process.stdout.write(
        `FAIL [${f.oracle}] ${f.family}#${f.index} ${f.label.slice(0, 80)}: ${f.what.slice(0, 200)}\n` +
          `     seed ${this.seed}, family ${f.family}, input ${f.index}; repro ${failure.file ?? '(not saved)'}\n` +
          (sent ? `     sent ${sent.length} bytes: ${bytesForConsole(sent)}\n` : ''),
      );
    }
  }
}

/** Statistics of one family. */
interface FamilyStats {
  name: string;
  inputs: number;
  probes: number;
  failures: number;
  /** Inputs that could not be prepared (e.g. a session slot could not be opened). */
  setupErrors: number;
  seconds: number;
  statuses: Record<string, number>;
  latencyMsP50: number;
  latencyMsP99: number;
  latencyMsMax: number;
  /** Where the family's time went: total ms and count per input kind (first word of the label), top 8. */
  timeByKind: Record<string, { n: number; ms: number }>;
  heapAfterGcMb: number | undefined;
  /** Families that measure retention: heap after GC at the end minus at the start, and bytes sent. */
  heapRetainedMb?: number;
  sentMb?: number;
  rssMb: number | undefined;
  auditVerify: string;
}

interface InFlight {
  family: string;
  index: number;
  label: string;
  probe: Probe;
  bytes: number;
  /** When it was sent (the newest inputs in flight are the likeliest cause of a crash). */
  sentAt: number;
  /** The request as text (for matching log lines), made on first use. */
  text?: string;
}

/**
 * Distinctive 16-character windows of what a log line copied (its longest string value, where the
 * generators put a random prefix before any padding): windows with at least 8 distinct characters.
 */
function windowsOf(line: string): string[] {
  const out: string[] = [];
  const value = longestField(line).value.slice(0, 400);
  for (let i = 0; i + 16 <= value.length && out.length < 12; i++) {
    const w = value.slice(i, i + 16);
    if (new Set(w).size >= 8) {
      out.push(w);
      i += 3;
    }
  }
  return out;
}

/** The input a log line most likely copies from: the one whose request contains most of its windows. */
function attribute(line: string, candidates: Iterable<InFlight>): InFlight | undefined {
  const windows = windowsOf(line);
  // Long runs of one character (e.g. a padded header) are matched as runs.
  const runs = [...new Set([...line.matchAll(/(.)\1{63,}/g)].map((m) => (m[1] ?? '').repeat(64)))].slice(
    0,
    4,
  );
  let best: InFlight | undefined;
  let bestScore = 0;
  for (const c of candidates) {
    if (c.bytes < 1024) continue;
    c.text ??= Buffer.concat(c.probe.wire.chunks.map((x) => x.data)).toString('utf8');
    let score = 0;
    for (const w of windows) if (c.text.includes(w)) score++;
    for (const r of runs) if (c.text.includes(r)) score++;
    if (score > bestScore || (score === bestScore && best && c.bytes > best.bytes)) {
      best = c;
      bestScore = score;
    }
  }
  return bestScore > 0 ? best : undefined;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] ?? 0;
}

function mb(kib: number | undefined): number | undefined {
  return kib === undefined ? undefined : Math.round((kib / 1024) * 10) / 10;
}

/** Slope of a series in units per minute (least squares). */
function slopePerMinute(points: { t: number; v: number }[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mv = points.reduce((s, p) => s + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60_000;
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  const reportDir = dirname(opts.report);
  mkdirSync(reportDir, { recursive: true });
  // An earlier run's output in the same directory would mix with this one's.
  rmSync(join(reportDir, 'failures'), { recursive: true, force: true });
  for (const d of readdirSync(reportDir))
    if (/^gateway-\w{6}$/.test(d)) rmSync(join(reportDir, d), { recursive: true, force: true });
  const rec = new Recorder(reportDir, opts.seed);
  const inflight = new Set<InFlight>();
  /** Inputs that finished lately (a log line may arrive after its answer). */
  const recent: InFlight[] = [];
  /** Error lines of the gateway log, lately (they explain an `internal`). */
  const recentErrors: { at: number; code: string | undefined; text: string }[] = [];
  let attributed = 0;
  /** Message and copied field per message prefix, so each oversized line is parsed once per kind. */
  const logShapes = new Map<string, { msg: string; field: string }>();
  /** The gateway's last lines (a fatal error is plain text, not JSON). */
  const lastLines: string[] = [];
  const observed: Observed = { references: [], unauthenticated401: 0 };
  const referenceExamples = new Map<string, InFlight[]>();
  let logLinesOver = 0;
  let longestLogLine = 0;

  const started = Date.now();
  process.stdout.write(
    `gatehouse fuzz: seed ${opts.seed}, families ${opts.families.map((f) => f.name).join(',')}, ` +
      `${opts.durationS !== undefined ? `${opts.durationS} s` : ''}${opts.inputs !== undefined ? ` ${opts.inputs} inputs` : ''}, ` +
      `report ${opts.report}\n`,
  );
  /** What was in flight when the gateway died: one of these inputs (or several together) killed it. */
  let inflightAtExit: InFlight[] = [];
  /** Every gateway started (a new one after a crash), with its directory. */
  const instances: { gw: GatewayUnderTest; workDir: string }[] = [];
  const startInstance = async (): Promise<GatewayUnderTest> => {
    const dir = mkdtempSync(join(reportDir, 'gateway-'));
    const g = await GatewayUnderTest.start({
      workDir: dir,
      limits: DEFAULT_LIMITS,
      logFileCap: 256 * 1024 * 1024,
      onLogLine,
    });
    g.child.once('exit', () => {
      inflightAtExit = [...inflight, ...recent.slice(-4)];
    });
    instances.push({ gw: g, workDir: dir });
    process.stdout.write(`gateway pid ${g.pid} at ${g.url} (data ${g.dataDir})\n`);
    return g;
  };
  const onLogLine = (line: string): void => {
    lastLines.push(line.length > 2000 ? `${line.slice(0, 2000)}…` : line);
    if (lastLines.length > 60) lastLines.shift();
    if (line.length > longestLogLine) longestLogLine = line.length;
    if (line.includes('"level":50') || line.includes('"code":"internal"')) {
      recentErrors.push({ at: Date.now(), ...errorCause(line) });
      if (recentErrors.length > 100) recentErrors.shift();
    }
    if (line.length <= opts.maxLogLine) return;
    logLinesOver++;
    // Attribute to the input whose request the line copies (client strings copied into logs).
    const candidates = [...inflight, ...recent];
    let suspect = attributed < 400 ? attribute(line, candidates) : undefined;
    attributed++;
    // No distinctive text (e.g. one character repeated): the largest request about then.
    if (!suspect) {
      let largest: InFlight | undefined;
      for (const c of candidates) if (!largest || c.bytes > largest.bytes) largest = c;
      suspect = largest;
    }
    // Parsing every oversized line costs: each kind (message prefix) is parsed once.
    const prefix = /"msg":"([^"`]{0,40})/.exec(line)?.[1] ?? '?';
    let known = logShapes.get(prefix);
    if (!known) {
      const parsed = longestField(line);
      known = { msg: parsed.msg, field: parsed.field };
      if (logShapes.size < 200) logShapes.set(prefix, known);
    }
    const { msg, field } = known;
    rec.add(
      {
        oracle: 'log-line',
        family: suspect?.family ?? 'run',
        index: suspect?.index ?? -1,
        label: suspect?.label ?? '(no input in flight)',
        what: `log line of ${line.length} bytes: "${msg}" copies ${field} in full`,
        detail: `starts: ${line.slice(0, 600)}`,
        cause: `log "${msg}" copies ${field}`,
      },
      suspect ? { probe: suspect.probe } : undefined,
    );
  };
  let gw = await startInstance();
  let ctx = new FuzzContext(gw, opts.slackMs);

  if (opts.replay !== undefined) {
    const fam = opts.families[0] as Family;
    await fam.prepare?.(ctx);
    const rng = Rng.forInput(opts.seed, fam.name, opts.replay);
    const probes = await fam.generate(rng, ctx, opts.replay);
    let bad = 0;
    for (const [i, p] of probes.entries()) {
      const r = await exchange(gw.port, p.wire);
      const v = check(p, r, observed, fam.name, opts.replay);
      bad += v.length;
      process.stdout.write(
        `--- probe ${i}: ${p.label}\n${preview(Buffer.concat(p.wire.chunks.map((c) => c.data)))}\n` +
          `--- result\n${JSON.stringify(describeResult(r), null, 2)}\n--- oracles: ${v.length === 0 ? 'ok' : JSON.stringify(v, null, 2)}\n`,
      );
    }
    await sleep(300);
    if (!gw.alive()) {
      const e = gw.exited();
      process.stdout.write(
        `--- the gateway died (exit code ${e?.code}, signal ${e?.signal}); its last output:\n${lastLines.slice(-30).join('\n')}\n`,
      );
      return 1;
    }
    await gw.stop();
    return bad > 0 ? 1 : 0;
  }

  // RSS every 2 s.
  const rss: { t: number; kib: number; family: string }[] = [];
  let currentFamily = 'warmup';
  const sampler = setInterval(() => {
    const k = gw.rssKiB();
    if (k !== undefined) rss.push({ t: Date.now() - started, kib: k, family: currentFamily });
  }, 2000);

  // Warm-up: every session slot open, so baselines include them.
  for (let s = 0; s < 5; s++)
    await ctx.session(s).catch((e: unknown) => process.stdout.write(`warm-up: ${String(e)}\n`));
  let heapBase = await gw.memoryAfterGc();
  let rssBase = gw.rssKiB() ?? 0;
  process.stdout.write(
    `baseline: RSS ${mb(rssBase)} MiB, heap after GC ${heapBase ? Math.round(heapBase.heapUsed / 2 ** 20) : '?'} MiB\n`,
  );

  // Stall probes of every selected family, all at once at the start: the oracle is time to close.
  const stallResults: {
    family: string;
    label: string;
    heldMs: number;
    closed: boolean;
    answered: number;
    gatewayDied?: boolean;
  }[] = [];
  const stallRuns: Promise<void>[] = [];
  /** Launches the stall probes of every selected family against the current gateway. */
  const launchStalls = async (): Promise<void> => {
    if (!opts.stalls) return;
    for (const fam of opts.families) {
      if (!fam.stalls) continue;
      await fam.prepare?.(ctx);
      const list = await fam.stalls(ctx);
      const target = gw;
      list.forEach((sp, i) => {
        sp.wire.deadlineMs = opts.stallBoundMs;
        stallRuns.push(
          exchange(target.port, sp.wire).then(async (r) => {
            const held = r.ms;
            // A crash closes every connection: that is not the gateway closing a stalled request
            // (its exit is reported a moment after the sockets close).
            if (!r.timedOut) await sleep(1000);
            const died = !target.alive() && !target.stopRequested;
            if (died) stallsCutByCrash = true;
            stallResults.push({
              family: fam.name,
              label: sp.label,
              heldMs: held,
              closed: !r.timedOut && !died,
              answered: r.responses.length,
              ...(died ? { gatewayDied: true } : {}),
            });
            if (r.timedOut && !died) {
              rec.add(
                {
                  oracle: 'stall',
                  family: fam.name,
                  index: -1 - i,
                  label: `stall ${sp.label}`,
                  what: `held open ${Math.round(held / 1000)} s and still open (bound ${opts.stallBoundMs / 1000} s)`,
                },
                { probe: sp, result: r },
              );
            }
            for (const res of r.responses) {
              if (res.status >= 500) {
                rec.add(
                  {
                    oracle: 'http-5xx',
                    family: fam.name,
                    index: -1 - i,
                    label: `stall ${sp.label}`,
                    what: `HTTP ${res.status}`,
                  },
                  { probe: sp, result: r },
                );
              }
            }
          }),
        );
      });
    }
  };
  let stallsCutByCrash = false;
  await launchStalls();

  const stats: FamilyStats[] = [];
  let crashed = false;
  let restarts = 0;
  /** After a crash: verify the dead gateway's audit log, start a new gateway, and go on. */
  const recover = async (family: string): Promise<void> => {
    const dead = gw;
    await dead.stop();
    const v = await dead.auditVerify();
    if (v.code !== 0) {
      rec.add({
        oracle: 'audit-verify',
        family,
        index: -1,
        label: 'audit verify (after the crash)',
        what: v.output.split('\n')[0] ?? 'failed',
        detail: v.output.slice(0, 4000) + brokenRecords(dead, v.output),
      });
    }
    process.stdout.write(
      `audit verify of the crashed gateway: ${v.output.split('\n')[0]}; starting a new gateway\n`,
    );
    gw = await startInstance();
    ctx = new FuzzContext(gw, opts.slackMs);
    for (let s = 0; s < 5; s++) await ctx.session(s).catch(() => {});
    heapBase = await gw.memoryAfterGc();
    rssBase = gw.rssKiB() ?? 0;
    crashed = false;
    restarts++;
    // Stall probes the crash cut short are measured again on the new gateway.
    await sleep(1100);
    if (stallsCutByCrash) {
      stallsCutByCrash = false;
      await launchStalls();
    }
  };
  const recordCrash = (family: string): void => {
    const e = gw.exited();
    const suspects = inflightAtExit.filter((f) => f.family === family).sort((a, b) => b.sentAt - a.sentAt);
    const first = suspects[0];
    const listed = suspects
      .map(
        (f) =>
          `${f.family}#${f.index} ${f.label}: npm run fuzz -- --seed ${opts.seed} --families ${f.family} --replay ${f.index}`,
      )
      .join('\n  ');
    rec.add(
      {
        oracle: 'crash',
        family,
        index: first?.index ?? -1,
        label: first?.label ?? '?',
        what: `gateway died (exit code ${e?.code}, signal ${e?.signal}): ${lastLines
          .filter((l) => !l.startsWith('{'))
          .slice(-12)
          .join(' ')
          .replace(/\s+/g, ' ')
          .slice(0, 200)}`,
        detail: `inputs in flight or just answered (replay each to find the one):\n  ${listed}\nlast gateway output:\n${lastLines
          .slice(-30)
          .map((l) => l.slice(0, 400))
          .join('\n')}`,
      },
      first ? { probe: first.probe } : undefined,
    );
  };
  const perFamilyMs =
    opts.durationS !== undefined ? (opts.durationS * 1000) / opts.families.length : Number.POSITIVE_INFINITY;
  const perFamilyInputs =
    opts.inputs !== undefined
      ? Math.max(1, Math.floor(opts.inputs / opts.families.length))
      : Number.POSITIVE_INFINITY;

  for (const fam of opts.families) {
    if (crashed) await recover(fam.name);
    currentFamily = fam.name;
    await fam.prepare?.(ctx);
    const heapBefore = fam.measureRetention ? await gw.memoryAfterGc() : undefined;
    /** Retention is measured on one gateway: a restart in the middle of the family voids it. */
    let retentionValid = true;
    let bytesSent = 0;
    const famStart = Date.now();
    const until = famStart + perFamilyMs;
    let next = 0;
    let inputs = 0;
    let probes = 0;
    let setupErrors = 0;
    const before = rec.total;
    const statuses: Record<string, number> = {};
    const latencies: number[] = [];
    const timeByShape = new Map<string, { n: number; ms: number }>();
    process.stdout.write(`[${fam.name}] running\n`);
    ctx.gw.forgetTokens();
    const progress = setInterval(() => {
      process.stdout.write(
        `[${fam.name}] ${inputs} inputs, ${rec.total - before} failures, RSS ${mb(gw.rssKiB())} MiB, ${Math.round((Date.now() - famStart) / 1000)} s\n`,
      );
    }, 15_000);
    const worker = async (): Promise<void> => {
      while (!crashed && Date.now() < until && next < perFamilyInputs) {
        const index = next++;
        const rng = Rng.forInput(opts.seed, fam.name, index);
        let list: Probe[];
        try {
          list = await fam.generate(rng, ctx, index);
        } catch (err) {
          // Setting up the input failed (e.g. no session could be opened: capacity_exceeded is documented).
          // Counted, not an oracle failure; the health check at the end tells whether the gateway recovered.
          if (!gw.alive()) break;
          setupErrors++;
          if (setupErrors <= 5)
            process.stdout.write(
              `[${fam.name}] input ${index}: setup failed: ${String(err).slice(0, 200)}\n`,
            );
          await sleep(200);
          continue;
        }
        const flights = list.map((probe) => ({
          family: fam.name,
          index,
          label: probe.label,
          probe,
          bytes: probe.wire.chunks.reduce((s, c) => s + c.data.length, 0),
          sentAt: Date.now(),
        }));
        for (const f of flights) {
          inflight.add(f);
          bytesSent += f.bytes;
        }
        const sentAt = Date.now();
        const results = await Promise.all(list.map((p) => exchange(gw.port, p.wire)));
        for (const f of flights) {
          inflight.delete(f);
          recent.push(f);
          if (recent.length > 48) recent.shift();
        }
        // A connection cut without an answer may be the gateway dying: its exit is reported a moment later,
        // and then these inputs are part of the crash, not failures of their own.
        if (results.some((r) => r.responses.length === 0 && r.closedByServer)) await sleep(300);
        if (!gw.alive()) {
          if (!crashed) {
            crashed = true;
            recordCrash(fam.name);
          }
          break;
        }
        inputs++;
        {
          const k = (list[0]?.label ?? '?').split(/[ [(]/)[0] ?? '?';
          const e = timeByShape.get(k) ?? { n: 0, ms: 0 };
          e.n++;
          e.ms += Date.now() - sentAt;
          timeByShape.set(k, e);
        }
        for (const [i, probe] of list.entries()) {
          const r = results[i] as WireResult;
          probes++;
          latencies.push(r.ms);
          for (const res of r.responses) statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          if (r.timedOut) statuses.timeout = (statuses.timeout ?? 0) + 1;
          else if (r.responses.length === 0) statuses.closed = (statuses.closed ?? 0) + 1;
          const refsBefore = observed.references.length;
          const violations: Violation[] = check(probe, r, observed, fam.name, index);
          if (observed.references.length > refsBefore) {
            const k = shape(probe.label);
            const ex = referenceExamples.get(k) ?? [];
            if (ex.length < 3) ex.push(flights[i] as InFlight);
            referenceExamples.set(k, ex);
            for (const ref of observed.references.slice(refsBefore)) {
              ref.label = probe.label;
              ref.instance = instances.length - 1;
            }
          }
          for (const v of violations) {
            let detail = v.detail;
            let cause: string | undefined = v.cause;
            let fromLog: string | undefined;
            // (A violation that names its own cause, e.g. an upstream's error passed through, keeps it.)
            if (
              !v.cause &&
              (v.oracle === 'internal' || v.oracle === 'audit-unavailable' || v.oracle === 'http-5xx')
            ) {
              // What the gateway logged meanwhile (its errors carry the stage and the private detail).
              await sleep(50);
              const want =
                v.oracle === 'internal'
                  ? 'internal'
                  : v.oracle === 'audit-unavailable'
                    ? 'audit_unavailable'
                    : undefined;
              const logged = recentErrors.filter(
                (e) => e.at >= sentAt - 5 && (want === undefined || e.code === want || e.code === undefined),
              );
              fromLog = logged[0]?.text;
              cause = fromLog ?? cause;
              if (logged.length > 0)
                detail = `${detail ? `${detail}\n` : ''}gateway log: ${logged
                  .slice(0, 3)
                  .map((e) => e.text)
                  .join(' | ')}`;
            }
            rec.add(
              {
                oracle: v.oracle,
                family: fam.name,
                index,
                label: probe.label,
                what: fromLog ? `${v.what}; gateway log: ${fromLog.slice(0, 160)}` : v.what,
                ...(detail ? { detail } : {}),
                ...(cause ? { cause } : {}),
              },
              { probe, result: r },
            );
          }
          // A session that ended (DELETE among the inputs, or refused) is opened again for the next input.
          if (probe.slot !== undefined) {
            const lost = r.responses.some((x) =>
              /"gatehouse":"(session_not_found|session_closed|grant_ended)"/.test(x.body.toString('latin1')),
            );
            if (lost) await ctx.checkSlot(probe.slot, probe.sessionId);
          }
          await probe.after?.(r).catch(() => {});
        }
        if (!gw.alive() && !crashed) {
          crashed = true;
          recordCrash(fam.name);
        }
      }
    };
    let familyRestarts = 0;
    for (;;) {
      await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
      // A crash ends this gateway, not the family: a new one takes the rest of the family's budget.
      if (crashed && familyRestarts < 3 && Date.now() < until - 5000 && next < perFamilyInputs) {
        familyRestarts++;
        await recover(fam.name);
        retentionValid = false;
        continue;
      }
      break;
    }
    clearInterval(progress);
    const verify = crashed ? { code: null, output: 'not run (crashed)' } : await gw.auditVerify();
    if (verify.code !== 0 && !crashed) {
      rec.add({
        oracle: 'audit-verify',
        family: fam.name,
        index: -1,
        label: 'audit verify (live, after the family)',
        what: verify.output.split('\n')[0] ?? 'failed',
        detail: verify.output.slice(0, 4000) + brokenRecords(gw, verify.output),
      });
    }
    const mem = await gw.memoryAfterGc();
    let retainedMb: number | undefined;
    if (heapBefore && mem && retentionValid) {
      const retained = mem.heapUsed - heapBefore.heapUsed;
      retainedMb = Math.round(retained / 2 ** 20);
      // Up to 16 MiB is noise (caches warming up); beyond, a quarter of what was sent staying behind is a leak.
      if (retained > 16 * 2 ** 20 && retained > bytesSent / 4) {
        rec.add({
          oracle: 'heap',
          family: fam.name,
          index: -1,
          label: 'refused requests with large distinct strings',
          what: `heap after GC grew ${retainedMb} MiB over ${inputs} refused requests carrying ${Math.round(bytesSent / 2 ** 20)} MiB of distinct strings`,
          cause: 'memory retained per refused request',
        });
      }
    }
    latencies.sort((a, b) => a - b);
    const s: FamilyStats = {
      name: fam.name,
      inputs,
      probes,
      failures: rec.total - before,
      setupErrors,
      seconds: Math.round((Date.now() - famStart) / 100) / 10,
      statuses,
      latencyMsP50: percentile(latencies, 0.5),
      latencyMsP99: percentile(latencies, 0.99),
      latencyMsMax: latencies[latencies.length - 1] ?? 0,
      timeByKind: Object.fromEntries([...timeByShape].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8)),
      heapAfterGcMb: mem ? Math.round(mem.heapUsed / 2 ** 20) : undefined,
      ...(retainedMb !== undefined
        ? { heapRetainedMb: retainedMb, sentMb: Math.round(bytesSent / 2 ** 20) }
        : {}),
      rssMb: mb(gw.rssKiB()),
      auditVerify: verify.code === 0 ? 'ok' : (verify.output.split('\n')[0] ?? 'failed'),
    };
    stats.push(s);
    process.stdout.write(
      `[${fam.name}] done: ${inputs} inputs in ${s.seconds} s, ${s.failures} failures, heap ${s.heapAfterGcMb} MiB, RSS ${s.rssMb} MiB, audit verify ${s.auditVerify}\n`,
    );
  }

  currentFamily = 'stalls';
  if (stallRuns.length > 0) {
    process.stdout.write(
      `waiting for ${stallRuns.length} stall probes (bound ${opts.stallBoundMs / 1000} s)\n`,
    );
  }
  await Promise.all(stallRuns);

  // A well-behaved client is still served.
  if (gw.alive()) {
    const health = await healthCheck(ctx);
    if (health) rec.add({ oracle: 'health', family: 'run', index: -1, label: 'health check', what: health });
  }
  const heapEnd = await gw.memoryAfterGc();
  const rssEnd = gw.rssKiB() ?? 0;
  clearInterval(sampler);
  const stop = await gw.stop();
  if (!crashed && (stop.code !== 0 || !gw.stopRequested)) {
    rec.add({
      oracle: 'crash',
      family: 'run',
      index: -1,
      label: 'SIGTERM',
      what: `gateway exited with code ${stop.code}, signal ${stop.signal} on SIGTERM`,
    });
  }

  // Run-level oracles.
  const rssMax = Math.max(rssBase, ...rss.map((x) => x.kib));
  const half = rss.filter((x) => x.t >= (rss[rss.length - 1]?.t ?? 0) / 2);
  const rssSlope = slopePerMinute(half.map((x) => ({ t: x.t, v: x.kib / 1024 })));
  if (rssMax > opts.rssMaxMb * 1024) {
    rec.add({
      oracle: 'rss',
      family: 'run',
      index: -1,
      label: 'RSS bound',
      what: `RSS reached ${mb(rssMax)} MiB (bound ${opts.rssMaxMb} MiB)`,
      detail: rssGrowthByFamily(rss),
    });
  }
  if (rssEnd - rssBase > opts.rssGrowthMb * 1024) {
    rec.add({
      oracle: 'rss',
      family: 'run',
      index: -1,
      label: 'RSS growth',
      what: `RSS grew ${mb(rssEnd - rssBase)} MiB (bound ${opts.rssGrowthMb} MiB)`,
      detail: rssGrowthByFamily(rss),
    });
  }
  if (heapBase && heapEnd && heapEnd.heapUsed - heapBase.heapUsed > opts.heapGrowthMb * 2 ** 20) {
    rec.add({
      oracle: 'heap',
      family: 'run',
      index: -1,
      label: 'heap growth',
      what: `heap after GC grew ${Math.round((heapEnd.heapUsed - heapBase.heapUsed) / 2 ** 20)} MiB (bound ${opts.heapGrowthMb} MiB)`,
      detail: `per family (heap after GC at its end, MiB): ${stats.map((s) => `${s.name} ${s.heapAfterGcMb}`).join(', ')}`,
    });
  }
  const finalVerify = await gw.auditVerify();
  if (finalVerify.code !== 0) {
    rec.add({
      oracle: 'audit-verify',
      family: 'run',
      index: -1,
      label: 'audit verify (after stop)',
      what: finalVerify.output.split('\n')[0] ?? 'failed',
      detail: finalVerify.output.slice(0, 4000) + brokenRecords(gw, finalVerify.output),
    });
  }
  // References and the cost of unauthenticated requests, from the audit segments.
  const written = new Set<string>();
  let authFailBytes = 0;
  let authFailRecords = 0;
  let biggestAuthFail = 0;
  let auditRecords = 0;
  let auditBytes = 0;
  let biggestRecord = 0;
  const allLines = function* (): Generator<string> {
    for (const i of instances) yield* i.gw.auditLines();
  };
  for (const line of allLines()) {
    auditRecords++;
    auditBytes += line.length + 1;
    if (line.length > biggestRecord) biggestRecord = line.length;
    for (const m of line.matchAll(/reference (dec_[A-Za-z0-9_-]+)/g)) if (m[1]) written.add(m[1]);
    if (line.includes('"type":"authn.failure"') && !line.includes('"principal":')) {
      authFailRecords++;
      authFailBytes += line.length + 1;
      if (line.length > biggestAuthFail) biggestAuthFail = line.length;
    }
  }
  const missingByLabel = new Map<
    string,
    { count: number; first: { reference: string; family: string; index: number; label?: string } }
  >();
  for (const r of observed.references) {
    if (written.has(r.reference)) continue;
    const k = shape(r.label ?? '?');
    const e = missingByLabel.get(k);
    if (e) e.count++;
    else missingByLabel.set(k, { count: 1, first: r });
  }
  for (const [k, e] of missingByLabel) {
    const ex = referenceExamples.get(k)?.[0];
    for (let i = 0; i < e.count; i++) {
      rec.add(
        {
          oracle: 'unwritten-reference',
          family: e.first.family,
          index: ex?.index ?? e.first.index,
          label: e.first.label ?? '?',
          what: 'denial answered with a data.reference that no audit record carries',
          detail: `reference ${e.first.reference} (one of ${e.count} for this input shape)`,
        },
        ex ? { probe: ex.probe } : undefined,
      );
    }
  }
  const perUnauth = observed.unauthenticated401 > 0 ? authFailBytes / observed.unauthenticated401 : 0;
  if (observed.unauthenticated401 > 0 && perUnauth > opts.auditBytesPer401) {
    rec.add({
      oracle: 'audit-amplification',
      family: 'run',
      index: -1,
      label: 'unauthenticated 401s',
      what: `${observed.unauthenticated401} unauthenticated 401s wrote ${authFailRecords} authn.failure records, ${Math.round(perUnauth)} bytes per 401 (bound ${opts.auditBytesPer401}); largest ${biggestAuthFail} bytes`,
    });
  }

  // Summary.
  const summary = {
    seed: opts.seed,
    families: opts.families.map((f) => f.name),
    seconds: Math.round((Date.now() - started) / 1000),
    limits: DEFAULT_LIMITS,
    perFamily: stats,
    failuresPerOracle: Object.fromEntries(
      Object.keys(ORACLES).map((o) => [o, rec.perOracle.get(o as OracleName) ?? 0]),
    ),
    failures: rec.total,
    rss: {
      baselineMb: mb(rssBase),
      endMb: mb(rssEnd),
      maxMb: mb(rssMax),
      slopeMbPerMinLastHalf: Math.round(rssSlope * 10) / 10,
      series: rss.map((x) => [Math.round(x.t / 1000), mb(x.kib), x.family]),
    },
    heapAfterGc: {
      baselineMb: heapBase ? Math.round(heapBase.heapUsed / 2 ** 20) : undefined,
      endMb: heapEnd ? Math.round(heapEnd.heapUsed / 2 ** 20) : undefined,
    },
    stalls: stallResults.sort((a, b) => a.family.localeCompare(b.family) || a.label.localeCompare(b.label)),
    logs: {
      bytes: instances.reduce((n, i) => n + i.gw.stderrBytes, 0),
      lines: instances.reduce((n, i) => n + i.gw.stderrLines, 0),
      longestLine: longestLogLine,
      linesOverBound: logLinesOver,
    },
    audit: {
      records: auditRecords,
      bytes: auditBytes,
      biggestRecord,
      unauthenticated401: observed.unauthenticated401,
      authnFailureRecords: authFailRecords,
      authnFailureBytes: authFailBytes,
      referencesQuoted: observed.references.length,
      referencesMissing: [...missingByLabel.values()].reduce((s, e) => s + e.count, 0),
      verify: finalVerify.output.split('\n')[0],
      verifyExit: finalVerify.code,
    },
    sessionsOpened: ctx.sessionsOpened,
    gatewayRestartsAfterCrash: restarts,
    gateway: {
      exit: stop,
      instances: instances.map((i) => ({ dataDir: i.gw.dataDir, log: join(i.workDir, 'gateway.log') })),
    },
    findings: [...rec.groups.values()].map((g) => ({
      oracle: g.oracle,
      family: g.family,
      label: g.label,
      what: g.what,
      count: g.count,
      inputShapes: g.labels.size,
      examples: g.examples.map((e) => ({ index: e.index, label: e.label, file: e.file, detail: e.detail })),
    })),
  };
  writeFileSync(opts.report, `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(formatSummary(summary, stats, rec));
  return rec.total > 0 ? 1 : 0;
}

/** The message of a log line and the field that holds its longest string (what was copied). */
function longestField(line: string): { msg: string; field: string; value: string } {
  try {
    const d = JSON.parse(line) as Record<string, unknown>;
    let best = '';
    let bestLen = -1;
    let value = '';
    const walk = (v: unknown, path: string): void => {
      if (typeof v === 'string') {
        if (v.length > bestLen) {
          best = path;
          bestLen = v.length;
          value = v;
        }
      } else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
      }
    };
    walk(d, '');
    const msg = String(d.msg ?? '?')
      .replace(/`[^`]*`?/g, '`…`')
      .slice(0, 80);
    return { msg, field: best || '?', value };
  } catch {
    return { msg: '?', field: '?', value: line };
  }
}

/** Stage, code and message of a gateway error log line. */
function errorCause(line: string): { code: string | undefined; text: string } {
  try {
    const d = JSON.parse(line) as {
      code?: string;
      stage?: string;
      detail?: string;
      msg?: string;
      err?: { type?: string; message?: string } | string;
    };
    const err =
      typeof d.err === 'string'
        ? d.err
        : d.err?.message
          ? `${d.err.type ?? 'Error'}: ${d.err.message}`
          : undefined;
    const what = (d.detail ?? err ?? d.msg ?? '').split('\n')[0]?.slice(0, 240) ?? '';
    return {
      code: d.code,
      text: `${d.stage ? `stage ${d.stage}: ` : d.msg && err ? `${d.msg}: ` : ''}${what}`,
    };
  } catch {
    return { code: undefined, text: line.slice(0, 240) };
  }
}

/** The records a verify output names (`seq N`), for the failure's detail. */
function brokenRecords(gw: GatewayUnderTest, output: string): string {
  const seqs = new Set([...output.matchAll(/seq (\d+)(?: \(event|:)/g)].map((m) => Number(m[1])));
  if (seqs.size === 0) return '';
  let n = 0;
  let out = '\nrecords named:';
  for (const line of gw.auditLines()) {
    n++;
    if (seqs.has(n)) out += `\n  seq ${n}: ${line.slice(0, 1500)}`;
  }
  return out;
}

function rssGrowthByFamily(series: { t: number; kib: number; family: string }[]): string {
  const by = new Map<string, { first: number; last: number }>();
  for (const x of series) {
    const e = by.get(x.family);
    if (!e) by.set(x.family, { first: x.kib, last: x.kib });
    else e.last = x.kib;
  }
  return `RSS per family (MiB, first → last sample): ${[...by].map(([f, e]) => `${f} ${mb(e.first)} → ${mb(e.last)}`).join(', ')}`;
}

/** Opens a fresh session and calls a tool; undefined when that works, else what went wrong. */
async function healthCheck(ctx: FuzzContext): Promise<string | undefined> {
  try {
    ctx.gw.forgetTokens();
    const s = await ctx.open('agent', '2025-11-25');
    const token = await ctx.token('agent');
    const res = await fetch(ctx.gw.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': s.id,
        'mcp-protocol-version': s.protocolVersion,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'everything__echo', arguments: { message: 'health' } },
      }),
      signal: AbortSignal.timeout(ctx.mcpDeadline),
    });
    const text = await res.text();
    await ctx.deleteSession(s.id, 'agent');
    if (res.status !== 200 || !text.includes('Echo: health'))
      return `tools/call answered ${res.status}: ${text.slice(0, 300)}`;
    return undefined;
  } catch (err) {
    return `health check failed: ${String(err).slice(0, 300)}`;
  }
}

function pad(s: string | number, n: number): string {
  const t = String(s);
  return t.length >= n ? t : t + ' '.repeat(n - t.length);
}

function formatSummary(
  summary: {
    seed: number;
    seconds: number;
    rss: {
      baselineMb: number | undefined;
      endMb: number | undefined;
      maxMb: number | undefined;
      slopeMbPerMinLastHalf: number;
    };
    heapAfterGc: { baselineMb: number | undefined; endMb: number | undefined };
    audit: { verify: string | undefined; verifyExit: number | null; records: number };
    stalls: { family: string; label: string; heldMs: number; closed: boolean; gatewayDied?: boolean }[];
  },
  stats: FamilyStats[],
  rec: Recorder,
): string {
  const lines: string[] = [];
  lines.push('', `=== gatehouse fuzz summary (seed ${summary.seed}, ${summary.seconds} s) ===`, '');
  lines.push(
    `${pad('family', 10)}${pad('inputs', 10)}${pad('probes', 10)}${pad('failures', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('max ms', 9)}statuses`,
  );
  let total = 0;
  for (const s of stats) {
    total += s.inputs;
    const st = Object.entries(s.statuses)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
    lines.push(
      `${pad(s.name, 10)}${pad(s.inputs, 10)}${pad(s.probes, 10)}${pad(s.failures, 10)}${pad(s.latencyMsP50, 9)}${pad(s.latencyMsP99, 9)}${pad(s.latencyMsMax, 9)}${st}`,
    );
  }
  lines.push(`${pad('total', 10)}${total}`, '');
  lines.push('failures per oracle:');
  for (const o of Object.keys(ORACLES) as OracleName[])
    lines.push(`  ${pad(o, 26)}${rec.perOracle.get(o) ?? 0}`);
  lines.push('');
  lines.push(
    `RSS: baseline ${summary.rss.baselineMb} MiB, end ${summary.rss.endMb} MiB, max ${summary.rss.maxMb} MiB, slope (last half) ${summary.rss.slopeMbPerMinLastHalf} MiB/min`,
  );
  lines.push(
    `heap after GC: baseline ${summary.heapAfterGc.baselineMb} MiB, end ${summary.heapAfterGc.endMb} MiB`,
  );
  if (summary.stalls.length > 0) {
    lines.push('partial requests (held until the gateway closed them):');
    for (const s of summary.stalls) {
      lines.push(
        `  ${pad(s.family, 8)}${pad(s.label, 60)}${s.gatewayDied ? `(the gateway died after ${(s.heldMs / 1000).toFixed(0)} s)` : s.closed ? `${(s.heldMs / 1000).toFixed(1)} s` : `> ${(s.heldMs / 1000).toFixed(0)} s (still open)`}`,
      );
    }
  }
  lines.push(
    `audit verify: ${summary.audit.verifyExit === 0 ? 'ok' : 'FAILED'} (${summary.audit.verify}); ${summary.audit.records} records`,
  );
  if (rec.groups.size > 0) {
    lines.push('', `findings (${rec.groups.size} distinct, ${rec.total} failures):`);
    const groups = [...rec.groups.values()].sort(
      (a, b) => a.family.localeCompare(b.family) || a.oracle.localeCompare(b.oracle),
    );
    for (const g of groups) {
      const more = g.labels.size > 1 ? ` (+${g.labels.size - 1} other input shapes)` : '';
      lines.push(
        `  [${g.oracle}] ${g.family}: ${g.label.slice(0, 70)}${more} → ${g.what.slice(0, 200)} (x${g.count}) ${g.examples[0]?.file ?? ''}`,
      );
    }
  }
  lines.push(
    '',
    rec.total === 0 ? 'RESULT: ok (no oracle failed)' : `RESULT: FAILED (${rec.total} failures)`,
    '',
  );
  return lines.join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
