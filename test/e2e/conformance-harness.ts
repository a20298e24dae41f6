/**
 * Runs the official MCP conformance suite (pinned CLI) against a server URL and
 * reduces its output to per-scenario verdicts.
 *
 * The CLI is run through npx in a fresh temp directory so nothing it writes
 * lands in the repository; its checks.json files are the source of truth.
 * A scenario fails when any of its checks has status FAILURE; WARNING and
 * INFO checks never fail a scenario (same rule as the CLI's own summary).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** Pinned so a new suite release cannot change verdicts under us. */
export const CONFORMANCE_PACKAGE = '@modelcontextprotocol/conformance@0.1.16';
/** The suite that knows MCP 2026-07-28 (`--requirements`), pinned likewise (test/e2e/conformance-2026.test.ts). */
export const CONFORMANCE_ALPHA_PACKAGE = '@modelcontextprotocol/conformance@0.2.0-alpha.12';
/** The 0.1.16 CLI requires Node >= 22; npx supplies it without touching the host Node. */
const NODE_PACKAGE = 'node@22';

/** Whole-suite bound: a full run takes seconds, the first npx download can take a minute or two. */
const DEFAULT_TIMEOUT_MS = 8 * 60_000;
/** Keep only the tail of CLI output: enough to explain a crash, bounded in memory. */
const MAX_CAPTURED_CHARS = 256 * 1024;

export interface ConformanceResult {
  /** Scenario names whose checks had no FAILURE, sorted. */
  passed: string[];
  /** Scenario names with at least one FAILURE check, sorted. */
  failed: string[];
  /** Every scenario, mapped to its FAILURE and WARNING checks as `STATUS check-id: message`. */
  details: Record<string, string[]>;
  /** Scenarios run but not scored for the `--requirements` revision (extensions, pending), sorted. */
  notScored: string[];
}

export interface ConformanceRunOptions {
  /**
   * Extra HTTP headers for every request (e.g. an Authorization header for an
   * authenticating gateway). Conformance 0.1.16 has no option to pass headers
   * (`conformance server --help` lists only --url, --scenario, --suite,
   * --expected-failures, --output-dir, --spec-version, --verbose), so the
   * suite talks to a loopback forwarder that adds them, like a reverse proxy
   * in front of the gateway would.
   */
  headers?: Record<string, string>;
  /** Kill the CLI after this long. */
  timeoutMs?: number;
  /** Suite to run ("all" by default: active plus pending scenarios). */
  suite?: string;
  /** The CLI package (default {@link CONFORMANCE_PACKAGE}). */
  package?: string;
  /** `--requirements <revision>` (alpha CLI): exactly the scenarios a revision requires; replaces suite. */
  requirements?: string;
}

const CheckSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  description: z.string().optional(),
  errorMessage: z.string().optional(),
});
const ChecksFileSchema = z.array(CheckSchema);
type Check = z.infer<typeof CheckSchema>;

/** Result directories are named `server-<scenario>-<ISO timestamp with : and . replaced by ->`. */
const RESULT_DIR_PATTERN = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
/** Summary lines printed by the CLI, e.g. `✗ tools-list: 0 passed, 1 failed`. */
const SUMMARY_LINE_PATTERN = /^[✓✗] (\S+): \d+ passed, (\d+) failed$/gmu;

export async function runConformanceSuite(
  url: string,
  opts: ConformanceRunOptions = {},
): Promise<ConformanceResult> {
  if (opts.headers && Object.keys(opts.headers).length > 0) {
    const shim = await startHeaderShim(url, opts.headers);
    try {
      return await runConformanceSuite(shim.url, { ...opts, headers: undefined });
    } finally {
      await shim.close();
    }
  }
  const workDir = await mkdtemp(join(tmpdir(), 'gatehouse-conformance-'));
  try {
    const resultsDir = join(workDir, 'results');
    const args = [
      '-y',
      '-p',
      NODE_PACKAGE,
      '-p',
      opts.package ?? CONFORMANCE_PACKAGE,
      'conformance',
      'server',
    ];
    args.push('--url', url, '--output-dir', resultsDir);
    if (opts.requirements !== undefined) args.push('--requirements', opts.requirements);
    else args.push('--suite', opts.suite ?? 'all');
    const run = await runCli(args, workDir, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const checks = await readScenarioChecks(resultsDir);
    const summarized = parseSummary(run.stdout);
    if (checks.size === 0 && summarized.size === 0) {
      throw new Error(`conformance cli produced no results (exit ${run.exit}):\n${run.stderr || run.stdout}`);
    }
    return { ...toResult(checks, summarized), notScored: parseNotScored(run.stdout) };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

interface CliRun {
  exit: string;
  stdout: string;
  stderr: string;
}

/**
 * Spawns the CLI in its own process group so a timeout can kill npx and the
 * node@22 child it starts together. A non-zero exit is normal (it means some
 * scenario failed); only a timeout or spawn error rejects.
 */
function runCli(args: string[], cwd: string, timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('npx', args, {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = keepTail(stdout + chunk.toString('utf8'));
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = keepTail(stderr + chunk.toString('utf8'));
    });
    const timer = setTimeout(() => {
      killGroup(child.pid);
      reject(
        new Error(`conformance cli timed out after ${timeoutMs} ms; output tail:\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not start npx: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ exit: signal ?? String(code), stdout, stderr });
    });
  });
}

function keepTail(text: string): string {
  return text.length > MAX_CAPTURED_CHARS ? text.slice(-MAX_CAPTURED_CHARS) : text;
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    // Negative pid = the whole process group started by spawn(detached).
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Reads every `results/server-<scenario>-<ts>/checks.json` into scenario -> checks. */
async function readScenarioChecks(resultsDir: string): Promise<Map<string, Check[]>> {
  const byScenario = new Map<string, Check[]>();
  let entries: string[];
  try {
    entries = await readdir(resultsDir);
  } catch {
    return byScenario;
  }
  for (const entry of entries.sort()) {
    const scenario = RESULT_DIR_PATTERN.exec(entry)?.[1];
    if (scenario === undefined) continue;
    let text: string;
    try {
      text = await readFile(join(resultsDir, entry, 'checks.json'), 'utf8');
    } catch {
      // The CLI made the scenario's directory and crashed before writing its checks: a failure.
      byScenario.set(scenario, [
        { id: 'results', status: 'FAILURE', errorMessage: 'no checks.json written (the CLI crashed)' },
      ]);
      continue;
    }
    byScenario.set(scenario, ChecksFileSchema.parse(JSON.parse(text) as unknown));
  }
  return byScenario;
}

/** The alpha CLI's `Not scored for <rev>: …` block: `  ✗ name (reason)` lines. */
function parseNotScored(stdout: string): string[] {
  const at = stdout.indexOf('Not scored for ');
  if (at < 0) return [];
  const names: string[] = [];
  for (const line of stdout.slice(at).split('\n').slice(1)) {
    const m = /^\s+[✓✗] (\S+) \(/u.exec(line);
    if (!m) break;
    if (m[1] !== undefined) names.push(m[1]);
  }
  return names.sort();
}

/** scenario -> number of failed checks, from the CLI's `=== SUMMARY ===` block. */
function parseSummary(stdout: string): Map<string, number> {
  const summary = new Map<string, number>();
  for (const match of stdout.matchAll(SUMMARY_LINE_PATTERN)) {
    const [, scenario, failed] = match;
    if (scenario !== undefined && failed !== undefined) summary.set(scenario, Number(failed));
  }
  return summary;
}

/**
 * checks.json decides verdicts; the stdout summary only adds scenarios the
 * CLI ran but wrote no file for (e.g. it crashed mid-scenario), which count
 * as failed so they cannot slip through.
 */
function toResult(
  checks: Map<string, Check[]>,
  summarized: Map<string, number>,
): Omit<ConformanceResult, 'notScored'> {
  const details: Record<string, string[]> = {};
  const failed = new Set<string>();
  for (const [scenario, scenarioChecks] of checks) {
    details[scenario] = describeProblems(scenarioChecks);
    if (scenarioChecks.some((check) => check.status === 'FAILURE')) failed.add(scenario);
  }
  for (const [scenario, failedCount] of summarized) {
    if (checks.has(scenario)) continue;
    details[scenario] = [`FAILURE results: no checks.json written (summary reported ${failedCount} failed)`];
    failed.add(scenario);
  }
  const all = Object.keys(details).sort();
  return { passed: all.filter((s) => !failed.has(s)), failed: all.filter((s) => failed.has(s)), details };
}

function describeProblems(checks: Check[]): string[] {
  return checks
    .filter((check) => check.status === 'FAILURE' || check.status === 'WARNING')
    .map((check) => `${check.status} ${check.id}: ${check.errorMessage ?? check.description ?? ''}`);
}

/** A short block for logs: counts, then each failing scenario with its failure messages. */
export function formatSummary(label: string, result: ConformanceResult): string {
  const total = result.passed.length + result.failed.length;
  const lines = [`[${label}] conformance: ${result.passed.length}/${total} scenarios passed`];
  for (const scenario of result.failed) {
    lines.push(`  FAILED ${scenario}`);
    for (const problem of result.details[scenario] ?? []) {
      if (problem.startsWith('FAILURE')) lines.push(`    ${problem}`);
    }
  }
  return lines.join('\n');
}

/**
 * A loopback forwarder that adds headers to every request. A loopback Host is
 * rewritten to the target's (as a reverse proxy does); a foreign Host is kept,
 * so the DNS-rebinding scenario still reaches the gateway's own check.
 */
async function startHeaderShim(
  target: string,
  headers: Record<string, string>,
): Promise<{ url: string; close(): Promise<void> }> {
  const { createServer, request } = await import('node:http');
  const t = new URL(target);
  const server = createServer((req, res) => {
    const h: Record<string, string | string[] | undefined> = { ...req.headers, ...headers };
    const host = req.headers.host ?? '';
    if (/^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(host)) h.host = t.host;
    const origin = req.headers.origin;
    if (origin && /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(origin)) h.origin = t.origin;
    const up = request(t, { method: req.method, path: req.url, headers: h }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.once('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}${t.pathname}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const FIXTURE_FILE = fileURLToPath(new URL('../fixtures/conformance-server.ts', import.meta.url));
/** `--import tsx` is resolved from the process cwd, so the fixture runs from the repo root. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The conformance fixture as a stdio upstream behind a Gatehouse started in this process, every call
 * allowed (the suite checks protocol behaviour, not policy), its tools trusted on first sight, called by
 * their bare names. With `authenticated` the gateway trusts a local "company IdP" and `headers` carry
 * a token for it; without it, auth.mode is none. `upstream` adds to the fixture's upstream config.
 * `run` gets the gateway's URL and those headers; everything is stopped and removed afterwards.
 */
export async function withFixtureGateway<T>(
  opts: { authenticated: boolean; upstream?: Record<string, unknown> },
  run: (url: string, headers: Record<string, string> | undefined) => Promise<T>,
): Promise<T> {
  // Imported lazily so a direct run still reports if the gateway fails to load.
  const { startGateway } = await import('../../src/index.ts');
  const { startCompanyIdp } = await import('../fixtures/company-idp.ts');
  const resources: string[] = [];
  const idp = opts.authenticated
    ? await startCompanyIdp({ allowedResources: resources, scopes: 'mcp' })
    : undefined;
  const dataDir = await mkdtemp(join(tmpdir(), 'gatehouse-conformance-data-'));
  const policyFile = join(dataDir, 'allow-all.cedar');
  await writeFile(policyFile, 'permit (principal, action, resource);\n');
  try {
    const gateway = await startGateway({
      config: {
        server: { host: '127.0.0.1', port: 0 },
        policy: { files: [policyFile] },
        // Keep test output readable; warnings and errors still reach stderr.
        logging: { level: 'warn' },
        // The fixture's tools are trusted on first sight (the default, quarantine, holds them for an admin).
        pinning: { newTools: 'trust' },
        auth: idp ? { mode: 'external', external: { issuer: idp.issuer } } : { mode: 'none' },
        upstreams: {
          conf: {
            type: 'stdio',
            command: process.execPath,
            // Absolute path: the gateway's working directory is not ours to assume.
            args: ['--import', 'tsx', FIXTURE_FILE, '--stdio'],
            cwd: REPO_ROOT,
            // The suite calls tools and prompts by their bare names.
            namespace: false,
            ...opts.upstream,
          },
        },
      },
      dataDir,
    });
    resources.push(gateway.url);
    try {
      const headers = idp
        ? { authorization: `Bearer ${await idp.token({ resource: gateway.url, scope: 'mcp' })}` }
        : undefined;
      return await run(gateway.url, headers);
    } finally {
      await gateway.close();
    }
  } finally {
    await idp?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
