/**
 * The audit repository: the segment files (../audit-segments.ts) are the
 * durable log (appends, head, bounds, range); queries and checkpoints go to
 * the SQLite index ({@link SqliteAuditIndex}).
 */
import type { AuditSegments } from '../audit-segments.ts';
import type { AuditCheckpointRow, AuditFilter, AuditRepo, AuditRow, AuditTornTail } from '../types.ts';
import type { SqliteAuditIndex } from './audit-index.ts';
import type { Run } from './database.ts';

/** {@link AuditRepo} on the segment files and their SQLite index. */
export class SqliteAuditRepo implements AuditRepo {
  readonly #index: SqliteAuditIndex;
  readonly #segments: AuditSegments;
  readonly #run: Run;
  readonly #inTransaction: boolean;

  /**
   * SQLite calls go through `run`; `inTransaction` marks the view a storage
   * transaction gets, which refuses appends.
   */
  constructor(index: SqliteAuditIndex, segments: AuditSegments, run: Run, inTransaction: boolean) {
    this.#index = index;
    this.#segments = segments;
    this.#run = run;
    this.#inTransaction = inTransaction;
  }

  // Not through the SQLite queue: the durable write is the segment file (the
  // audit writer already serialises its batches); only a checkpoint touches SQLite.
  async appendBatch(rows: readonly AuditRow[], checkpoint?: AuditCheckpointRow): Promise<void> {
    // A written record cannot be rolled back, so it cannot join a transaction.
    if (this.#inTransaction) throw new Error('audit records cannot be appended inside a storage transaction');
    await this.#segments.append(rows);
    this.#index.appended(rows);
    if (checkpoint) {
      // ORDER: what a checkpoint signs is on stable storage first, so power loss
      // cannot leave a signed head whose records are gone.
      await this.#segments.sync();
      await this.#run(() => this.#index.addCheckpoint(checkpoint));
    }
  }

  async head(): Promise<{ seq: number; hash: string } | undefined> {
    this.#segments.refresh();
    return this.#segments.headRecord();
  }

  async bounds(): Promise<{ first: number; last: number; count: number } | undefined> {
    this.#segments.refresh();
    const b = this.#segments.bounds();
    return b && { ...b, count: b.last - b.first + 1 };
  }

  async range(from: number, to: number, limit: number): Promise<AuditRow[]> {
    this.#segments.refresh();
    return this.#segments.range(from, to, limit);
  }

  query(filter: AuditFilter): Promise<AuditRow[]> {
    return this.#run(() => this.#index.query(filter));
  }

  addCheckpoint(checkpoint: AuditCheckpointRow): Promise<void> {
    return this.#run(() => this.#index.addCheckpoint(checkpoint));
  }

  checkpoints(): Promise<AuditCheckpointRow[]> {
    return this.#run(() => this.#index.checkpoints());
  }

  firstSeqAtOrAfter(time: number): Promise<number | undefined> {
    return this.#run(() => this.#index.firstSeqAtOrAfter(time));
  }

  async tornTails(): Promise<AuditTornTail[]> {
    this.#segments.refresh();
    return this.#segments.tornTails();
  }

  async repairTornTails(): Promise<(AuditTornTail & { sha256: string })[]> {
    if (this.#inTransaction) throw new Error('the audit log cannot be repaired inside a storage transaction');
    this.#segments.refresh();
    return this.#segments.repairTornTails();
  }

  // ORDER: the checkpoint carrying the new floor is committed before any file
  // goes, so a crash in between leaves extra old records, never a hole.
  async prune(floor: number, checkpoint: AuditCheckpointRow): Promise<number> {
    await this.#run(() => this.#index.prune(floor, checkpoint));
    return this.#segments.prune(floor);
  }
}
