/**
 * The gateway under test: `gatehouse start` as a child process (so a crash is seen and its RSS is
 * its own) in a temp data dir, with the embedded authorization server, a policy that allows some
 * tools and denies or holds others for approval, the audit log, two real stdio upstreams (the
 * repository's tool-server fixture and @modelcontextprotocol/server-everything), and limits small
 * enough that every timeout is reachable within a fuzz run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  type WriteStream,
} from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * FUZZ_GATEWAY=dist runs the built gateway (`dist/cli/index.js`, after `npm run build`) with plain node,
 * as it ships; the default runs the sources through tsx.
 */
const DIST = process.env.FUZZ_GATEWAY === 'dist';

/** Whether the gateway runs with the GC probe (FUZZ_NO_GC_PROBE=1 or dist turn it off: no heap oracle then). */
const GC_PROBE = !process.env.FUZZ_NO_GC_PROBE && !DIST;

/** Repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');

/** The limits the gateway runs with; the oracles derive their deadlines from them. */
export interface FuzzLimits {
  callTimeoutMs: number;
  initializeTimeoutMs: number;
  maxCallMs: number;
  maxRequestBytes: number;
  maxResultBytes: number;
  sessionIdleTimeoutMs: number;
  maxSessions: number;
  drainTimeoutMs: number;
}

/** Defaults: small enough that timeouts are reached within a run. */
export const DEFAULT_LIMITS: FuzzLimits = {
  callTimeoutMs: 3000,
  initializeTimeoutMs: 15_000,
  maxCallMs: 8000,
  maxRequestBytes: 256 * 1024,
  maxResultBytes: 1024 * 1024,
  sessionIdleTimeoutMs: 120_000,
  maxSessions: 48,
  drainTimeoutMs: 2000,
};

/** A pre-registered client of the embedded authorization server. */
export interface FuzzClient {
  id: string;
  secret: string;
}

/** The local user the harness creates (user name `fuzz-user`), for the login pages. */
export const FUZZ_PASSWORD = 'fuzz-password-1';

/** Tokens the fuzzer holds: `agent` (scope mcp), `admin` (mcp mcp:admin), `narrow` (another agent). */
export type TokenKind = 'agent' | 'admin' | 'narrow';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

const POLICY = `// The fuzz policy: one agent may do most things, another only reads; some tools are always
// refused and one needs an approval that never comes.
@id("fuzz-agent-all")
permit (principal == Gatehouse::Agent::"fuzz-agent", action, resource);

@id("narrow-lists")
permit (principal == Gatehouse::Agent::"fuzz-narrow", action == Gatehouse::Action::"list_tools", resource);

@id("narrow-reads")
permit (principal == Gatehouse::Agent::"fuzz-narrow", action == Gatehouse::Action::"call_tool", resource is Gatehouse::Tool)
when { resource.sideEffect == "read" };

@id("no-destructive")
forbid (principal, action == Gatehouse::Action::"call_tool", resource is Gatehouse::Tool)
when { resource.sideEffect == "destructive" };

@id("no-env")
forbid (principal, action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"everything__get-env");

@id("no-fetch")
forbid (principal, action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"everything__gzip-file-as-resource");

@id("high-risk-needs-approval")
@approval("required")
forbid (principal, action == Gatehouse::Action::"call_tool", resource is Gatehouse::Tool)
when { resource.risk == "high" }
unless { context.approved };

@id("issue-repo")
forbid (principal, action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"github__create_issue")
when { context.args.hasTag("repo") && context.args.getTag("repo") == "acme/secret" };

@id("transfer-limit")
forbid (principal, action == Gatehouse::Action::"call_tool", resource == Gatehouse::Tool::"github__transfer")
when { context.numbers.hasTag("amount") && context.numbers.getTag("amount") > 1000 };
`;

/** Options of {@link GatewayUnderTest.start}. */
export interface StartOptions {
  /** Directory for the data dir, config and gateway log. */
  workDir: string;
  limits: FuzzLimits;
  /** Called with every line the gateway writes to stderr (its JSON logs). */
  onLogLine: (line: string) => void;
  /** Stop copying the log to gateway.log after this many bytes. */
  logFileCap: number;
}

/** A running `gatehouse start` child and what the fuzzer needs to talk to it. */
export class GatewayUnderTest {
  readonly clients: Record<'agent' | 'narrow', FuzzClient>;
  private tokens = new Map<TokenKind, { token: string; until: number }>();
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  private stopping = false;
  private logBytes = 0;
  private log: WriteStream;
  /** Bytes the gateway wrote to stderr. */
  stderrBytes = 0;
  /** Lines the gateway wrote to stderr. */
  stderrLines = 0;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly dataDir: string,
    readonly configPath: string,
    readonly limits: FuzzLimits,
    clients: Record<'agent' | 'narrow', FuzzClient>,
    log: WriteStream,
    private readonly gcFile: string,
  ) {
    this.clients = clients;
    this.log = log;
    child.once('exit', (code, signal) => {
      this.exitInfo = { code, signal, at: Date.now() };
    });
  }

  /** The gateway origin, e.g. http://127.0.0.1:41234. */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The MCP endpoint URL. */
  get url(): string {
    return `${this.origin}/mcp`;
  }

  /** The resource a token must be issued for. */
  get resource(): string {
    return this.url;
  }

  /** The child's pid. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Writes the config and policy, starts the child, waits for its banner and /readyz. */
  static async start(opts: StartOptions): Promise<GatewayUnderTest> {
    const workDir = resolve(opts.workDir);
    const dataDir = join(workDir, 'data');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const policyPath = join(workDir, 'fuzz.cedar');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(policyPath, POLICY);
    const clients = {
      agent: { id: 'fuzz-agent', secret: randomBytes(18).toString('base64url') },
      narrow: { id: 'fuzz-narrow', secret: randomBytes(18).toString('base64url') },
    };
    const require = createRequire(import.meta.url);
    const everything = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
    const l = opts.limits;
    const config = {
      server: { host: '127.0.0.1', port: 0 },
      auth: {
        mode: 'embedded',
        requiredScopes: ['mcp'],
        toolScopes: { github__transfer: 'mcp:admin' },
        methodScopes: { 'resources/subscribe': 'mcp:admin' },
        embedded: {
          accessTokenTtlSec: 3600,
          clients: [
            {
              clientId: clients.agent.id,
              clientSecret: clients.agent.secret,
              grantTypes: ['client_credentials', TOKEN_EXCHANGE],
              owner: 'fuzz-team',
            },
            {
              clientId: clients.narrow.id,
              clientSecret: clients.narrow.secret,
              grantTypes: ['client_credentials'],
              scope: 'mcp',
            },
          ],
        },
      },
      policy: {
        files: [policyPath],
        tools: {
          github__deploy: { risk: 'high', sideEffect: 'external' },
          github__delete_repo: { risk: 'medium', sideEffect: 'destructive' },
          github__search_code: { risk: 'low', sideEffect: 'read' },
          github__read_file: { risk: 'low', sideEffect: 'read' },
        },
      },
      limits: l,
      pinning: { newTools: 'trust' },
      upstreams: {
        github: {
          type: 'stdio',
          command: process.execPath,
          args: ['--import', 'tsx', join(ROOT, 'test/fixtures/tool-server.ts')],
          cwd: ROOT,
          pool: { warm: 1, max: 24 },
        },
        everything: {
          type: 'stdio',
          command: process.execPath,
          args: [everything, 'stdio'],
          pool: { warm: 1, max: 24 },
        },
      },
    };
    const configPath = join(workDir, 'gatehouse.json');
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`);
    const gcFile = join(workDir, 'gc.json');
    const child = spawn(
      process.execPath,
      [
        ...(DIST ? [] : ['--import', 'tsx']),
        ...(GC_PROBE ? ['--expose-gc', '--import', join(import.meta.dirname, 'gc-probe.ts')] : []),
        DIST ? join(ROOT, 'dist/cli/index.js') : join(ROOT, 'src/cli/index.ts'),
        'start',
        '--config',
        configPath,
        '--data-dir',
        dataDir,
        '--port',
        '0',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, GATEHOUSE_FUZZ_GC_FILE: gcFile },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const log = createWriteStream(join(workDir, 'gateway.log'));
    let pendingLine = '';
    let early = '';
    let gut: GatewayUnderTest | undefined;
    child.stderr?.on('data', (c: Buffer) => {
      const text = pendingLine + c.toString('utf8');
      const lines = text.split('\n');
      pendingLine = lines.pop() ?? '';
      if (gut) {
        gut.stderrBytes += c.length;
        gut.stderrLines += lines.length;
        if (gut.logBytes < opts.logFileCap) {
          gut.logBytes += c.length;
          gut.log.write(c);
        }
      } else {
        early += c.toString('utf8');
        log.write(c);
      }
      for (const line of lines) opts.onLogLine(line);
    });
    let banner = '';
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`gateway did not start in 60 s:\n${banner}\n${early}`)),
        60_000,
      );
      child.stdout?.on('data', (c: Buffer) => {
        banner += c.toString();
        const m = /MCP endpoint: +http:\/\/127\.0\.0\.1:(\d+)\//.exec(banner);
        if (m?.[1]) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`gateway exited ${code} during start:\n${early}`));
      });
    });
    gut = new GatewayUnderTest(child, port, dataDir, configPath, l, clients, log, gcFile);
    await gut.cli(['users', 'add', 'fuzz-user'], `${FUZZ_PASSWORD}\n`);
    // Upstreams ready (the warm pool has spawned), so the first inputs do not measure cold starts.
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      const ok = await fetch(`${gut.origin}/readyz`)
        .then((r) => r.status === 200)
        .catch(() => false);
      if (ok) break;
      await sleep(250);
    }
    return gut;
  }

  /** Whether the child is still running (the crash oracle). */
  alive(): boolean {
    return this.exitInfo === undefined;
  }

  /** How it exited, if it did. */
  exited(): { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined {
    return this.exitInfo;
  }

  /**
   * Forgets the cached tokens: the oauth family revokes tokens (RFC 7009) with the agents' own
   * credentials, so each family and the final health check start with fresh ones.
   */
  forgetTokens(): void {
    this.tokens.clear();
  }

  /** A pre-registered client's access token (cached until 5 minutes before expiry). */
  async token(kind: TokenKind): Promise<string> {
    const cached = this.tokens.get(kind);
    if (cached && cached.until > Date.now()) return cached.token;
    const client = kind === 'narrow' ? this.clients.narrow : this.clients.agent;
    const scope = kind === 'admin' ? 'mcp mcp:admin' : 'mcp';
    const body = await this.tokenRequest(client, {
      grant_type: 'client_credentials',
      scope,
      resource: this.resource,
    });
    const token = body.access_token;
    if (typeof token !== 'string') throw new Error(`no token for ${kind}: ${JSON.stringify(body)}`);
    const ttl = typeof body.expires_in === 'number' ? body.expires_in : 300;
    this.tokens.set(kind, { token, until: Date.now() + Math.max(10, ttl - 300) * 1000 });
    return token;
  }

  /** A token-endpoint request authenticated with client_secret_basic. */
  async tokenRequest(client: FuzzClient, params: Record<string, string>): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.origin}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams(params),
    });
    return (await res.json()) as Record<string, unknown>;
  }

  /** The AS signing key (private JWK) from the data dir, to mint tokens with hostile claims. */
  signingKey(): Record<string, unknown> {
    const keys = JSON.parse(readFileSync(join(this.dataDir, 'oauth-keys.json'), 'utf8')) as {
      signing: Record<string, unknown>[];
    };
    const k = keys.signing[0];
    if (!k) throw new Error('no signing key in oauth-keys.json');
    return k;
  }

  /** VmRSS of the gateway process in KiB (undefined once it exited). */
  rssKiB(): number | undefined {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
      return m?.[1] ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Collects garbage in the gateway (SIGUSR2 to the preloaded probe) and returns its memory usage. */
  async memoryAfterGc(): Promise<{ heapUsed: number; rss: number } | undefined> {
    if (!this.alive() || !GC_PROBE) return undefined;
    const before = Date.now();
    this.child.kill('SIGUSR2');
    for (let i = 0; i < 100; i++) {
      await sleep(50);
      try {
        const m = JSON.parse(readFileSync(this.gcFile, 'utf8')) as {
          heapUsed: number;
          rss: number;
          time: number;
        };
        if (m.time >= before) return m;
      } catch {
        // not written yet
      }
    }
    return undefined;
  }

  /** SIGTERM and wait for the exit (drain, then close). */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const started = Date.now();
    if (!this.stopping && this.alive()) {
      this.stopping = true;
      this.child.kill('SIGTERM');
    }
    const end = Date.now() + this.limits.drainTimeoutMs + 30_000;
    while (this.alive() && Date.now() < end) await sleep(50);
    if (this.alive()) this.child.kill('SIGKILL');
    while (this.alive()) await sleep(50);
    await new Promise<void>((r) => this.log.end(() => r()));
    const e = this.exitInfo;
    return { code: e?.code ?? null, signal: e?.signal ?? null, ms: Date.now() - started };
  }

  /** Whether the stop was ours (an exit before it is a crash). */
  get stopRequested(): boolean {
    return this.stopping;
  }

  /** `gatehouse audit verify` on the data dir (works while the gateway runs: WAL). */
  auditVerify(): Promise<{ code: number | null; output: string }> {
    return this.cli(['audit', 'verify']);
  }

  /** Runs `gatehouse ARGS --data-dir … --config …` and returns its exit code and output. */
  cli(args: string[], stdin?: string): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'src/cli/index.ts'),
          ...args,
          '--data-dir',
          this.dataDir,
          '--config',
          this.configPath,
        ],
        { cwd: ROOT, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] },
      );
      if (stdin !== undefined) child.stdin?.end(stdin);
      let output = '';
      child.stdout?.on('data', (c: Buffer) => {
        output += c.toString();
      });
      child.stderr?.on('data', (c: Buffer) => {
        output += c.toString();
      });
      child.once('exit', (code) => resolve({ code, output: output.trim() }));
    });
  }

  /** Every audit record line (`<hash> <body>`), segment by segment. */
  *auditLines(): Generator<string> {
    const dir = join(this.dataDir, 'audit');
    if (!existsSync(dir)) return;
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      for (const line of text.split('\n')) if (line.length > 0) yield line;
    }
  }
}
