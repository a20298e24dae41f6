/**
 * The one storage interface for state that outlives a request. Backend-neutral
 * and async so that PostgreSQL can implement it for clusters; SQLite is the
 * embedded default. Every backend must pass test/storage/contract.ts.
 */

/** A session as recorded for operators (the live session is in memory). */
export interface SessionRecord {
  id: string;
  protocolVersion: string;
  clientName: string | undefined;
  clientVersion: string | undefined;
  createdAt: number;
  closedAt: number | undefined;
  closeReason: string | undefined;
}

export interface SessionRepo {
  insert(rec: SessionRecord): Promise<void>;
  get(id: string): Promise<SessionRecord | undefined>;
  close(id: string, reason: string, at: number): Promise<void>;
  /** Sessions not closed, oldest first. */
  listOpen(): Promise<SessionRecord[]>;
  /** Marks every open session closed (used at start-up after an unclean stop). */
  closeAllOpen(reason: string, at: number): Promise<number>;
}

/** The repositories, as seen inside a transaction. */
export interface Repos {
  readonly sessions: SessionRepo;
}

export interface Storage extends Repos {
  /** Runs `fn` atomically: all of its writes or none. */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
