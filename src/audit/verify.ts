/**
 * Verification of the audit log: recomputes every record's hash, follows the
 * chain, checks the query index against the records, and checks every
 * signed checkpoint (signature, that its record still has the signed hash, that
 * the log still reaches it, and that no record below the signed retention floor
 * boundary is missing). Reports every break with its position, not just the first.
 */
import type { AuditCheckpointRow, AuditRepo, AuditRow, AuditTornTail } from '../storage/types.ts';
import { type CheckpointPayload, GENESIS_HASH, parseRecord, sha256Hex } from './chain.ts';
import { type AuditKey, verifyPayload } from './keys.ts';

/** Kinds of break, each with a fixed meaning (docs/audit.md). */
export type AuditBreakKind =
  | 'hash_mismatch'
  | 'chain_broken'
  | 'gap'
  | 'seq_mismatch'
  | 'index_mismatch'
  | 'bad_record'
  | 'checkpoint_signature'
  | 'checkpoint_mismatch'
  | 'checkpoint_unverifiable'
  | 'truncated'
  | 'floor_mismatch';

/** One detected problem. `seq` is where it was found. */
export interface AuditBreak {
  kind: AuditBreakKind;
  seq: number;
  eventId?: string;
  message: string;
}

/** Options of {@link verifyAuditLog}. */
export interface VerifyOptions {
  /** First seq to check (default: the oldest retained). */
  from?: number;
  /** Last seq to check (default: the newest). */
  to?: number;
  /** Checkpoint key; without it checkpoints cannot be trusted and are reported. */
  key?: AuditKey;
  /** The head a live writer knows it committed; a shorter log is truncated. */
  expectHead?: { seq: number; hash: string };
  /** Rows read per page (default 2000). */
  pageSize?: number;
}

/** The outcome of a verification. */
export interface VerifyResult {
  ok: boolean;
  breaks: AuditBreak[];
  /** Oldest and newest retained seq (undefined when empty). */
  first: number | undefined;
  last: number | undefined;
  /** Records checked. */
  checked: number;
  /** Valid checkpoints. */
  checkpoints: number;
  lastCheckpointSeq: number | undefined;
  /** Records after the last valid checkpoint: protected by the chain only (docs/audit.md). */
  unsignedTail: number;
  /**
   * Torn lines: bytes after a segment's last complete line, a write cut short (crash, power loss,
   * full disk). Not a break (no record is in them, none was acknowledged; start-up cuts them off
   * and records that), but never silent: the CLI prints each as a warning.
   */
  tornTails: AuditTornTail[];
}

interface Checked {
  cp: AuditCheckpointRow;
  payload: CheckpointPayload;
}

function checkCheckpoints(
  cps: AuditCheckpointRow[],
  key: AuditKey | undefined,
  breaks: AuditBreak[],
): Checked[] {
  const valid: Checked[] = [];
  for (const cp of cps) {
    if (!key) {
      breaks.push({
        kind: 'checkpoint_unverifiable',
        seq: cp.seq,
        message: 'no audit key to verify checkpoint',
      });
      continue;
    }
    if (cp.keyId !== key.keyId) {
      breaks.push({
        kind: 'checkpoint_unverifiable',
        seq: cp.seq,
        message: `checkpoint signed by unknown key ${cp.keyId} (have ${key.keyId})`,
      });
      continue;
    }
    if (!verifyPayload(key, cp.payload, cp.signature)) {
      breaks.push({ kind: 'checkpoint_signature', seq: cp.seq, message: 'checkpoint signature is invalid' });
      continue;
    }
    let payload: CheckpointPayload;
    try {
      payload = JSON.parse(cp.payload) as CheckpointPayload;
    } catch {
      breaks.push({ kind: 'checkpoint_signature', seq: cp.seq, message: 'checkpoint payload is not json' });
      continue;
    }
    if (payload.kind !== 'gatehouse.audit.checkpoint' || payload.seq !== cp.seq || payload.hash !== cp.hash) {
      breaks.push({
        kind: 'checkpoint_mismatch',
        seq: cp.seq,
        message: 'checkpoint columns differ from its signed payload',
      });
      continue;
    }
    valid.push({ cp, payload });
  }
  return valid;
}

/** Verifies the audit log in `repo`. */
export async function verifyAuditLog(repo: AuditRepo, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const breaks: AuditBreak[] = [];
  const bounds = await repo.bounds();
  const valid = checkCheckpoints(await repo.checkpoints(), opts.key, breaks);
  const latest = valid[valid.length - 1];
  const last = bounds?.last ?? 0;

  // Truncation: the log must reach every signed head and the live writer's head.
  const claimed = Math.max(latest?.cp.seq ?? 0, opts.expectHead?.seq ?? 0);
  if (claimed > last) {
    breaks.push({
      kind: 'truncated',
      seq: last + 1,
      message: `log ends at seq ${last} but seq ${claimed} was ${latest && latest.cp.seq === claimed ? 'checkpointed' : 'committed'}`,
    });
  }
  // Deletion of the oldest records: the first retained seq must be the signed floor.
  if (latest && bounds && bounds.first > latest.payload.floor) {
    breaks.push({
      kind: 'floor_mismatch',
      seq: latest.payload.floor,
      message: `records ${latest.payload.floor}..${bounds.first - 1} are missing (signed retention floor ${latest.payload.floor})`,
    });
  }

  const bySeq = new Map(valid.map((c) => [c.cp.seq, c]));
  let checked = 0;
  if (bounds) {
    const from = Math.max(opts.from ?? bounds.first, bounds.first);
    const to = Math.min(opts.to ?? bounds.last, bounds.last);
    const pageSize = opts.pageSize ?? 2000;
    // The hash the first checked record must point at: genesis at seq 1; for a
    // later start, the stored hash of the record before it (or, after retention,
    // the record's own prev: it is authenticated by the checkpoints after it).
    let prevSeq = from - 1;
    let prevHash: string | undefined = from === 1 ? GENESIS_HASH : undefined;
    if (from > bounds.first) prevHash = (await repo.range(from - 1, from - 1, 1))[0]?.hash;
    let next = from;
    // How far positions are shifted from written seqs; a range that starts
    // mid-log takes its first record's shift as given (what is before is out of scope).
    const shift = { offset: from === bounds.first ? 0 : Number.NaN };
    while (next <= to) {
      const page = await repo.range(next, to, pageSize);
      const first = page[0];
      if (!first) break;
      // The index is keyed by the seq each record was written with (a shifted
      // record is still found); a tampered page can claim far-off seqs, so cap the window.
      const claimed = page.map(claimedSeq);
      const lo = Math.min(...claimed);
      const hi = Math.min(Math.max(...claimed), lo + 2 * pageSize);
      const index = new Map(
        (await repo.query({ afterSeq: lo - 1, limit: hi - lo + 1 })).map((r) => [r.seq, r]),
      );
      for (const [i, row] of page.entries()) {
        checkRow(row, prevSeq, prevHash, bySeq, shift, breaks);
        checkIndex(row, index.get(claimed[i] as number), breaks);
        prevSeq = row.seq;
        prevHash = row.hash;
        checked++;
      }
      next = prevSeq + 1;
    }
    if (opts.expectHead && opts.expectHead.seq <= to && opts.expectHead.seq >= from) {
      const row = (await repo.range(opts.expectHead.seq, opts.expectHead.seq, 1))[0];
      if (row && row.hash !== opts.expectHead.hash) {
        breaks.push({
          kind: 'checkpoint_mismatch',
          seq: row.seq,
          eventId: row.eventId,
          message: 'record differs from the head the writer committed',
        });
      }
    }
  }
  const tornTails = (await repo.tornTails?.()) ?? [];
  return {
    ok: breaks.length === 0,
    breaks: breaks.sort((a, b) => a.seq - b.seq),
    first: bounds?.first,
    last: bounds?.last,
    checked,
    checkpoints: valid.length,
    lastCheckpointSeq: latest?.cp.seq,
    unsignedTail: Math.max(0, last - (latest?.cp.seq ?? 0)),
    tornTails,
  };
}

/**
 * One record at position `row.seq`. Records are stored by position, so a deleted
 * or inserted record shifts the ones after it: a change of the shift is reported
 * once, where it happens, rather than at every later position.
 */
function checkRow(
  row: AuditRow,
  prevSeq: number,
  prevHash: string | undefined,
  checkpoints: Map<number, Checked>,
  shift: { offset: number },
  breaks: AuditBreak[],
): void {
  const at = { seq: row.seq, eventId: row.eventId };
  if (row.seq !== prevSeq + 1) {
    breaks.push({
      kind: 'gap',
      ...at,
      message: `records ${prevSeq + 1}..${row.seq - 1} are missing`,
    });
  }
  if (sha256Hex(row.body) !== row.hash) {
    breaks.push({ kind: 'hash_mismatch', ...at, message: 'record content does not match its hash (edited)' });
  }
  let record: ReturnType<typeof parseRecord> | undefined;
  try {
    record = parseRecord(row);
  } catch (err) {
    breaks.push({ kind: 'bad_record', ...at, message: err instanceof Error ? err.message : String(err) });
  }
  if (record) {
    const offset = record.seq - row.seq;
    if (Number.isNaN(shift.offset)) shift.offset = offset;
    if (offset > shift.offset) {
      breaks.push({
        kind: 'gap',
        ...at,
        message: `records ${row.seq + shift.offset}..${record.seq - 1} are missing or moved (position ${row.seq} holds seq ${record.seq})`,
      });
    } else if (offset < shift.offset) {
      breaks.push({
        kind: 'seq_mismatch',
        ...at,
        message: `record at position ${row.seq} was written as seq ${record.seq} (inserted or moved)`,
      });
    }
    shift.offset = offset;
  }
  const prev = record?.prev ?? row.prevHash;
  if (prevHash !== undefined && prev !== prevHash) {
    breaks.push({
      kind: 'chain_broken',
      ...at,
      message: `record does not follow record ${prevSeq} (inserted, deleted or reordered)`,
    });
  }
  const cp = checkpoints.get(record?.seq ?? row.seq);
  if (cp && cp.cp.hash !== row.hash) {
    breaks.push({
      kind: 'checkpoint_mismatch',
      ...at,
      message: 'record differs from the signed checkpoint (rewritten history)',
    });
  }
}

/** The query index must hold every record exactly: a missing or edited index row hides or changes what `audit query` shows. */
function checkIndex(row: AuditRow, indexed: AuditRow | undefined, breaks: AuditBreak[]): void {
  const at = { seq: row.seq, eventId: row.eventId };
  if (!indexed) {
    breaks.push({ kind: 'index_mismatch', ...at, message: 'record is missing from the query index' });
    return;
  }
  for (const k of Object.keys(row) as (keyof AuditRow)[]) {
    if (k !== 'seq' && indexed[k] !== row[k]) {
      breaks.push({
        kind: 'index_mismatch',
        ...at,
        message: `query index column ${k} differs from the record`,
      });
      return;
    }
  }
}

/** The seq a record was written with (its position when the body does not say). */
function claimedSeq(row: AuditRow): number {
  const m = /"seq":(\d+),"v":\d+\}$/.exec(row.body);
  return m ? Number(m[1]) : row.seq;
}
