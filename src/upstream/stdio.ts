/**
 * stdio upstream: one child process speaking newline-delimited JSON-RPC.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { ResolvedUpstreamConfig } from '../config/schema.ts';
import { GatehouseError } from '../errors.ts';
import { classify, type JsonRpcMessage } from '../protocol/jsonrpc.ts';
import type { UpstreamTransport } from './transport.ts';

/**
 * Variables passed through from the gateway's environment. Everything else is
 * withheld: the gateway's own secrets must never reach an upstream process.
 */
const INHERITED_ENV = ['PATH', 'HOME', 'LOGNAME', 'USER', 'SHELL', 'TERM', 'LANG', 'TMPDIR', 'SystemRoot'];

export function upstreamEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Bytes of a discarded oversized line kept to recover its JSON-RPC id. */
const ID_PROBE_BYTES = 512;

export class StdioTransport implements UpstreamTransport {
  onmessage: (msg: JsonRpcMessage) => void = () => {};
  onclose: (reason: GatehouseError) => void = () => {};
  onoversize: (id: string | number | undefined) => void = () => {};

  private readonly child: ChildProcess;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** True while discarding the rest of an oversized line. */
  private discarding = false;
  private discardHead = '';
  private discardTail = '';
  private closed = false;
  /** Settles when the process has exited, whoever ended it. */
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    cfg: Extract<ResolvedUpstreamConfig, { type: 'stdio' }>,
    private readonly maxMessageBytes: number,
    private readonly log: Logger,
  ) {
    this.child = spawn(cfg.command, cfg.args, {
      cwd: cfg.cwd,
      env: upstreamEnv(cfg.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      // INVARIANT: never through a shell; arguments are not interpreted.
      shell: false,
      windowsHide: true,
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      // A command that cannot be spawned emits 'error' and never 'exit'.
      this.child.once('error', () => resolve());
    });
    this.child.stdout?.on('data', (chunk: Buffer) => this.onData(chunk));
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.log.debug(
        { upstream: name, pid: this.child.pid, stderr: chunk.toString('utf8', 0, 2000) },
        'upstream stderr',
      );
    });
    this.child.stdin?.on('error', () => {
      // EPIPE after the child died; the exit handler reports it.
    });
    this.child.once('error', (err) =>
      this.end(new GatehouseError('upstream_unavailable', undefined, { detail: err.message })),
    );
    this.child.once('exit', (code, signal) => {
      this.end(
        new GatehouseError('upstream_failed', `upstream ${name} exited`, {
          detail: `exit code ${code ?? 'none'}, signal ${signal ?? 'none'}`,
        }),
      );
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.closed;
  }

  send(msg: JsonRpcMessage): Promise<void> {
    if (this.closed || !this.child.stdin?.writable) {
      return Promise.reject(
        new GatehouseError('upstream_unavailable', `upstream ${this.name} is not running`),
      );
    }
    // A value JSON cannot write (nesting past the stack) fails this send, never the caller's frame.
    let line: string;
    try {
      line = `${JSON.stringify(msg)}\n`;
    } catch {
      return Promise.reject(new GatehouseError('invalid_request', 'the message cannot be serialised'));
    }
    // Writes to one pipe are ordered; there is nothing to wait for.
    this.child.stdin.write(line);
    return Promise.resolve();
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        this.push(chunk.subarray(start));
        return;
      }
      this.push(chunk.subarray(start, nl));
      this.flushLine();
      start = nl + 1;
    }
  }

  private push(part: Buffer): void {
    if (part.length === 0) return;
    if (this.discarding) {
      this.discardTail = (this.discardTail + part.toString('latin1')).slice(-ID_PROBE_BYTES);
      return;
    }
    this.buffered += part.length;
    if (this.buffered > this.maxMessageBytes) {
      // T30: an unbounded line must not grow memory without limit. Discard the
      // message, keeping its head and tail to find the id it answers.
      this.discarding = true;
      this.discardHead = Buffer.concat([...this.chunks, part]).toString('latin1', 0, ID_PROBE_BYTES);
      this.discardTail = part.toString('latin1').slice(-ID_PROBE_BYTES);
      this.chunks = [];
      this.buffered = 0;
      return;
    }
    this.chunks.push(part);
  }

  private flushLine(): void {
    if (this.discarding) {
      this.discarding = false;
      this.onoversize(probeId(this.discardHead) ?? probeId(this.discardTail));
      this.discardHead = '';
      this.discardTail = '';
      return;
    }
    if (this.chunks.length === 0) return;
    const line = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    let value: unknown;
    try {
      value = JSON.parse(line.toString('utf8'));
    } catch {
      this.log.warn(
        { upstream: this.name, line: line.toString('utf8', 0, 200) },
        'upstream wrote a non-JSON line',
      );
      return;
    }
    const c = classify(value);
    if (c.kind === 'invalid') {
      this.log.warn({ upstream: this.name, reason: c.reason }, 'upstream sent an invalid JSON-RPC message');
      return;
    }
    this.onmessage(c.msg);
  }

  private end(reason: GatehouseError): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose(reason);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      this.closed = true;
      return;
    }
    this.closed = true;
    // Spec shutdown sequence: close stdin, then SIGTERM, then SIGKILL.
    this.child.stdin?.end();
    const done = this.exited;
    const term = setTimeout(() => this.child.kill('SIGTERM'), 500);
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await done;
    clearTimeout(term);
    clearTimeout(kill);
  }
}

function probeId(text: string): string | number | undefined {
  const m = /"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,200}")/.exec(text);
  if (!m?.[1]) return undefined;
  const raw = m[1];
  return raw.startsWith('"') ? (JSON.parse(raw) as string) : Number(raw);
}
