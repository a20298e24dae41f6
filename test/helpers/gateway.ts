/** Test helpers: a real gateway in-process or through the CLI, and a real SDK client connected to it. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import pino from 'pino';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { type RunningGateway, startGateway } from '../../src/gateway.ts';

const ROOT = join(import.meta.dirname, '..', '..');

export interface TestGateway extends RunningGateway {
  dataDir: string;
}

/** Starts a gateway on an ephemeral loopback port with a temp data dir. */
export async function startTestGateway(
  config: GatehouseConfigInput,
  opts: { dataDir?: string; keepDataDir?: boolean } = {},
): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const level = process.env.GATEHOUSE_TEST_LOG ?? 'silent';
  let policy = config.policy;
  if (policy === undefined) {
    // Tests that are not about policy allow everything; policy tests pass their own files.
    const file = join(dataDir, 'allow-all.cedar');
    writeFileSync(file, '@id("test-allow-all")\npermit (principal, action, resource);\n');
    policy = { files: [file] };
  }
  const gw = await startGateway({
    // Tests that are not about identity run without it; identity tests pass their own auth config.
    config: {
      auth: { mode: 'none' },
      ...config,
      policy,
      // Tests that are not about pinning trust tools on first use (the default, quarantine, would hide
      // every tool until approved); pinning tests pass their own section.
      pinning: config.pinning ?? { newTools: 'trust' },
      server: { host: '127.0.0.1', port: 0, ...config.server },
    },
    dataDir,
    logger: pino({ level }, pino.destination(2)),
  });
  const close = gw.close;
  return Object.assign(gw, {
    dataDir,
    close: async () => {
      await close();
      if (!opts.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** A connected MCP SDK client; `setup` may register request handlers before connecting. */
export async function connectClient(
  url: string,
  opts: { capabilities?: Record<string, unknown>; setup?: (c: Client) => void } = {},
): Promise<Client> {
  const client = new Client(
    { name: 'gatehouse-test', version: '1.0.0' },
    { capabilities: opts.capabilities ?? {} },
  );
  opts.setup?.(client);
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** Node executable + args for a stdio server shipped as an npm bin script. */
export function nodeServer(modulePath: string, ...args: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [modulePath, ...args] };
}

/**
 * The bank fixture (test/fixtures/approval-server.ts: `transfer`, `balance`, …) as a stdio upstream,
 * started on first use; `events`: the file it appends each transfer that ran to.
 */
export function bankUpstream(events?: string, env: StdioInput['env'] = {}): StdioInput {
  return {
    type: 'stdio',
    command: process.execPath,
    args: ['--import', 'tsx', join(ROOT, 'test/fixtures/approval-server.ts')],
    cwd: ROOT,
    env: { ...env, ...(events ? { APPROVAL_SERVER_EVENTS: events } : {}) },
    pool: { warm: 0 },
  };
}

type StdioInput = Extract<NonNullable<GatehouseConfigInput['upstreams']>[string], { type: 'stdio' }>;

/** Every tool name, following the merged list's cursors (one page per upstream). */
export async function allTools(client: Client): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return names;
}

/** Polls `check` until it holds (fails the test after `ms`). */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting until ${what}`);
}

/** Whether process `pid` has exited. */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

export interface CliGateway {
  readonly child: ChildProcess;
  /** The MCP endpoint from the start banner. */
  readonly url: string;
  readonly origin: string;
  /** Everything the gateway wrote to stderr so far (its JSON logs). */
  stderr(): string;
}

/** `gatehouse start ARGS --port 0` as a child process (the real CLI), once its banner names the endpoint. */
export async function startCliGateway(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; nodeArgs?: string[] } = {},
): Promise<CliGateway> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      ...(opts.nodeArgs ?? []),
      join(ROOT, 'src/cli/index.ts'),
      'start',
      ...args,
      '--port',
      '0',
    ],
    { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  let banner = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`did not start:\n${banner}\n${stderr}`)), 30_000);
    child.stdout?.on('data', (c: Buffer) => {
      banner += c.toString();
      const m = /MCP endpoint: +(http:\/\/[^\s]+)/.exec(banner);
      if (m?.[1]) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}:\n${stderr}`)));
  });
  return { child, url, origin: new URL(url).origin, stderr: () => stderr };
}

/**
 * Calls `tool` until the gateway refuses it (a revocation written by the CLI takes effect on the
 * gateway's next poll, within 250 ms) and returns the error.
 */
export async function refusedOnceRevoked(client: Client, tool: string): Promise<McpError> {
  let err: McpError | undefined;
  await eventually(`${tool} is refused`, async () => {
    const r = await client.callTool({ name: tool, arguments: {} }).catch((e: unknown) => e);
    if (r instanceof McpError) err = r;
    return err !== undefined;
  });
  return err as McpError;
}

/** The JSON-RPC error a tool call failed with (the test fails when the call succeeds). */
export async function callError(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<McpError> {
  try {
    await client.callTool({ name, arguments: args });
  } catch (err) {
    assert.ok(err instanceof McpError, `expected a JSON-RPC error, got ${String(err)}`);
    return err;
  }
  assert.fail(`${name} was allowed`);
}

/** An audit event as stored (the record's `event`). */
export type StoredAuditEvent = Record<string, unknown> & { detail?: Record<string, unknown> };

/** The audit events as written (the segment files, what write-ahead makes durable), in order, optionally of one type. */
export function auditEvents(dataDir: string, type?: string): StoredAuditEvent[] {
  const dir = join(dataDir, 'audit');
  const out: StoredAuditEvent[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort()) {
    const text = readFileSync(join(dir, name), 'utf8');
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
      if (!line) continue;
      const event = (JSON.parse(line.slice(65)) as { event: StoredAuditEvent }).event;
      if (type === undefined || event.type === type) out.push(event);
    }
  }
  return out;
}
