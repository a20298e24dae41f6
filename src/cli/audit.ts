/**
 * CLI verbs over the audit log (docs/audit.md):
 *
 *   gatehouse audit verify [--from N] [--to N] [--public-key FILE] [--chain NAME] [--json]
 *   gatehouse audit query [filters] [--json]
 *   gatehouse audit timeline GRANT_ID [--json]
 *   gatehouse audit export [--format jsonl|ocsf] [filters] [--out FILE]
 *
 * All take --data-dir DIR (default ./.gatehouse) and --config FILE. They read
 * the database while a gateway may be writing it (WAL allows that).
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { formatLine, formatTimeline, toJsonLine, toOcsf, toRecords } from '../audit/format.ts';
import { type AuditKey, auditPublicKeyFromPem, loadAuditKey } from '../audit/keys.ts';
import { verifyAuditLog } from '../audit/verify.ts';
import { openConfiguredStorage } from '../storage/open.ts';
import { PostgresStorage } from '../storage/postgres/index.ts';
import type { AuditFilter } from '../storage/types.ts';
import { openPrivateFile } from '../util/private-file.ts';
import { type CliIo, configFor, openExistingStorage, parseCli, STATE_OPTIONS } from './shared.ts';

/** Output streams of the verbs (tests pass their own). */
export type AuditCliIo = Pick<CliIo, 'stdout' | 'stderr'>;

/** Usage lines, for the top-level help. */
export const AUDIT_USAGE = `  audit verify [--from N] [--to N] [--public-key FILE] [--chain NAME] [--json]
        check the audit hash chain and signed checkpoints; exit 1 on any break
  audit query [--agent A] [--user U] [--grant G] [--session S] [--request R] [--tool T]
              [--server S] [--decision D] [--jti J] [--type T] [--since T] [--until T]
              [--limit N] [--json]
        audit events matching every filter (T: ISO time, epoch ms, or 15m/2h/7d ago;
        --tool: server__tool or the plain name on any server)
  audit timeline GRANT_ID [--json]
        every event of one grant in order, with deciding policies and approvers
  audit export [--format jsonl|ocsf] [filters] [--out FILE]
        JSON Lines, or OCSF API Activity (class 6003) JSON Lines
        (all audit verbs take --data-dir DIR and --config FILE)
`;

const COMMON = { ...STATE_OPTIONS, json: { type: 'boolean', default: false } } as const;

/** Filters of `query` and `export`: string options, one per audit index column. */
const FILTER_NAMES = [
  'agent',
  'user',
  'grant',
  'session',
  'request',
  'tool',
  'server',
  'decision',
  'jti',
  'type',
  'since',
  'until',
  'limit',
] as const;
const FILTERS = Object.fromEntries(FILTER_NAMES.map((n) => [n, { type: 'string' }])) as {
  [K in (typeof FILTER_NAMES)[number]]: { type: 'string' };
};

class UsageError extends Error {}

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** ISO 8601, epoch ms, or a duration ago (`15m`, `2h`, `7d`) -> epoch ms. */
export function parseTime(text: string, now = Date.now()): number {
  const d = DURATION.exec(text);
  if (d) return now - Number(d[1]) * UNIT_MS[d[2] as keyof typeof UNIT_MS];
  if (/^\d+$/.test(text)) return Number(text);
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`cannot parse time \`${text}\``);
  return t;
}

function positiveInt(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer`);
  return n;
}

type FilterValues = { [K in keyof typeof FILTERS]?: string | undefined };

function toFilter(v: FilterValues): AuditFilter {
  const f: AuditFilter = {
    agent: v.agent,
    user: v.user,
    grantId: v.grant,
    sessionId: v.session,
    requestId: v.request,
    server: v.server,
    tool: v.tool,
    decision: v.decision,
    jti: v.jti,
    type: v.type,
    since: v.since !== undefined ? parseTime(v.since) : undefined,
    until: v.until !== undefined ? parseTime(v.until) : undefined,
    limit: positiveInt(v.limit, 'limit'),
  };
  // `--tool` takes the federated name `server__tool` (what agents call, what the gateway
  // records) or a plain name; the index matches either spelling (SqliteAuditIndex.query). It
  // used to split the name into server and plain tool, which never matched a gateway record.
  for (const k of Object.keys(f) as (keyof AuditFilter)[]) if (f[k] === undefined) delete f[k];
  return f;
}

async function verify(argv: string[], io: AuditCliIo): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    ...COMMON,
    from: { type: 'string' },
    to: { type: 'string' },
    'public-key': { type: 'string' },
    chain: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError('audit verify takes no positional arguments');
  // ORDER: the data dir is opened (and repaired) before the key in it is read: a key file left
  // group-readable is refused by loadAuditKey, repaired by openExistingStorage.
  const storage = openExistingStorage(values, io.stderr);
  let key: AuditKey | undefined;
  try {
    if (values['public-key']) key = auditPublicKeyFromPem(readFileSync(values['public-key'], 'utf8'));
    else key = loadAuditKey(values['data-dir'], { create: false });
  } catch (err) {
    await storage.close();
    throw err;
  }
  // A cluster on PostgreSQL keeps one chain per replica (bus.replicaId): every one is verified
  // (or the one --chain names); SQLite and a single gateway have one chain.
  const chains: (string | undefined)[] =
    storage instanceof PostgresStorage
      ? values.chain !== undefined
        ? [values.chain]
        : await storage.auditChains().catch(async (err: unknown) => {
            await storage.close();
            throw err;
          })
      : [undefined];
  if (storage instanceof PostgresStorage && chains.length === 0) chains.push(undefined);
  let ok = true;
  const results: unknown[] = [];
  try {
    for (const chain of chains) {
      const config = configFor(values.config);
      const store =
        chain === undefined || !(storage instanceof PostgresStorage)
          ? storage
          : openConfiguredStorage(config, values['data-dir'], { auditChain: chain, onPoolError: () => {} });
      try {
        const r = await verifyAuditLog(store.audit, {
          from: positiveInt(values.from, 'from'),
          to: positiveInt(values.to, 'to'),
          key,
        });
        ok &&= r.ok;
        if (values.json) {
          results.push(chain === undefined ? r : { chain, ...r });
          continue;
        }
        const range = r.first === undefined ? 'empty log' : `seq ${r.first}..${r.last}`;
        io.stdout.write(
          `${chain === undefined || (chains.length === 1 && values.chain === undefined) ? '' : `chain ${chain}: `}${r.ok ? 'ok' : 'BROKEN'}: ${range}, ${r.checked} records checked, ${r.checkpoints} valid checkpoints` +
            `${r.lastCheckpointSeq !== undefined ? ` (last at seq ${r.lastCheckpointSeq})` : ''}\n`,
        );
        if (!key && r.checkpoints === 0)
          io.stdout.write('warning: no audit key found; checkpoints not checked\n');
        for (const t of r.tornTails) {
          io.stdout.write(
            `warning: torn last line in ${t.segment} at byte ${t.offset} (${t.bytes} bytes): a write cut short ` +
              '(crash, power loss or full disk), never acknowledged; the gateway removes it at start-up\n',
          );
        }
        if (r.unsignedTail > 0) {
          io.stdout.write(
            `note: ${r.unsignedTail} records after the last checkpoint are protected by the hash chain only\n`,
          );
        }
        for (const b of r.breaks) {
          io.stdout.write(
            `  seq ${b.seq}${b.eventId ? ` (event ${b.eventId})` : ''}: ${b.kind}: ${b.message}\n`,
          );
        }
      } finally {
        if (store !== storage) await store.close();
      }
    }
    // One chain: its result as before; several (a cluster): every chain's, and whether all are intact.
    if (values.json)
      io.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : { ok, chains: results })}\n`);
    return ok ? 0 : 1;
  } finally {
    await storage.close();
  }
}

async function query(argv: string[], io: AuditCliIo): Promise<number> {
  const { values, positionals } = parseCli(argv, { ...COMMON, ...FILTERS });
  if (positionals.length > 0) throw new UsageError('audit query takes no positional arguments');
  const filter = toFilter(values);
  const storage = openExistingStorage(values, io.stderr);
  try {
    const records = toRecords(await storage.audit.query(filter));
    if (values.json) {
      for (const r of records) io.stdout.write(`${toJsonLine(r)}\n`);
      return 0;
    }
    for (const r of records) io.stdout.write(`${formatLine(r)}\n`);
    const grants = [...new Set(records.flatMap((r) => (r.event.grantId ? [r.event.grantId] : [])))];
    const sessions = [...new Set(records.flatMap((r) => (r.event.sessionId ? [r.event.sessionId] : [])))];
    io.stdout.write(
      `${records.length} events; grants: ${grants.join(', ') || '-'}; sessions: ${sessions.join(', ') || '-'}\n`,
    );
    return 0;
  } finally {
    await storage.close();
  }
}

async function timeline(argv: string[], io: AuditCliIo): Promise<number> {
  const { values, positionals } = parseCli(argv, COMMON);
  const [grant, ...extra] = positionals;
  if (!grant || extra.length > 0) throw new UsageError('usage: gatehouse audit timeline GRANT_ID');
  const storage = openExistingStorage(values, io.stderr);
  try {
    const records = toRecords(await storage.audit.query({ grantId: grant }));
    if (values.json) for (const r of records) io.stdout.write(`${toJsonLine(r)}\n`);
    else io.stdout.write(formatTimeline(grant, records));
    return records.length > 0 ? 0 : 1;
  } finally {
    await storage.close();
  }
}

async function exportLog(argv: string[], io: AuditCliIo): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    ...COMMON,
    ...FILTERS,
    format: { type: 'string', default: 'jsonl' },
    out: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError('audit export takes no positional arguments');
  if (values.format !== 'jsonl' && values.format !== 'ocsf')
    throw new UsageError('--format is jsonl or ocsf');
  const filter = toFilter(values);
  const storage = openExistingStorage(values, io.stderr);
  try {
    // Owner-only (a file that exists loses its group/other bits): an export holds the same
    // (redacted) data as the database, and may well be written into the data dir.
    const out = values.out
      ? createWriteStream(values.out, { fd: openPrivateFile(values.out, 'w') })
      : io.stdout;
    // Paged by seq so an export of a large log does not hold it all in memory.
    const page = 5000;
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
    let afterSeq = 0;
    while (remaining > 0) {
      const rows = await storage.audit.query({ ...filter, afterSeq, limit: Math.min(page, remaining) });
      for (const r of toRecords(rows)) {
        const line = `${values.format === 'ocsf' ? JSON.stringify(toOcsf(r)) : toJsonLine(r)}\n`;
        if (!out.write(line)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
      }
      const last = rows[rows.length - 1];
      if (!last || rows.length < page) break;
      afterSeq = last.seq;
      remaining -= rows.length;
    }
    if (out !== io.stdout) {
      out.end();
      await finished(out);
    }
    return 0;
  } finally {
    await storage.close();
  }
}

/** `gatehouse audit <verb> ...`; resolves to the exit code. */
export async function auditCommand(argv: string[], io: AuditCliIo = process): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'verify':
        return await verify(rest, io);
      case 'query':
        return await query(rest, io);
      case 'timeline':
        return await timeline(rest, io);
      case 'export':
        return await exportLog(rest, io);
      default:
        io.stderr.write(`usage:\n${AUDIT_USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`gatehouse: ${err.message}\n`);
      return 2;
    }
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`gatehouse: ${err.message}\nusage:\n${AUDIT_USAGE}`);
      return 2;
    }
    io.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
