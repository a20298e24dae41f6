// `npm run bench`: throughput/latency of Gatehouse vs a bare HTTP hop and vs mcp-proxy.
// See bench/README.md. Env: BENCH_RUNS (3), BENCH_SECONDS (3), BENCH_WARMUP (1),
// BENCH_SCENARIOS ("1:1,64:64,64:1" as concurrency:sessions), BENCH_TARGETS (comma list).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RUNTIME_FLAGS } from '../src/cli/runtime-flags.ts';
import { BENCH_CLIENT, benchGatewayYaml, startArgs } from './gateway-config.ts';
import type { LoadResult } from './load.ts';
import { formatSummary, summarizeHeapProfile, summarizeProfile } from './profile.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const RUNS = envInt('BENCH_RUNS', 3);
const SECONDS = envInt('BENCH_SECONDS', 3);
const WARMUP = envInt('BENCH_WARMUP', 1);
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? '1:1,64:64,64:1').split(',').map((s) => {
  const [c, sess] = s.split(':').map(Number);
  if (!c || !sess) throw new Error(`bad BENCH_SCENARIOS entry: ${s}`);
  return { c, s: sess, key: `c${c}_s${sess}` };
});
const ALL_TARGETS = [
  'direct',
  'bare_hop',
  'gatehouse_http',
  'mcp_proxy_stdio',
  'gatehouse_stdio',
  'gatehouse_stdio_principal',
  'gatehouse_stdio_shared',
  'gatehouse_http_baseline',
  // The same gateway config as gatehouse_http, driven by MCP 2026-07-28 (stateless) requests.
  'gatehouse_http_2026',
] as const;
type TargetName = (typeof ALL_TARGETS)[number];
/**
 * BENCH_PROFILE=1: the Gatehouse targets are CPU-profiled during each timed window (bench/cpu-window.ts,
 * toggled by SIGUSR2 at the load generator's marks); a summary per scenario is printed at the end.
 */
const PROFILE = process.env.BENCH_PROFILE === '1' || process.env.BENCH_PROFILE === 'heap';
/**
 * Node flags of the Gatehouse targets: the ones Gatehouse ships with (src/cli/runtime-flags.ts), unless
 * BENCH_GATEHOUSE_NODE_ARGS (all but the baseline) or BENCH_BASELINE_NODE_ARGS (the baseline) says
 * otherwise; `' '` means none. With BENCH_BASELINE_CLI set to this same build, a run compares flags.
 */
const nodeArgs = (env: string | undefined): string[] =>
  env === undefined ? [...RUNTIME_FLAGS] : env.split(' ').filter(Boolean);
const GATEHOUSE_NODE_ARGS = nodeArgs(process.env.BENCH_GATEHOUSE_NODE_ARGS);
const BASELINE_NODE_ARGS = nodeArgs(process.env.BENCH_BASELINE_NODE_ARGS);
/** BENCH_PROFILE=heap: sample allocations instead of CPU time (bytes allocated per call, by function). */
const HEAP_PROFILE = process.env.BENCH_PROFILE === 'heap';
/** Rows per table of the profile summary (BENCH_PROFILE_TOP, default 25). */
const PROFILE_TOP = Number(process.env.BENCH_PROFILE_TOP ?? 25);
/**
 * BENCH_BASELINE_CLI=path/to/cli.js (a build of an earlier commit): adds the target
 * `gatehouse_http_baseline`, that build with the same config, interleaved with `gatehouse_http`, so
 * a change to the request path is compared with the commit before it in the same run.
 */
const BASELINE_CLI = process.env.BENCH_BASELINE_CLI
  ? path.resolve(process.env.BENCH_BASELINE_CLI)
  : undefined;
/** BENCH_IN_PROCESS=0 skips the in-process benchmarks (token, policy, audit, sanitisers): a quicker A/B. */
const IN_PROCESS = process.env.BENCH_IN_PROCESS !== '0';
const TARGETS = (process.env.BENCH_TARGETS?.split(',') ?? ALL_TARGETS).filter(
  (t): t is TargetName =>
    (ALL_TARGETS as readonly string[]).includes(t) && (t !== 'gatehouse_http_baseline' || !!BASELINE_CLI),
);
if (BASELINE_CLI && !TARGETS.includes('gatehouse_http_baseline')) TARGETS.push('gatehouse_http_baseline');

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}

/** Why an in-process benchmark has no figures: skipped, or the exit status it failed with. */
function notRun(status: number | string | null): string {
  return typeof status === 'string' ? status : `benchmark failed (${status})`;
}

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---------------------------------------------------------------- processes

interface Proc {
  name: string;
  child: ChildProcess;
  output: () => string;
}

const procs = new Set<Proc>();
let shuttingDown = false;

/** Pin to a CPU with taskset when possible (server side: CPU 1, load generator: CPU 0). */
const PINNING = (() => {
  if (os.availableParallelism() < 2) return 'fewer than 2 CPUs';
  const probe = spawnSync('taskset', ['-c', '1', 'true']);
  return probe.status === 0 ? true : 'taskset not available';
})();

function start(name: string, cpu: 0 | 1, command: string, args: string[]): Proc {
  const [cmd, argv] = PINNING === true ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
  // detached: own process group, so stop() also reaches grandchildren (stdio upstreams).
  const child = spawn(cmd, argv, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const proc: Proc = { name, child, output: () => tail };
  procs.add(proc);
  child.on('exit', (code, signal) => {
    procs.delete(proc);
    if (!shuttingDown && name !== 'load')
      log(`!!! ${name} exited unexpectedly (code ${code}, signal ${signal})\n${tail}`);
  });
  return proc;
}

/** Signals the child's process group; `evenIfExited` also reaches leftovers of an exited leader. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals, evenIfExited = false): void {
  if (child.pid === undefined) return;
  if (!evenIfExited && (child.exitCode !== null || child.signalCode !== null)) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

async function stop(proc: Proc): Promise<void> {
  const exited = new Promise((r) => proc.child.once('exit', r));
  killGroup(proc.child, 'SIGTERM');
  if (procs.has(proc)) await Promise.race([exited, sleep(2000)]);
  killGroup(proc.child, 'SIGKILL', true);
  procs.delete(proc);
}

async function stopAll(): Promise<void> {
  shuttingDown = true;
  await Promise.all([...procs].map(stop));
}

process.on('exit', () => {
  for (const p of procs) killGroup(p.child, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping child processes`);
    void stopAll().finally(() => process.exit(130));
  });
}

/** Resolves with the URL from the process's `LISTENING <url>` line. */
function waitListening(proc: Proc, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${proc.name}: not listening after ${timeoutMs} ms\n${proc.output()}`)),
      timeoutMs,
    );
    const onData = () => {
      const m = /LISTENING (\S+)/.exec(proc.output());
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.child.stdout?.on('data', onData);
    proc.child.once('exit', () => reject(new Error(`${proc.name} exited during startup\n${proc.output()}`)));
  });
}

function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(1000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls `url` until `ok(status)`; fails early if the process exits. */
async function waitHttp(
  proc: Proc,
  url: string,
  ok: (status: number) => boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!procs.has(proc)) throw new Error(`${proc.name} exited during startup\n${proc.output()}`);
    const status = await httpGet(url).catch(() => 0);
    if (ok(status)) return;
    await sleep(100);
  }
  throw new Error(`${proc.name}: ${url} not ready after ${timeoutMs} ms\n${proc.output()}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- scripts

interface Cmd {
  command: string;
  args: string[];
}

const TMP = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
// BENCH_KEEP_TMP=1 keeps the temp dir (configs, data dirs, profiles) for a look afterwards.
process.on('exit', () => process.env.BENCH_KEEP_TMP !== '1' && rmSync(TMP, { recursive: true, force: true }));

/** Bundles the bench scripts with esbuild (a tsx dependency) so that spawning them is cheap
 * (~140 ms vs ~400 ms through tsx for the stdio echo server); falls back to tsx. */
function buildScripts(): Record<'echo' | 'bareHop' | 'load' | 'cpuWindow', Cmd> {
  const names = { echo: 'echo-server', bareHop: 'bare-hop', load: 'load', cpuWindow: 'cpu-window' } as const;
  const esbuild = path.join(ROOT, 'node_modules', '.bin', 'esbuild');
  const built =
    existsSync(esbuild) &&
    spawnSync(
      esbuild,
      [
        ...Object.values(names).map((n) => path.join(BENCH_DIR, `${n}.ts`)),
        '--bundle',
        '--platform=node',
        '--format=esm',
        '--target=node20',
        '--log-level=error',
        `--outdir=${TMP}`,
        '--out-extension:.js=.mjs',
        // bundled CommonJS dependencies (ajv, ...) need a require() in ESM output
        "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      ],
      { stdio: 'inherit' },
    ).status === 0;
  if (!built) log('esbuild unavailable or failed: running bench scripts through tsx (slower stdio spawns)');
  const tsx = import.meta.resolve('tsx');
  const cmd = (n: string): Cmd =>
    built
      ? { command: process.execPath, args: [path.join(TMP, `${n}.mjs`)] }
      : { command: process.execPath, args: ['--import', tsx, path.join(BENCH_DIR, `${n}.ts`)] };
  return {
    echo: cmd(names.echo),
    bareHop: cmd(names.bareHop),
    load: cmd(names.load),
    // A preload for the gateway (`node <args> dist/cli/index.js`): the file, or tsx + the source.
    cpuWindow: built
      ? {
          command: process.execPath,
          args: ['--import', pathToFileURL(path.join(TMP, 'cpu-window.mjs')).href],
        }
      : {
          command: process.execPath,
          args: ['--import', tsx, '--import', path.join(BENCH_DIR, 'cpu-window.ts')],
        },
  };
}

/** Time from spawn to the initialize response of the stdio echo server. */
async function stdioStartupMs(echo: Cmd): Promise<number> {
  const t0 = performance.now();
  const child = spawn(echo.command, [...echo.args, '--stdio'], { stdio: ['pipe', 'pipe', 'ignore'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('error', reject);
    child.once('exit', () => reject(new Error('echo server exited')));
    child.stdin.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '0' } } })}\n`,
    );
  });
  const ms = performance.now() - t0;
  child.kill();
  return ms;
}

/**
 * Share of a CPU busy over `ms`, from /proc/stat: all CPUs (`cpu`), or one (`cpu1`); 0 where unavailable.
 */
async function busyPercent(cpu = 'cpu', ms = 500): Promise<number> {
  const sample = (): number[] => {
    try {
      const line = readFileSync('/proc/stat', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${cpu} `));
      return (line ?? '').split(/\s+/).slice(1).map(Number);
    } catch {
      return [];
    }
  };
  const a = sample();
  await sleep(ms);
  const b = sample();
  const delta = b.map((v, i) => v - (a[i] ?? 0));
  const total = delta.reduce((x, y) => x + y, 0);
  const idle = (delta[3] ?? 0) + (delta[4] ?? 0); // idle + iowait
  return total > 0 ? (100 * (total - idle)) / total : 0;
}

/** Share of all CPUs busy over half a second (0 where unavailable). */
function otherCpuPercent(): Promise<number> {
  return busyPercent();
}

/**
 * Waits until the server side is quiet before a measurement: the target measured before may still be
 * ending its sessions (`gatehouse_stdio` stops 64 processes after c64_s64), and that work lands on the
 * next target's core. Busy at most 10% over 250 ms, or 15 s at most (then it says so).
 */
async function settle(label: string): Promise<void> {
  const cpu = PINNING === true ? 'cpu1' : 'cpu';
  const until = Date.now() + 15_000;
  for (;;) {
    const busy = await busyPercent(cpu, 250);
    if (busy <= 10) return;
    if (Date.now() > until) {
      log(`!!! ${label}: the server side was still ${busy.toFixed(0)}% busy after 15 s; measuring anyway`);
      return;
    }
  }
}

// ---------------------------------------------------------------- targets

interface Endpoint {
  url: string;
  tool: string;
  /** The server-side process whose own CPU time is reported per call (the gateway, the bare hop, …). */
  pid: number | undefined;
  /** The HTTP echo server behind it, when it is the shared one: its CPU per call is reported too. */
  upstreamPid?: number | undefined;
  /** Access token for targets that require authentication (Gatehouse). */
  bearer?: string;
  /** Runs bench/cpu-window.ts: SIGUSR2 at the window marks profiles each timed window (BENCH_PROFILE=1). */
  profiled?: boolean;
  /** `2026-07-28`: the load generator sends stateless requests (bench/load.ts --revision). */
  revision?: string;
}

/** BENCH_PROFILE=1: node arguments that load bench/cpu-window.ts into a gateway (set once the scripts are built). */
let profilePreload: string[] = [];
/** Where the window profiles go: `<pid>-<n>.cpuprofile`, n counting that process's windows. */
const PROFILE_DIR = path.join(TMP, 'profiles');
/** Per profiled pid, the label of each window in order (`c64_s64`, or `warmup`). */
const profileWindows = new Map<number, string[]>();

/** Gets an access token from the gateway's embedded authorization server (client credentials, RFC 8707 resource). */
async function benchToken(origin: string, resource: string): Promise<string> {
  const res = await fetch(`${origin}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${BENCH_CLIENT.id}:${BENCH_CLIENT.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'mcp', resource }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string };
  if (!body.access_token)
    throw new Error(`bench token request failed: HTTP ${res.status} ${body.error ?? ''}`);
  return body.access_token;
}

/** BENCH_GATEHOUSE_CLI=path/to/cli.js benchmarks a prebuilt gateway; otherwise `npm run build` first. */
function gatehouseCli(): string {
  const override = process.env['BENCH_GATEHOUSE_CLI'];
  if (override) return path.resolve(override);
  log('building Gatehouse (npm run build)');
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${`${r.stdout}${r.stderr}`.slice(-2000)}`);
  const cli = path.join(ROOT, 'dist', 'cli', 'index.js');
  if (!existsSync(cli)) throw new Error('dist/cli/index.js missing after npm run build');
  return cli;
}

/** The bench agent may use the echo server; nothing destructive for anyone. */
function benchPolicy(): string {
  const file = path.join(TMP, 'bench.cedar');
  writeFileSync(
    file,
    [
      '@id("bench-echo")',
      `permit (principal == Gatehouse::Agent::"${BENCH_CLIENT.id}", action, resource in Gatehouse::Server::"echo");`,
      '@id("no-destructive")',
      'forbid (principal, action == Gatehouse::Action::"call_tool", resource is Gatehouse::Tool)',
      'when { resource.sideEffect == "destructive" };',
      '',
    ].join('\n'),
  );
  return file;
}

async function startGatehouse(cli: string, name: string, upstreamYaml: string): Promise<Endpoint> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(TMP, `${name}-data-`));
  const config = path.join(TMP, `${name}.yaml`);
  writeFileSync(config, benchGatewayYaml(benchPolicy(), upstreamYaml));
  const proc = start(name, 1, process.execPath, [
    ...(name === 'gatehouse_http_baseline' ? BASELINE_NODE_ARGS : GATEHOUSE_NODE_ARGS),
    ...profilePreload,
    cli,
    ...startArgs(config, port, dataDir),
  ]);
  await waitHttp(proc, `http://127.0.0.1:${port}/healthz`, (s) => s === 200);
  const url = `http://127.0.0.1:${port}/mcp`;
  return {
    url,
    tool: 'echo__echo',
    pid: proc.child.pid,
    bearer: await benchToken(`http://127.0.0.1:${port}`, url),
    profiled: PROFILE,
  };
}

async function startTargets(
  scripts: Record<'echo' | 'bareHop', Cmd>,
): Promise<Map<TargetName, Endpoint | Error>> {
  const out = new Map<TargetName, Endpoint | Error>();
  const echoStdioArgs = [...scripts.echo.args, '--stdio'];
  const needsHttpEcho = TARGETS.some(
    (t) =>
      t === 'direct' ||
      t === 'bare_hop' ||
      t === 'gatehouse_http' ||
      t === 'gatehouse_http_baseline' ||
      t === 'gatehouse_http_2026',
  );
  const echoProc = needsHttpEcho
    ? start('echo_http', 1, scripts.echo.command, [...scripts.echo.args, '--http', '0'])
    : undefined;
  const echoUrl = echoProc ? await waitListening(echoProc) : '';

  let cli: string | Error = new Error('Gatehouse not requested');
  if (TARGETS.some((t) => t.startsWith('gatehouse') && t !== 'gatehouse_http_baseline')) {
    try {
      cli = gatehouseCli();
    } catch (err) {
      cli = err instanceof Error ? err : new Error(String(err));
    }
  }

  const gatehouseStdio = async (isolation: 'session' | 'principal' | 'shared'): Promise<Endpoint> => {
    if (cli instanceof Error) throw cli;
    const name = isolation === 'session' ? 'gatehouse_stdio' : `gatehouse_stdio_${isolation}`;
    const args = JSON.stringify(echoStdioArgs);
    return startGatehouse(
      cli,
      name,
      `    type: stdio\n    command: ${JSON.stringify(scripts.echo.command)}\n    args: ${args}\n    isolation: ${isolation}\n`,
    );
  };
  const starters: Record<TargetName, () => Promise<Endpoint>> = {
    direct: async () => ({ url: echoUrl, tool: 'echo', pid: echoProc?.child.pid }),
    bare_hop: async () => {
      const proc = start('bare_hop', 1, scripts.bareHop.command, [
        ...scripts.bareHop.args,
        '--target',
        echoUrl,
      ]);
      return {
        url: await waitListening(proc),
        tool: 'echo',
        pid: proc.child.pid,
        upstreamPid: echoProc?.child.pid,
      };
    },
    mcp_proxy_stdio: async () => {
      const port = await freePort();
      const bin = path.join(ROOT, 'node_modules', 'mcp-proxy', 'dist', 'bin', 'mcp-proxy.mjs');
      // Streamable HTTP only, no resumability event store: its leanest request/response setup.
      const args = [
        bin,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--server',
        'stream',
        '--no-eventStore',
      ];
      const proc = start('mcp_proxy', 1, process.execPath, [
        ...args,
        '--',
        scripts.echo.command,
        ...echoStdioArgs,
      ]);
      await waitHttp(proc, `http://127.0.0.1:${port}/mcp`, (s) => s > 0);
      return { url: `http://127.0.0.1:${port}/mcp`, tool: 'echo', pid: proc.child.pid };
    },
    gatehouse_http: async () => {
      if (cli instanceof Error) throw cli;
      const ep = await startGatehouse(cli, 'gatehouse_http', `    type: http\n    url: ${echoUrl}\n`);
      return { ...ep, upstreamPid: echoProc?.child.pid };
    },
    gatehouse_http_2026: async () => {
      if (cli instanceof Error) throw cli;
      const ep = await startGatehouse(cli, 'gatehouse_http_2026', `    type: http\n    url: ${echoUrl}\n`);
      return { ...ep, revision: '2026-07-28', upstreamPid: echoProc?.child.pid };
    },
    gatehouse_http_baseline: async () => {
      if (!BASELINE_CLI) throw new Error('BENCH_BASELINE_CLI is not set');
      const ep = await startGatehouse(
        BASELINE_CLI,
        'gatehouse_http_baseline',
        `    type: http\n    url: ${echoUrl}\n`,
      );
      return { ...ep, upstreamPid: echoProc?.child.pid };
    },
    // One process per session (isolation session, the default), per principal (the bench has one
    // agent: one process) and for everyone (as mcp-proxy).
    gatehouse_stdio: () => gatehouseStdio('session'),
    gatehouse_stdio_principal: () => gatehouseStdio('principal'),
    gatehouse_stdio_shared: () => gatehouseStdio('shared'),
  };
  for (const t of TARGETS) {
    try {
      out.set(t, await starters[t]());
      log(`${t}: ready`);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      out.set(t, e);
      log(`!!! ${t}: could not start, skipping it: ${e.message}`);
    }
  }
  return out;
}

function mcpProxyVersion(): string | null {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/mcp-proxy/package.json'), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : null;
}

// ---------------------------------------------------------------- measuring

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

/**
 * CPU time of a process in µs (user + system, all its threads: GC and libuv included), from
 * /proc/<pid>/stat; undefined where unavailable. With taskset the pid is the server itself (taskset execs).
 */
function cpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1_000_000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

async function measure(
  load: Cmd,
  ep: Endpoint,
  c: number,
  s: number,
  seconds = SECONDS,
  warmup = WARMUP,
  label = `c${c}_s${s}`,
): Promise<LoadResult> {
  const opts = { url: ep.url, tool: ep.tool, concurrency: c, sessions: s, seconds, warmup };
  const args = Object.entries(opts).flatMap(([k, v]) => [`--${k}`, String(v)]);
  if (ep.bearer) args.push('--bearer', ep.bearer);
  if (ep.revision) args.push('--revision', ep.revision);
  const proc = start('load', 0, load.command, [...load.args, ...args]);
  let stdout = '';
  let cpuStart: number | undefined;
  let cpuEnd: number | undefined;
  let upStart: number | undefined;
  let upEnd: number | undefined;
  let loadStart: number | undefined;
  let loadEnd: number | undefined;
  let loadT0 = 0;
  let loadT1 = 0;
  proc.child.stdout?.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    // The server's CPU over exactly the timed window, sampled at the load generator's marks.
    if (text.includes('WINDOW_START')) {
      cpuStart = cpuMicros(ep.pid);
      upStart = cpuMicros(ep.upstreamPid);
      loadStart = cpuMicros(proc.child.pid);
      loadT0 = performance.now();
      if (ep.profiled && ep.pid !== undefined) {
        process.kill(ep.pid, 'SIGUSR2');
        const labels = profileWindows.get(ep.pid) ?? [];
        labels.push(label);
        profileWindows.set(ep.pid, labels);
      }
    }
    if (text.includes('WINDOW_END')) {
      cpuEnd = cpuMicros(ep.pid);
      upEnd = cpuMicros(ep.upstreamPid);
      loadEnd = cpuMicros(proc.child.pid);
      loadT1 = performance.now();
      if (ep.profiled && ep.pid !== undefined) process.kill(ep.pid, 'SIGUSR2');
    }
    stdout += text;
  });
  await new Promise((r) => proc.child.once('exit', r));
  // The result is the last JSON line: a WINDOW_END mark may come after it on a loaded machine.
  const line =
    stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop() ?? '';
  try {
    const r = JSON.parse(line) as LoadResult;
    if (cpuStart !== undefined && cpuEnd !== undefined && r.calls > 0)
      r.cpu_us_per_call = (cpuEnd - cpuStart) / r.calls;
    if (upStart !== undefined && upEnd !== undefined && r.calls > 0)
      r.upstream_cpu_us_per_call = (upEnd - upStart) / r.calls;
    // The load generator's share of its core: near 100%, the run measured the load generator.
    if (loadStart !== undefined && loadEnd !== undefined && loadT1 > loadT0)
      r.load_cpu_pct = (100 * (loadEnd - loadStart)) / ((loadT1 - loadT0) * 1000);
    return r;
  } catch {
    return {
      calls: 0,
      seconds: 0,
      calls_per_s: 0,
      p50_ms: Number.NaN,
      p99_ms: Number.NaN,
      errors: 1,
      error_samples: [],
      fatal: `load generator failed: ${proc.output().slice(-1000)}`,
    };
  }
}

function median(xs: number[]): number | null {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] ?? null) : ((v[mid - 1] ?? 0) + (v[mid] ?? 0)) / 2;
}

interface Summary {
  calls_per_s: number | null;
  /** The server process's own CPU time per completed call, µs. */
  cpu_us_per_call: number | null;
  /** The HTTP echo server's CPU time per call, µs (targets in front of it). */
  upstream_cpu_us_per_call: number | null;
  /** The load generator's CPU in the window, % of one core. */
  load_cpu_pct: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  errors: number;
  ok_runs: number;
}

function summarize(runs: LoadResult[]): Summary {
  const ok = runs.filter((r) => !r.fatal && r.calls > 0);
  return {
    calls_per_s: median(ok.map((r) => r.calls_per_s)),
    cpu_us_per_call: median(ok.flatMap((r) => (r.cpu_us_per_call === undefined ? [] : [r.cpu_us_per_call]))),
    upstream_cpu_us_per_call: median(
      ok.flatMap((r) => (r.upstream_cpu_us_per_call === undefined ? [] : [r.upstream_cpu_us_per_call])),
    ),
    load_cpu_pct: median(ok.flatMap((r) => (r.load_cpu_pct === undefined ? [] : [r.load_cpu_pct]))),
    p50_ms: median(ok.map((r) => r.p50_ms)),
    p99_ms: median(ok.map((r) => r.p99_ms)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    ok_runs: ok.length,
  };
}

// ---------------------------------------------------------------- report

const fmt = (v: number | null, digits: number): string => (v === null ? '-' : v.toFixed(digits));
const round = (v: number | null, digits = 3): number | null =>
  v === null ? null : Number(v.toFixed(digits));

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}

/**
 * Runs one in-process benchmark script of bench/ (pinned to the servers' CPU when `pinned`), or
 * reports it skipped under BENCH_IN_PROCESS=0.
 */
function inProcessBench(
  script: string,
  pinned: boolean,
  env: Record<string, string> = {},
): { status: number | string | null } {
  if (!IN_PROCESS) return { status: 'skipped (BENCH_IN_PROCESS=0)' };
  const args = ['--import', 'tsx', path.join(BENCH_DIR, script)];
  const pin = pinned && PINNING === true;
  return spawnSync(pin ? 'taskset' : process.execPath, pin ? ['-c', '1', process.execPath, ...args] : args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
}

async function main(): Promise<void> {
  // BENCH_STORE=1: the store comparison instead (bench/store.ts: SQLite vs PostgreSQL per call, issue #15).
  if (process.env.BENCH_STORE === '1') return (await import('./store.ts')).benchStores();
  const t0 = Date.now();
  const pinNote =
    PINNING === true ? 'server side on CPU 1, load generator on CPU 0' : `NOT pinned (${PINNING})`;
  log(`runs=${RUNS} seconds=${SECONDS} warmup=${WARMUP}; ${pinNote}`);
  const scripts = buildScripts();
  const startupMs = await stdioStartupMs(scripts.echo);
  log(`stdio echo server startup: ${startupMs.toFixed(0)} ms`);
  const busy = await otherCpuPercent();
  if (busy > 10)
    log(`!!! the machine is already ${busy.toFixed(0)}% busy before the bench: numbers will be noisy`);
  if (PROFILE) {
    profilePreload = scripts.cpuWindow.args;
    mkdirSync(PROFILE_DIR, { recursive: true });
    process.env.GATEHOUSE_CPU_WINDOW_DIR = PROFILE_DIR;
    if (HEAP_PROFILE) process.env.GATEHOUSE_PROFILE_KIND = 'heap';
  }
  const endpoints = await startTargets(scripts);

  // One unrecorded pass per target so that no scenario measures a cold (un-JITed) server.
  for (const [target, ep] of endpoints) {
    if (ep instanceof Error) continue;
    const r = await measure(scripts.load, ep, 16, 4, 1, 1, 'warmup');
    if (r.fatal || r.errors > 0) log(`!!! ${target} warm-up pass: ${r.fatal ?? r.error_samples.join(' | ')}`);
  }

  // Interleave targets within each run so drift on the machine affects all of them alike.
  const results = new Map<string, LoadResult[]>();
  for (let run = 1; run <= RUNS; run++) {
    for (const sc of SCENARIOS) {
      // The order flips every run, so that no target always follows the same one.
      const order = run % 2 === 1 ? [...endpoints] : [...endpoints].reverse();
      for (const [target, ep] of order) {
        if (ep instanceof Error) continue;
        await settle(`${sc.key} ${target}`);
        const r = await measure(scripts.load, ep, sc.c, sc.s);
        const k = `${target}_${sc.key}`;
        results.set(k, [...(results.get(k) ?? []), r]);
        const status = r.fatal
          ? `FAILED: ${r.fatal}`
          : `${r.calls_per_s.toFixed(0)} calls/s p50 ${r.p50_ms.toFixed(2)} ms p99 ${r.p99_ms.toFixed(2)} ms`;
        log(`run ${run}/${RUNS} ${sc.key} ${target}: ${status}`);
        if (r.errors > 0 && !r.fatal)
          log(`!!! ${target} ${sc.key}: ${r.errors} ERRORS, e.g. ${r.error_samples.join(' | ')}`);
      }
    }
  }
  // Mean time per pipeline stage, from each gateway's own stage histograms (every scenario and run).
  const stageLines: string[] = [];
  for (const [target, ep] of endpoints) {
    if (ep instanceof Error || !target.startsWith('gatehouse')) continue;
    const text = await fetch(new URL('/metrics', ep.url))
      .then((r) => r.text())
      .catch(() => '');
    const sums = new Map<string, number>();
    const counts = new Map<string, number>();
    for (const m of text.matchAll(
      /^gatehouse_stage_duration_seconds_(sum|count)\{stage="([^"]+)"\} (\S+)$/gm,
    )) {
      (m[1] === 'sum' ? sums : counts).set(m[2] ?? '', Number(m[3]));
    }
    const cells = [...sums]
      .filter(([stage]) => (counts.get(stage) ?? 0) > 0)
      .map(([stage, sum]) => `${stage} ${((sum / (counts.get(stage) ?? 1)) * 1e6).toFixed(1)}`);
    if (cells.length > 0)
      stageLines.push(`mean wall time per stage run (µs; an await counts), ${target}: ${cells.join(', ')}`);
  }
  await stopAll();
  const profiles: string[] = [];
  if (PROFILE) {
    // One profile per target and scenario: its last timed window (the preload writes it as the window ends).
    for (const [t, ep] of endpoints) {
      if (ep instanceof Error || !ep.profiled || ep.pid === undefined) continue;
      const labels = profileWindows.get(ep.pid) ?? [];
      for (const sc of SCENARIOS) {
        const n = labels.lastIndexOf(sc.key) + 1;
        const file = path.join(PROFILE_DIR, `${ep.pid}-${n}.${HEAP_PROFILE ? 'heapprofile' : 'cpuprofile'}`);
        if (n === 0 || !existsSync(file)) continue;
        const calls = results.get(`${t}_${sc.key}`)?.at(-1)?.calls;
        const summary = HEAP_PROFILE
          ? summarizeHeapProfile(file, PROFILE_TOP, calls)
          : formatSummary(summarizeProfile(file, PROFILE_TOP));
        profiles.push(`profile of ${t}, ${sc.key}, last timed window:\n${summary}`);
      }
    }
  }

  const json: Record<string, string | number | boolean | null> = {
    date: new Date().toISOString(),
    node_version: process.version,
    runs: RUNS,
    seconds: SECONDS,
    warmup_seconds: WARMUP,
    pinned: PINNING === true,
    mcp_proxy_version: mcpProxyVersion(),
    echo_stdio_startup_ms: round(startupMs, 0),
    background_cpu_pct_at_start: round(busy, 0),
  };
  const rows = [
    [
      'scenario',
      'target',
      'calls/s',
      'p50 ms',
      'p99 ms',
      'CPU µs/call',
      'echo CPU µs/call',
      'load gen CPU %',
      'errors',
      'ok runs',
    ],
  ];
  const sum = new Map<string, Summary>();
  let totalErrors = 0;
  for (const sc of SCENARIOS) {
    for (const [target, ep] of endpoints) {
      const k = `${target}_${sc.key}`;
      if (ep instanceof Error) {
        rows.push([sc.key, target, 'n/a', '', '', '', '', '', '', 'not started']);
        json[`${k}_calls_per_s`] = json[`${k}_p50_ms`] = json[`${k}_p99_ms`] = null;
        continue;
      }
      const s = summarize(results.get(k) ?? []);
      sum.set(k, s);
      totalErrors += s.errors;
      const errCell = s.errors > 0 ? `${s.errors} !!!` : '0';
      rows.push([
        sc.key,
        target,
        fmt(s.calls_per_s, 0),
        fmt(s.p50_ms, 3),
        fmt(s.p99_ms, 3),
        fmt(s.cpu_us_per_call, 0),
        fmt(s.upstream_cpu_us_per_call, 0),
        fmt(s.load_cpu_pct, 0),
        errCell,
        `${s.ok_runs}/${RUNS}`,
      ]);
      json[`${k}_calls_per_s`] = round(s.calls_per_s, 1);
      json[`${k}_p50_ms`] = round(s.p50_ms);
      json[`${k}_p99_ms`] = round(s.p99_ms);
      json[`${k}_cpu_us_per_call`] = round(s.cpu_us_per_call, 1);
      json[`${k}_echo_cpu_us_per_call`] = round(s.upstream_cpu_us_per_call, 1);
      json[`${k}_load_cpu_pct`] = round(s.load_cpu_pct, 0);
      json[`${k}_errors`] = s.errors;
    }
  }

  const ratio = (a: string, b: string): number | null => {
    const x = sum.get(a)?.calls_per_s ?? null;
    const y = sum.get(b)?.calls_per_s ?? null;
    return x === null || y === null || y === 0 ? null : x / y;
  };
  /**
   * The same ratio paired by run: a / b within each run (the two measured back to back, their order
   * flipping every run), then the median over runs. Drift on the machine that lasts longer than one
   * pair cancels out of each ratio, where it does not cancel out of a ratio of two medians.
   */
  const pairedRatio = (a: string, b: string): number | null => {
    const xs = results.get(a) ?? [];
    const ys = results.get(b) ?? [];
    const rs: number[] = [];
    for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
      const x = xs[i];
      const y = ys[i];
      if (x && y && !x.fatal && !y.fatal && x.calls > 0 && y.calls > 0)
        rs.push(x.calls_per_s / y.calls_per_s);
    }
    return median(rs);
  };
  for (const sc of SCENARIOS) {
    json[`gatehouse_vs_bare_hop_${sc.key}`] = round(ratio(`gatehouse_http_${sc.key}`, `bare_hop_${sc.key}`));
    json[`gatehouse_vs_bare_hop_paired_${sc.key}`] = round(
      pairedRatio(`gatehouse_http_${sc.key}`, `bare_hop_${sc.key}`),
    );
    json[`gatehouse_shared_vs_mcp_proxy_paired_${sc.key}`] = round(
      pairedRatio(`gatehouse_stdio_shared_${sc.key}`, `mcp_proxy_stdio_${sc.key}`),
    );
    json[`gatehouse_vs_mcp_proxy_${sc.key}`] = round(
      ratio(`gatehouse_stdio_${sc.key}`, `mcp_proxy_stdio_${sc.key}`),
    );
    for (const mode of ['principal', 'shared'])
      json[`gatehouse_${mode}_vs_mcp_proxy_${sc.key}`] = round(
        ratio(`gatehouse_stdio_${mode}_${sc.key}`, `mcp_proxy_stdio_${sc.key}`),
      );
  }
  const vsBare = ratio('gatehouse_http_c64_s64', 'bare_hop_c64_s64');
  const rev2026 = ratio('gatehouse_http_2026_c64_s64', 'gatehouse_http_c64_s64');
  const vsProxy = ratio('gatehouse_stdio_c64_s64', 'mcp_proxy_stdio_c64_s64');
  const principalVsProxy = ratio('gatehouse_stdio_principal_c64_s64', 'mcp_proxy_stdio_c64_s64');
  const sharedVsProxy = ratio('gatehouse_stdio_shared_c64_s64', 'mcp_proxy_stdio_c64_s64');
  const sharedPaired = pairedRatio('gatehouse_stdio_shared_c64_s64', 'mcp_proxy_stdio_c64_s64');
  const gp50 = sum.get('gatehouse_http_c1_s1')?.p50_ms ?? null;
  const bp50 = sum.get('bare_hop_c1_s1')?.p50_ms ?? null;
  const addedP50 = gp50 === null || bp50 === null ? null : gp50 - bp50;
  const verdict = (v: number | null, pass: boolean): string => (v === null ? 'n/a' : pass ? 'PASS' : 'FAIL');
  json.gatehouse_vs_bare_hop_c64 = round(vsBare);
  json.gatehouse_2026_vs_2025_c64 = round(rev2026);
  json.gatehouse_vs_mcp_proxy_c64 = round(vsProxy);
  json.gatehouse_principal_vs_mcp_proxy_c64 = round(principalVsProxy);
  json.gatehouse_shared_vs_mcp_proxy_c64 = round(sharedVsProxy);
  json.added_p50_ms_c1 = round(addedP50);
  json.total_errors = totalErrors;

  // Token verification cost per call (the authenticate stage), measured in-process on the same machine.
  const tv = inProcessBench('token-verify.ts', false, {
    BENCH_TOKENS: process.env['BENCH_TOKENS'] ?? '1000',
    BENCH_CACHED: process.env['BENCH_CACHED'] ?? '20000',
  });
  let tokenLine = `token verification: ${notRun(tv.status)}`;
  if (tv.status === 0) {
    const tvJson = JSON.parse(readFileSync(path.join(BENCH_DIR, 'token-verify.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    for (const [k, v] of Object.entries(tvJson))
      if (k.startsWith('token_') && typeof v === 'number') json[k] = v;
    const cached = Number(tvJson.token_cached_us_p50);
    tokenLine =
      `token verification per call: cached p50 ${fmt(cached, 2)} µs (target <= 20 ${verdict(cached, cached <= 20)}), ` +
      `first sight ES256 p50 ${fmt(Number(tvJson.token_first_sight_es256_us_p50), 1)} µs, EdDSA p50 ${fmt(Number(tvJson.token_first_sight_eddsa_us_p50), 1)} µs`;
  }

  // Policy decision cost per tools/call (the authorize stage's Cedar part), 12 and 1,000 policies.
  const pb = inProcessBench('policy.ts', false);
  let policyLine = `policy decisions: ${notRun(pb.status)}`;
  if (pb.status === 0) {
    const pj = JSON.parse(readFileSync(path.join(BENCH_DIR, 'policy.json'), 'utf8')) as Record<
      string,
      number
    >;
    for (const [k, v] of Object.entries(pj)) json[k] = v;
    const cached = pj.policy_1000_cached_us_p50 ?? null;
    policyLine =
      `policy decision per call, 1,000 policies: argument-free p50 ${fmt(cached, 2)} µs (target <= 20 ${verdict(cached, (cached ?? 99) <= 20)}), ` +
      `argument-dependent p50 ${fmt(pj.policy_1000_args_us_p50 ?? null, 1)} µs, first decision of a grant p50 ${fmt(pj.policy_1000_first_us_p50 ?? null, 0)} µs`;
  }

  // The audit writer alone (bench/audit.ts), pinned like the servers: durable events/s under
  // concurrency, and the write-ahead wait of one call when it is alone in flight (the stage's added p50).
  const au = inProcessBench('audit.ts', true);
  let auditLine = `audit: ${notRun(au.status)}`;
  if (au.status === 0) {
    const aj = JSON.parse(readFileSync(path.join(BENCH_DIR, 'audit.json'), 'utf8')) as Record<string, number>;
    for (const [k, v] of Object.entries(aj)) json[k] = v;
    const eps = aj.audit_normal_c256_events_per_s ?? null;
    const stageMs = aj.audit_normal_c1_p50_us === undefined ? null : aj.audit_normal_c1_p50_us / 1000;
    json.audit_events_per_s = eps;
    json.audit_stage_p50_ms_c1 = stageMs === null ? null : round(stageMs);
    auditLine =
      `audit (synchronous=normal): ${fmt(eps, 0)} durable events/s at 256 appenders (target >= 20000 ${verdict(eps, (eps ?? 0) >= 20_000)}), ` +
      `write-ahead stage p50 ${fmt(stageMs, 3)} ms at 1 in flight (target <= 0.1 ${verdict(stageMs, (stageMs ?? 1) <= 0.1)}); ` +
      `full: ${fmt(aj.audit_full_c256_events_per_s ?? null, 0)} events/s, p50 ${fmt((aj.audit_full_c1_p50_us ?? 0) / 1000, 3)} ms`;
  }

  // The result sanitisers (bench/sanitize.ts), pinned like the servers: CPU added by the response stage
  // sanitize-result per KiB of a text result (4 and 64 KiB) and per call for a small result.
  const sa = inProcessBench('sanitize.ts', true);
  let sanitizeLine = `result sanitisers: ${notRun(sa.status)}`;
  if (sa.status === 0) {
    const sj = JSON.parse(readFileSync(path.join(BENCH_DIR, 'sanitize.json'), 'utf8')) as Record<
      string,
      number
    >;
    for (const [k, v] of Object.entries(sj)) json[k] = v;
    const a4 = sj.sanitize_ascii_4k_added_us_per_kib ?? null;
    const a64 = sj.sanitize_ascii_64k_added_us_per_kib ?? null;
    const worst = Math.max(a4 ?? 99, a64 ?? 99);
    sanitizeLine =
      `result sanitisers (sanitize-result, default profile): +${fmt(a4, 1)} µs/KiB at 4 KiB, +${fmt(a64, 1)} µs/KiB at 64 KiB of CPU (target <= 30 ${verdict(worst, worst <= 30)}); ` +
      `non-ASCII text +${fmt(sj.sanitize_mixed_4k_added_us_per_kib ?? null, 1)}/+${fmt(sj.sanitize_mixed_64k_added_us_per_kib ?? null, 1)} µs/KiB; ` +
      `small result +${fmt(sj.sanitize_small_added_us ?? null, 2)} µs per call`;
  }

  const lines = [
    '',
    `Gatehouse bench: medians of ${RUNS} runs x ${SECONDS}s (after ${WARMUP}s warm-up), node ${process.version}, ${pinNote}`,
    `cN_sM = N requests in flight over M sessions; echo tool; raw JSON-RPC over keep-alive HTTP`,
    '',
    table(rows),
    '',
    ...['c64_s64', 'c64_s1'].flatMap((key) => {
      const r = ratio(`gatehouse_http_${key}`, `bare_hop_${key}`);
      const p = pairedRatio(`gatehouse_http_${key}`, `bare_hop_${key}`);
      if (r === null && !SCENARIOS.some((sc) => sc.key === key)) return [];
      return [
        `${'gatehouse_http / bare_hop'.padEnd(44)} calls/s (${key}): ${fmt(r, 3)} (ratio of medians), ${fmt(p, 3)} (median of per-run ratios)   target >= 0.85  ${verdict(r, (r ?? 0) >= 0.85)} / ${verdict(p, (p ?? 0) >= 0.85)}`,
      ];
    }),
    // mcp-proxy shares one process among its sessions: the like-for-like comparison is isolation shared.
    `${'gatehouse_stdio_shared / mcp_proxy_stdio'.padEnd(44)} calls/s (c64_s64): ${fmt(sharedVsProxy, 3)} (ratio of medians), ${fmt(sharedPaired, 3)} (median of per-run ratios)   target >= 1.5   ${verdict(sharedVsProxy, (sharedVsProxy ?? 0) >= 1.5)} / ${verdict(sharedPaired, (sharedPaired ?? 0) >= 1.5)}`,
    `${'gatehouse_stdio_principal / mcp_proxy_stdio'.padEnd(44)} calls/s (c64_s64): ${fmt(principalVsProxy, 3)}   (the bench's one agent: one process)`,
    `${'gatehouse_stdio / mcp_proxy_stdio'.padEnd(44)} calls/s (c64_s64): ${fmt(vsProxy, 3)}   (isolation session, a process per session: no target)`,
    `${'gatehouse_http_2026 / gatehouse_http'.padEnd(44)} calls/s (c64_s64): ${fmt(rev2026, 3)}   (MCP 2026-07-28 stateless requests vs 2025-11-25 sessions)`,
    `${'gatehouse_http - bare_hop'.padEnd(44)} p50 ms  (c1_s1):   ${addedP50 === null ? '-' : `${addedP50 >= 0 ? '+' : ''}${addedP50.toFixed(3)}`}  target <= 0.3   ${verdict(addedP50, (addedP50 ?? 1) <= 0.3)}`,
  ];
  const cpu = (k: string): number | null => sum.get(k)?.cpu_us_per_call ?? null;
  for (const sc of SCENARIOS) {
    const g = cpu(`gatehouse_http_${sc.key}`);
    const b = cpu(`bare_hop_${sc.key}`);
    json[`gatehouse_cpu_added_us_${sc.key}`] = g === null || b === null ? null : round(g - b, 1);
    lines.push(
      `own CPU per call (${sc.key}): gatehouse_http ${fmt(g, 0)} µs, bare_hop ${fmt(b, 0)} µs, direct echo ${fmt(cpu(`direct_${sc.key}`), 0)} µs, ` +
        `gatehouse_stdio ${fmt(cpu(`gatehouse_stdio_${sc.key}`), 0)} µs, mcp-proxy ${fmt(cpu(`mcp_proxy_stdio_${sc.key}`), 0)} µs`,
    );
  }
  if (BASELINE_CLI) {
    for (const sc of SCENARIOS) {
      const k = `gatehouse_http_${sc.key}`;
      const kb = `gatehouse_http_baseline_${sc.key}`;
      const r = ratio(k, kb);
      const g = cpu(k);
      const b = cpu(kb);
      const dCpu = g === null || b === null ? null : g - b;
      const dP50 = (sum.get(k)?.p50_ms ?? Number.NaN) - (sum.get(kb)?.p50_ms ?? Number.NaN);
      json[`gatehouse_vs_baseline_${sc.key}`] = round(r);
      json[`gatehouse_cpu_vs_baseline_us_${sc.key}`] = round(dCpu, 1);
      lines.push(
        `A/B (${sc.key}): gatehouse_http / baseline calls/s ${fmt(r, 3)}, CPU per call ${fmt(g, 0)} vs ${fmt(b, 0)} µs (${dCpu === null ? '-' : `${dCpu >= 0 ? '+' : ''}${dCpu.toFixed(1)}`}), p50 ${Number.isNaN(dP50) ? '-' : `${dP50 >= 0 ? '+' : ''}${dP50.toFixed(3)}`} ms; baseline ${BASELINE_CLI}`,
      );
    }
  }
  lines.push(...stageLines, tokenLine, policyLine, auditLine, sanitizeLine);
  for (const [t, ep] of endpoints)
    if (ep instanceof Error) lines.push(`!!! ${t} did not run: ${ep.message.split('\n')[0]}`);
  if (totalErrors > 0)
    lines.push(`!!! ${totalErrors} FAILED CALLS in total: see the errors column; those numbers are suspect`);
  if (profiles.length > 0) lines.push('', ...profiles);
  lines.push('', `wrote bench/results.json (${((Date.now() - t0) / 1000).toFixed(0)} s total)`);
  writeFileSync(path.join(BENCH_DIR, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch(async (err: unknown) => {
  log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await stopAll();
  process.exit(1);
});
