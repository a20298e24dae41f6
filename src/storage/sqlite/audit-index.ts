/**
 * The audit log's query index in SQLite (table `audit_log`, a copy of the
 * segment files filled off the request path) and its signed checkpoints
 * (table `audit_checkpoints`). One per store, shared by its audit repositories.
 */
import type Database from 'better-sqlite3';
import { indexText } from '../../audit/canonical.ts';
import type { AuditSegments } from '../audit-segments.ts';
import { type CheckpointRow, toCheckpoint } from '../rows.ts';
import type { AuditCheckpointRow, AuditFilter, AuditRow } from '../types.ts';
import type { Run } from './database.ts';

/** Index rows copied from the segment files per transaction. */
const INDEX_CHUNK = 5000;
/** The index is brought up to date when appends pause this long ... */
const INDEX_IDLE_MS = 200;
/** ... or when it lags by this many records (queries always catch it up first). */
const INDEX_MAX_LAG = 100_000;
/**
 * Appended rows kept for the index, so it need not read them back from the files; past this many
 * characters of record text the index reads the files again (memory stays bounded by bytes while it
 * lags under sustained load, T31).
 */
const FRESH_MAX_CHARS = 1024 * 1024;

interface AuditDbRow {
  seq: number;
  prev_hash: string;
  hash: string;
  body: string;
  event_id: string;
  time: number;
  type: string;
  request_id: string | null;
  grant_id: string | null;
  session_id: string | null;
  agent: string | null;
  user: string | null;
  jti: string | null;
  server: string | null;
  tool: string | null;
  decision: string | null;
}

function toAuditRow(r: AuditDbRow): AuditRow {
  return {
    seq: r.seq,
    prevHash: r.prev_hash,
    hash: r.hash,
    body: r.body,
    eventId: r.event_id,
    time: r.time,
    type: r.type,
    requestId: r.request_id ?? undefined,
    grantId: r.grant_id ?? undefined,
    sessionId: r.session_id ?? undefined,
    agent: r.agent ?? undefined,
    user: r.user ?? undefined,
    jti: r.jti ?? undefined,
    server: r.server ?? undefined,
    tool: r.tool ?? undefined,
    decision: r.decision ?? undefined,
  };
}

/** Query filter field -> column (fixed names, so the WHERE clause never carries input). */
const AUDIT_FILTER_COLUMNS = {
  agent: 'agent',
  user: 'user',
  grantId: 'grant_id',
  sessionId: 'session_id',
  requestId: 'request_id',
  server: 'server',
  decision: 'decision',
  jti: 'jti',
  type: 'type',
} as const satisfies Partial<Record<keyof AuditFilter, string>>;

function prepare(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT OR IGNORE INTO audit_log (seq, prev_hash, hash, body, event_id, time, type, request_id, grant_id,
         session_id, agent, user, jti, server, tool, decision)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertCheckpoint: db.prepare(
      // A later checkpoint at the same head (prune right after a clean close's checkpoint) supersedes it: it carries the new floor.
      'INSERT OR REPLACE INTO audit_checkpoints (seq, hash, payload, signature, key_id, time) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    indexed: db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM audit_log'),
    checkpoints: db.prepare<[], CheckpointRow>('SELECT * FROM audit_checkpoints ORDER BY seq'),
    firstAt: db.prepare<[number], { seq: number }>(
      'SELECT seq FROM audit_log WHERE time >= ? ORDER BY seq LIMIT 1',
    ),
    pruneLog: db.prepare('DELETE FROM audit_log WHERE seq < ?'),
    pruneCheckpoints: db.prepare('DELETE FROM audit_checkpoints WHERE seq < ?'),
  };
}

/**
 * The SQLite side of the audit log: queries and checkpoints. The segment files
 * are the durable log; this index is brought up to date from them when appends
 * pause, when it lags far behind, and before every query.
 */
export class SqliteAuditIndex {
  readonly #db: Database.Database;
  readonly #segments: AuditSegments;
  readonly #queued: Run;
  readonly #sql: ReturnType<typeof prepare>;
  readonly #indexTx: (rows: readonly AuditRow[]) => void;
  readonly #pruneTx: (floor: number, checkpoint: AuditCheckpointRow) => void;
  /** The highest seq copied into the index. */
  #indexedTo: number;
  #timer: NodeJS.Timeout | undefined;
  #lastAppend = 0;
  /** Rows this process appended and the index has not taken yet, in seq order (bounded by FRESH_MAX_CHARS). */
  #fresh: AuditRow[] = [];
  /** Record text held in #fresh, in characters. */
  #freshChars = 0;

  /** `queued` runs the background catch-up behind the store's other operations. */
  constructor(db: Database.Database, segments: AuditSegments, queued: Run) {
    this.#db = db;
    this.#segments = segments;
    this.#queued = queued;
    const sql = prepare(db);
    this.#sql = sql;
    this.#indexTx = db.transaction((rows: readonly AuditRow[]) => {
      for (const r of rows) {
        sql.insert.run(
          r.seq,
          r.prevHash,
          r.hash,
          r.body,
          r.eventId,
          r.time,
          r.type,
          r.requestId ?? null,
          r.grantId ?? null,
          r.sessionId ?? null,
          r.agent ?? null,
          r.user ?? null,
          r.jti ?? null,
          r.server ?? null,
          r.tool ?? null,
          r.decision ?? null,
        );
      }
    });
    this.#pruneTx = db.transaction((floor: number, checkpoint: AuditCheckpointRow) => {
      this.addCheckpoint(checkpoint);
      sql.pruneLog.run(floor);
      sql.pruneCheckpoints.run(floor);
    });
    // A database from before the segment files (schema 3): its rows become the first segment.
    if (!segments.bounds()) {
      const old = db.prepare<[], AuditDbRow>('SELECT * FROM audit_log ORDER BY seq').all().map(toAuditRow);
      if (old.length > 0) segments.write(old);
    }
    this.#indexedTo = sql.indexed.get()?.seq ?? 0;
  }

  /** Copies up to `max` records the index lacks; returns how many are still missing. */
  catchUp(max: number): number {
    // Rows this process appended are indexed as the writer made them (their columns are computed
    // from the event): the files are read back only for what they do not cover (a restart, another
    // writer, rows dropped past FRESH_MAX_CHARS).
    let left = max;
    while (this.#fresh.length > 0 && left > 0) {
      const first = this.#fresh[0] as AuditRow;
      if (first.seq <= this.#indexedTo) {
        this.#fresh.shift();
        this.#freshChars -= first.body.length;
        continue;
      }
      if (first.seq !== this.#indexedTo + 1) break;
      const rows = this.#fresh.splice(0, Math.min(INDEX_CHUNK, left));
      for (const r of rows) this.#freshChars -= r.body.length;
      this.#indexTx(rows);
      this.#indexedTo = (rows[rows.length - 1] as AuditRow).seq;
      left -= rows.length;
    }
    const lastFresh = this.#fresh[this.#fresh.length - 1];
    if (lastFresh !== undefined && this.#fresh[0]?.seq === this.#indexedTo + 1)
      return lastFresh.seq - this.#indexedTo;
    return this.#catchUpFromFiles(left);
  }

  #catchUpFromFiles(max: number): number {
    this.#segments.refresh();
    const head = this.#segments.headRecord()?.seq ?? 0;
    let left = max;
    while (this.#indexedTo < head && left > 0) {
      const rows = this.#segments.range(this.#indexedTo + 1, head, Math.min(INDEX_CHUNK, left));
      const last = rows[rows.length - 1];
      if (!last) break;
      this.#indexTx(rows);
      this.#indexedTo = last.seq;
      left -= rows.length;
    }
    return head - this.#indexedTo;
  }

  /**
   * Notes that records were appended to the files: the index follows them off the request path.
   * `rows` (as written) are kept, bounded, so the index need not read them back.
   */
  appended(rows?: readonly AuditRow[]): void {
    this.#lastAppend = Date.now();
    const first = rows?.[0];
    if (rows && first) {
      const last = this.#fresh[this.#fresh.length - 1];
      let chars = 0;
      for (const r of rows) chars += r.body.length;
      if ((last === undefined || first.seq === last.seq + 1) && this.#freshChars + chars <= FRESH_MAX_CHARS) {
        for (const r of rows) this.#fresh.push(r);
        this.#freshChars += chars;
      } else {
        this.#fresh = []; // a gap or too much: the files have them
        this.#freshChars = 0;
      }
    }
    this.#schedule();
  }

  /** Stops the background catch-up (the store is closing; it catches up once more itself). */
  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }

  /** Rows matching every filter, by seq (after catching up). */
  query(f: AuditFilter): AuditRow[] {
    this.catchUp(Number.POSITIVE_INFINITY);
    const where: string[] = [];
    const params: (string | number)[] = [];
    // Filter text is matched as the index spells it (indexText: a lone surrogate as its escape).
    for (const [key, column] of Object.entries(AUDIT_FILTER_COLUMNS)) {
      const v = f[key as keyof typeof AUDIT_FILTER_COLUMNS];
      if (v === undefined) continue;
      where.push(`${column} = ?`);
      params.push(indexText(v));
    }
    if (f.tool !== undefined) {
      // The gateway records the name the agent called (`server__tool`); older records and
      // `namespace: false` upstreams hold the plain name. Either spelling finds both: the name as
      // stored, a plain name on any server, or `server__tool` for a plain name stored with its server.
      where.push("(tool = ? OR tool = server || '__' || ? OR server || '__' || tool = ?)");
      const t = indexText(f.tool);
      params.push(t, t, t);
    }
    if (f.since !== undefined) {
      where.push('time >= ?');
      params.push(f.since);
    }
    if (f.until !== undefined) {
      where.push('time < ?');
      params.push(f.until);
    }
    if (f.afterSeq !== undefined) {
      where.push('seq > ?');
      params.push(f.afterSeq);
    }
    const sql = `SELECT * FROM audit_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq${
      f.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(f.limit))}` : ''
    }`;
    return this.#db
      .prepare<(string | number)[], AuditDbRow>(sql)
      .all(...params)
      .map(toAuditRow);
  }

  /** The lowest seq whose time is at or after `time` (after catching up). */
  firstSeqAtOrAfter(time: number): number | undefined {
    this.catchUp(Number.POSITIVE_INFINITY);
    return this.#sql.firstAt.get(time)?.seq;
  }

  /** Stores a checkpoint; one at the same seq is replaced. */
  addCheckpoint(c: AuditCheckpointRow): void {
    this.#sql.insertCheckpoint.run(c.seq, c.hash, c.payload, c.signature, c.keyId, c.time);
  }

  /** Every checkpoint, by seq. */
  checkpoints(): AuditCheckpointRow[] {
    return this.#sql.checkpoints.all().map(toCheckpoint);
  }

  /** Writes `checkpoint` and deletes the index rows and checkpoints below `floor`, in one transaction. */
  prune(floor: number, checkpoint: AuditCheckpointRow): void {
    this.#pruneTx(floor, checkpoint);
    // Rows not indexed yet below the floor are pruned too: they must not come back with the next catch-up.
    this.#fresh = this.#fresh.filter((r) => r.seq >= floor);
    this.#freshChars = this.#fresh.reduce((n, r) => n + r.body.length, 0);
    if (this.#indexedTo < floor - 1) this.#indexedTo = floor - 1;
  }

  /** Keeps the query index close behind the files without costing the request path. */
  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const idle = Date.now() - this.#lastAppend >= INDEX_IDLE_MS;
      this.#queued(() => {
        const lag = this.catchUp(0);
        // Deferred to a pause (or the lag bound): indexing is work the request path never waits for.
        return idle || lag >= INDEX_MAX_LAG ? this.catchUp(INDEX_CHUNK) : lag;
      }).then(
        (left) => left > 0 && this.#schedule(),
        () => this.#schedule(),
      );
    }, INDEX_IDLE_MS);
    this.#timer.unref();
  }
}
