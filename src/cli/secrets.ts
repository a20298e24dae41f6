/**
 * `gatehouse secrets set|list|rm|rotate-key`: the credential broker's secret store
 * (src/secrets/) from the command line.
 *
 * INVARIANT: a value never comes from argv (shell history, `ps`) and is never
 * printed: `set` reads stdin or `--from-file`; argument-parsing errors are reported
 * without echoing the arguments (node's parseArgs quotes them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KeyError } from '../secrets/keys.ts';
import { MIN_SECRET_LENGTH } from '../secrets/leak-guard.ts';
import { secretsDbPath } from '../secrets/sqlite-repo.ts';
import { openSecretStore, SecretError } from '../secrets/store.ts';
import {
  type CliIo,
  DEFAULT_DATA_DIR,
  formatTable,
  instant,
  openDataDir,
  PROCESS_IO,
  readHidden,
  trimNewline,
} from './shared.ts';

export const SECRETS_USAGE = `  secrets set NAME [--service S] [--from-file F] [--data-dir DIR]
        store a secret, encrypted; the value comes from stdin (or F), never the command line
  secrets list [--json] [--data-dir DIR]
        name, service, created, last used (never values)
  secrets rm NAME [--data-dir DIR]
  secrets rotate-key [--prune] [--data-dir DIR]
        re-wrap every data key under a new master key (GATEHOUSE_MASTER_KEY, else the key file)
`;

const OPTIONS = {
  service: { type: 'string' },
  'from-file': { type: 'string' },
  json: { type: 'boolean', default: false },
  prune: { type: 'boolean', default: false },
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
} as const;

/** Runs `gatehouse secrets …`; returns the exit code. */
export async function secretsCommand(argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  const [verb, ...rest] = argv;
  const usage = (msg: string): number => {
    io.stderr.write(`gatehouse secrets: ${msg}\nusage:\n${SECRETS_USAGE}`);
    return 2;
  };
  if (verb !== 'set' && verb !== 'list' && verb !== 'rm' && verb !== 'rotate-key')
    return usage('unknown verb');
  let parsed: ReturnType<
    typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true }>
  >;
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs quotes the offending argument, which may be a value typed by mistake: say what kind only.
    const code = (err as { code?: string }).code ?? 'ERR_PARSE_ARGS';
    return usage(`invalid arguments (${code}); values are never accepted as arguments`);
  }
  const { values, positionals } = parsed;
  const wantName = verb === 'set' || verb === 'rm';
  if (positionals.length > (wantName ? 1 : 0)) {
    return usage(
      verb === 'set'
        ? 'refusing a secret value on the command line (it would land in shell history and ps): pipe it on stdin or use --from-file'
        : 'too many arguments',
    );
  }
  const name = positionals[0];
  if (wantName && name === undefined) return usage(`${verb} needs NAME`);

  const dataDir = values['data-dir'];
  // ORDER: before the store opens its database and key file (a group-readable key file is refused).
  openDataDir(dataDir, io.stderr, { create: verb === 'set' });
  if (verb !== 'set' && !existsSync(secretsDbPath(dataDir))) {
    // Opening would create it: a typo in --data-dir must not look like an empty store.
    io.stderr.write(`gatehouse secrets ${verb}: no secrets database at ${secretsDbPath(dataDir)}\n`);
    return 1;
  }
  let opened: ReturnType<typeof openSecretStore> | undefined;
  try {
    opened = openSecretStore(dataDir, { env: io.env });
    const { store } = opened;
    switch (verb) {
      case 'set': {
        const file = values['from-file'];
        const value =
          file !== undefined ? trimNewline(readFileSync(file)) : await readHidden(io, 'value (not echoed): ');
        try {
          const info = await store.set(name as string, value, { service: values.service });
          for (const w of opened.warnings) io.stderr.write(`gatehouse: warning: ${w}\n`);
          if (value.length < MIN_SECRET_LENGTH) {
            io.stderr.write(
              `gatehouse: warning: \`${info.name}\` is shorter than ${MIN_SECRET_LENGTH} bytes: the leak guard cannot redact it\n`,
            );
          }
          io.stdout.write(`stored \`${info.name}\` (${value.length} bytes, master key ${info.keyId})\n`);
        } finally {
          value.fill(0);
        }
        return 0;
      }
      case 'list': {
        const all = await store.list();
        if (values.json) {
          io.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
          return 0;
        }
        if (all.length === 0) {
          io.stdout.write('no secrets\n');
          return 0;
        }
        io.stdout.write(
          formatTable([
            ['NAME', 'SERVICE', 'CREATED', 'UPDATED', 'LAST USED', 'MASTER KEY'],
            ...all.map((s) => [
              s.name,
              s.service ?? '-',
              instant(s.createdAt),
              instant(s.updatedAt),
              instant(s.lastUsedAt),
              s.keyId,
            ]),
          ]),
        );
        return 0;
      }
      case 'rm': {
        if (!(await store.remove(name as string))) {
          io.stderr.write(`gatehouse secrets rm: no secret \`${name}\`\n`);
          return 1;
        }
        io.stdout.write(`removed \`${name}\`\n`);
        return 0;
      }
      default: {
        // 'rotate-key'
        const r = await store.rotateKey({ prune: values.prune });
        io.stdout.write(
          `re-wrapped ${r.rewrapped} data key(s) under master key ${r.keyId}${r.pruned.length > 0 ? `; forgot ${r.pruned.join(', ')}` : ''}\n`,
        );
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof SecretError || err instanceof KeyError) {
      io.stderr.write(`gatehouse secrets ${verb}: ${err.message}\n`);
      return 1;
    }
    // Any other failure (I/O, SQLite): its message, never a stack that could hold buffers.
    io.stderr.write(`gatehouse secrets ${verb}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await opened?.store.close();
  }
}
