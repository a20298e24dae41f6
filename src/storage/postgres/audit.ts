/**
 * The audit log on PostgreSQL (tables `audit_log` and `audit_checkpoints`): the rows are the durable
 * log and their own query index (no segment files; a batch counts as written once its transaction
 * commits). One chain per `chain` name: a store writes and reads its own.
 */
import { indexText } from '../../audit/canonical.ts';
import { type CheckpointRow, toCheckpoint } from '../rows.ts';
import type { AuditCheckpointRow, AuditFilter, AuditRepo, AuditRow } from '../types.ts';
import type { Sql } from './database.ts';

interface AuditDbRow {
  seq: number;
  prev_hash: string;
  hash: string;
  body: string;
  event_id: Buffer;
  time: number;
  type: Buffer;
  request_id: Buffer | null;
  grant_id: Buffer | null;
  session_id: Buffer | null;
  agent: Buffer | null;
  user_name: Buffer | null;
  jti: Buffer | null;
  server: Buffer | null;
  tool: Buffer | null;
  decision: Buffer | null;
}

/**
 * A query column as stored: UTF-8 bytes. The writer's columns are well-formed text (indexText spells
 * a lone surrogate as its escape), so the bytes decode back to exactly the same string; BYTEA also
 * keeps a NUL, which PostgreSQL TEXT refuses (one client's id must not fail a batch of others' records).
 */
function bytes(s: string | undefined): Buffer | null {
  return s === undefined ? null : Buffer.from(s, 'utf8');
}

function text(b: Buffer | null): string | undefined {
  return b === null ? undefined : b.toString('utf8');
}

function toAuditRow(r: AuditDbRow): AuditRow {
  return {
    seq: r.seq,
    prevHash: r.prev_hash,
    hash: r.hash,
    body: r.body,
    eventId: text(r.event_id) ?? '',
    time: r.time,
    type: text(r.type) ?? '',
    requestId: text(r.request_id),
    grantId: text(r.grant_id),
    sessionId: text(r.session_id),
    agent: text(r.agent),
    user: text(r.user_name),
    jti: text(r.jti),
    server: text(r.server),
    tool: text(r.tool),
    decision: text(r.decision),
  };
}

/** Query filter field -> column (fixed names, so the WHERE clause never carries input). */
const FILTER_COLUMNS = {
  agent: 'agent',
  user: 'user_name',
  grantId: 'grant_id',
  sessionId: 'session_id',
  requestId: 'request_id',
  server: 'server',
  decision: 'decision',
  jti: 'jti',
  type: 'type',
} as const satisfies Partial<Record<keyof AuditFilter, string>>;

const ROW_COLUMNS =
  'seq, prev_hash, hash, body, event_id, time, type, request_id, grant_id, session_id, agent, user_name, jti, server, tool, decision';

/**
 * One batch and its optional checkpoint in one statement: the rows as arrays (one parameter per
 * column, so the text is fixed and prepared once per connection), inserted only when the first seq
 * continues the chain's head; the checkpoint only when the rows were.
 */
const APPEND = {
  name: 'gatehouse_audit_append',
  text: `WITH head AS (SELECT max(seq) AS seq FROM audit_log WHERE chain = $1),
ins AS (
  INSERT INTO audit_log (chain, ${ROW_COLUMNS})
  SELECT $1, r.* FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bigint[],
    $8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[], $12::bytea[], $13::bytea[], $14::bytea[],
    $15::bytea[], $16::bytea[], $17::bytea[]) AS r
  WHERE (SELECT seq FROM head) IS NULL OR (SELECT seq FROM head) = ($2::bigint[])[1] - 1
  RETURNING seq
),
cp AS (
  INSERT INTO audit_checkpoints (chain, seq, hash, payload, signature, key_id, time)
  SELECT $1, $18, $19, $20, $21, $22, $23 WHERE $18::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM ins)
  ON CONFLICT (chain, seq) DO UPDATE SET hash = excluded.hash, payload = excluded.payload,
    signature = excluded.signature, key_id = excluded.key_id, time = excluded.time
)
SELECT count(*) AS n FROM ins`,
} as const;

/** {@link AuditRepo} on the `audit_log` and `audit_checkpoints` tables, for one chain. */
export class PgAuditRepo implements AuditRepo {
  readonly #sql: Sql;
  readonly #chain: string;

  constructor(sql: Sql, chain: string) {
    this.#sql = sql;
    this.#chain = chain;
  }

  /**
   * INVARIANT: rows continue the chain's head without a gap or repeat, and a batch is written with its
   * checkpoint or not at all. One statement (one round trip on the request path): the rows are
   * inserted only when the first continues the head the statement sees, and the checkpoint only
   * when they were. A second writer of the chain that raced past the check collides on the primary
   * key (chain, seq) and fails as a whole: never a fork, never a partial batch.
   */
  async appendBatch(rows: readonly AuditRow[], checkpoint?: AuditCheckpointRow): Promise<void> {
    // Same contract as every store: an audit record is written on its own, never with (and never
    // rolled back with) the state changes of a storage transaction.
    if (this.#sql.inTransaction)
      throw new Error('audit records cannot be appended inside a storage transaction');
    const first = rows[0];
    if (first === undefined) {
      if (checkpoint) await this.addCheckpoint(checkpoint);
      return;
    }
    rows.forEach((r, i) => {
      if (r.seq !== first.seq + i) throw new Error(`audit batch is not contiguous at seq ${r.seq}`);
    });
    const columns: unknown[][] = Array.from({ length: 16 }, () => []);
    for (const r of rows) {
      const values = [
        r.seq,
        r.prevHash,
        r.hash,
        r.body,
        bytes(r.eventId),
        r.time,
        bytes(r.type),
        bytes(r.requestId),
        bytes(r.grantId),
        bytes(r.sessionId),
        bytes(r.agent),
        bytes(r.user),
        bytes(r.jti),
        bytes(r.server),
        bytes(r.tool),
        bytes(r.decision),
      ];
      values.forEach((v, i) => void columns[i]?.push(v));
    }
    const c = checkpoint;
    const inserted = await this.#sql.one<{ n: number }>(APPEND, [
      this.#chain,
      ...columns,
      c?.seq ?? null,
      c?.hash ?? null,
      c?.payload ?? null,
      c?.signature ?? null,
      c?.keyId ?? null,
      c?.time ?? null,
    ]);
    if (inserted?.n !== rows.length) {
      const head = await this.head();
      throw new Error(`audit batch starts at seq ${first.seq}, the head is ${head?.seq ?? 'empty'}`);
    }
  }

  async head(): Promise<{ seq: number; hash: string } | undefined> {
    return this.#sql.one<{ seq: number; hash: string }>(
      'SELECT seq, hash FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1',
      [this.#chain],
    );
  }

  async bounds(): Promise<{ first: number; last: number; count: number } | undefined> {
    const r = await this.#sql.one<{ first: number | null; last: number | null; count: number }>(
      'SELECT min(seq) AS first, max(seq) AS last, count(*) AS count FROM audit_log WHERE chain = $1',
      [this.#chain],
    );
    if (!r || r.first === null || r.last === null) return undefined;
    return { first: r.first, last: r.last, count: r.count };
  }

  async range(from: number, to: number, limit: number): Promise<AuditRow[]> {
    const rows = await this.#sql.rows<AuditDbRow>(
      `SELECT ${ROW_COLUMNS} FROM audit_log WHERE chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4`,
      [this.#chain, from, to, Math.max(0, Math.floor(limit))],
    );
    return rows.map(toAuditRow);
  }

  async query(f: AuditFilter): Promise<AuditRow[]> {
    const where = ['chain = $1'];
    const params: unknown[] = [this.#chain];
    const param = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    // Filter text is matched as the index spells it (indexText: a lone surrogate as its escape).
    for (const [key, column] of Object.entries(FILTER_COLUMNS)) {
      const v = f[key as keyof typeof FILTER_COLUMNS];
      if (v !== undefined) where.push(`${column} = ${param(bytes(indexText(v)))}`);
    }
    if (f.tool !== undefined) {
      // As the SQLite index: the name as stored, a plain name on any server, or `server__tool`
      // for a plain name stored with its server.
      const t = param(bytes(indexText(f.tool)));
      where.push(
        `(tool = ${t} OR tool = server || '\\x5f5f'::bytea || ${t} OR server || '\\x5f5f'::bytea || tool = ${t})`,
      );
    }
    if (f.since !== undefined) where.push(`time >= ${param(f.since)}`);
    if (f.until !== undefined) where.push(`time < ${param(f.until)}`);
    if (f.afterSeq !== undefined) where.push(`seq > ${param(f.afterSeq)}`);
    const limit = f.limit !== undefined ? ` LIMIT ${param(Math.max(0, Math.floor(f.limit)))}` : '';
    const rows = await this.#sql.rows<AuditDbRow>(
      `SELECT ${ROW_COLUMNS} FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq${limit}`,
      params,
    );
    return rows.map(toAuditRow);
  }

  addCheckpoint(checkpoint: AuditCheckpointRow): Promise<void> {
    return addCheckpoint(this.#sql, this.#chain, checkpoint);
  }

  async checkpoints(): Promise<AuditCheckpointRow[]> {
    const rows = await this.#sql.rows<CheckpointRow>(
      'SELECT seq, hash, payload, signature, key_id, time FROM audit_checkpoints WHERE chain = $1 ORDER BY seq',
      [this.#chain],
    );
    return rows.map(toCheckpoint);
  }

  async firstSeqAtOrAfter(time: number): Promise<number | undefined> {
    const r = await this.#sql.one<{ seq: number }>(
      'SELECT seq FROM audit_log WHERE chain = $1 AND time >= $2 ORDER BY seq LIMIT 1',
      [this.#chain, time],
    );
    return r?.seq;
  }

  prune(floor: number, checkpoint: AuditCheckpointRow): Promise<number> {
    return this.#sql.atomic(async (sql) => {
      await addCheckpoint(sql, this.#chain, checkpoint);
      const n = await sql.count('DELETE FROM audit_log WHERE chain = $1 AND seq < $2', [this.#chain, floor]);
      await sql.count('DELETE FROM audit_checkpoints WHERE chain = $1 AND seq < $2', [this.#chain, floor]);
      return n;
    });
  }
}

/** Stores a checkpoint; a later one at the same seq replaces it (it carries the newer floor). */
async function addCheckpoint(sql: Sql, chain: string, c: AuditCheckpointRow): Promise<void> {
  await sql.count(
    `INSERT INTO audit_checkpoints (chain, seq, hash, payload, signature, key_id, time)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (chain, seq) DO UPDATE SET hash = excluded.hash, payload = excluded.payload,
       signature = excluded.signature, key_id = excluded.key_id, time = excluded.time`,
    [chain, c.seq, c.hash, c.payload, c.signature, c.keyId, c.time],
  );
}
