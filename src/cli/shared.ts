/**
 * What the verb groups of the `gatehouse` command share: their streams, the options every
 * stateful verb takes, opening the config and the store, reading a hidden value, tables and
 * durations for humans. One copy each; a verb file holds only its own verbs.
 */
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { resolveSecret } from '../auth/as/clients.ts';
import { pokeOnce } from '../cluster/bus.ts';
import { pokingOnClose } from '../cluster/notify.ts';
import { loadConfigFile, parseConfig } from '../config/load.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { openConfiguredStorage, sqlitePath } from '../storage/open.ts';
import type { Storage } from '../storage/types.ts';
import { describeRepairs, secureDataDir } from '../util/data-dir.ts';

/** Streams and environment the verbs use (tests pass their own). */
export interface CliIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

/** The process's own streams and environment. */
export const PROCESS_IO: CliIo = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
};

/** The data dir when `--data-dir` is not given. */
export const DEFAULT_DATA_DIR = './.gatehouse';

/** `parseArgs` options taken by every verb that reads the gateway's state. */
export const STATE_OPTIONS = {
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
  config: { type: 'string' },
} as const;

/** `parseArgs` options of the list/revoke verb groups (`grants`, `credentials`). */
export const LIST_REVOKE_OPTIONS = {
  ...STATE_OPTIONS,
  json: { type: 'boolean', default: false },
  agent: { type: 'string' },
  user: { type: 'string' },
  reason: { type: 'string' },
} as const;

/**
 * A verb's arguments: its options (strict: an unknown option is an error) and positionals. A
 * parse error is a `TypeError` with an `ERR_PARSE_ARGS_*` code; `main` turns it into usage and exit 2.
 */
export function parseCli<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

/** The config named by --config, else the defaults (enough to find the store in --data-dir). */
export function configFor(file: string | undefined): GatehouseConfig {
  if (file) return loadConfigFile(file);
  return parseConfig({ upstreams: { demo: { type: 'http', url: 'http://127.0.0.1/unused' } } });
}

/**
 * Every verb that opens the data dir calls this first: the directory is made owner-only (created
 * 0700 when `create`, else left missing for the verb to report), and what had to be repaired is
 * written to `stderr` as a warning. Throws `DataDirError` when it cannot be repaired.
 */
export function openDataDir(dataDir: string, stderr: Writable, opts: { create: boolean }): void {
  const repairs = secureDataDir(dataDir, opts);
  if (repairs.length > 0) stderr.write(`gatehouse: warning: ${describeRepairs(dataDir, repairs)}\n`);
}

/** The store, created if missing (verbs that add state: `users add`). */
export function openStorage(
  config: GatehouseConfig,
  dataDir: string,
  stderr: Writable = process.stderr,
): Storage {
  openDataDir(dataDir, stderr, { create: true });
  return busAware(config, openConfiguredStorage(config, dataDir), stderr);
}

/**
 * The existing store of the gateway that `--config`/`--data-dir` describe; opening a missing one
 * would create it, so a typo in --data-dir is an error.
 */
export function openExistingStorage(
  values: {
    config?: string | undefined;
    'data-dir': string;
  },
  stderr: Writable = process.stderr,
): Storage {
  openDataDir(values['data-dir'], stderr, { create: false });
  const config = configFor(values.config);
  // A PostgreSQL store is on its server (its schema is checked when first used).
  if (config.storage.kind === 'sqlite') {
    const path = sqlitePath(config, values['data-dir']);
    if (path !== ':memory:' && !existsSync(path)) throw new Error(`no database at ${path}`);
  }
  return busAware(config, openConfiguredStorage(config, values['data-dir']), stderr);
}

/**
 * In cluster mode (bus.kind redis) the replicas are told at once of what the verb wrote (a revoked
 * grant, a decided approval…), when it closes the store; otherwise they notice on their store poll.
 */
function busAware(config: GatehouseConfig, storage: Storage, stderr: Writable): Storage {
  const bus = config.bus;
  if (bus.kind !== 'redis' || bus.url === undefined) return storage;
  const url = bus.url;
  return pokingOnClose(
    storage,
    (kinds) =>
      pokeOnce(
        url,
        bus.prefix,
        kinds,
        bus.password === undefined ? undefined : resolveSecret(bus.password, 'bus.password'),
      ),
    (err) =>
      stderr.write(
        `gatehouse: warning: cannot reach the cluster bus (${err instanceof Error ? err.message : String(err)}); the gateways notice on their next store poll\n`,
      ),
  );
}

/** Removes one trailing newline (`\n` or `\r\n`), as `echo` or an editor adds. */
export function trimNewline(b: Buffer): Buffer {
  if (b.length > 0 && b[b.length - 1] === 0x0a) {
    return b.subarray(0, b.length >= 2 && b[b.length - 2] === 0x0d ? -2 : -1);
  }
  return b;
}

/**
 * A value that must not be echoed (password, secret): on a terminal, a prompt without echo ending at
 * the first newline; otherwise all of stdin with one trailing newline removed. The caller owns the
 * buffer and should zero it when done.
 */
export async function readHidden(io: CliIo, prompt: string): Promise<Buffer> {
  const { stdin } = io;
  if (stdin.isTTY && stdin.setRawMode) {
    io.stderr.write(prompt);
    stdin.setRawMode(true);
    const bytes: number[] = [];
    try {
      for await (const chunk of stdin) {
        for (const byte of typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer)) {
          if (byte === 0x0d || byte === 0x0a) {
            io.stderr.write('\n');
            return Buffer.from(bytes);
          }
          if (byte === 0x03) throw new Error('interrupted');
          if (byte === 0x7f) bytes.pop();
          else bytes.push(byte);
        }
      }
      return Buffer.from(bytes);
    } finally {
      stdin.setRawMode(false);
      stdin.pause();
      bytes.fill(0);
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return trimNewline(Buffer.concat(chunks));
}

/** Rows as left-aligned columns (the first row is the header), one line each. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** Writes {@link formatTable} of the rows to stdout. */
export function printTable(rows: string[][], out: Writable = process.stdout): void {
  out.write(formatTable(rows));
}

/** A duration for humans: 45s, 12m, 3h. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** An instant for humans: ISO 8601 to the second, or `-`. */
export function instant(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
