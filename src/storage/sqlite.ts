/**
 * SQLite storage (better-sqlite3 12.x: 13.x crashes on Node 20). Synchronous
 * under the hood; calls are serialised through one queue so a transaction's
 * awaits never interleave with other writes.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Repos, SessionRecord, SessionRepo, Storage } from './types.ts';

/** Ordered, append-only migrations; the index + 1 is the schema version. */
const MIGRATIONS = [
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     protocol_version TEXT NOT NULL,
     client_name TEXT,
     client_version TEXT,
     created_at INTEGER NOT NULL,
     closed_at INTEGER,
     close_reason TEXT
   );
   CREATE INDEX sessions_open ON sessions (closed_at, created_at);`,
];

interface SessionRow {
  id: string;
  protocol_version: string;
  client_name: string | null;
  client_version: string | null;
  created_at: number;
  closed_at: number | null;
  close_reason: string | null;
}

function toRecord(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    protocolVersion: r.protocol_version,
    clientName: r.client_name ?? undefined,
    clientVersion: r.client_version ?? undefined,
    createdAt: r.created_at,
    closedAt: r.closed_at ?? undefined,
    closeReason: r.close_reason ?? undefined,
  };
}

export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  readonly sessions: SessionRepo;
  /** The repositories as seen inside a transaction: not queued (the transaction holds the queue). */
  private readonly txRepos: Repos;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const db = this.db;
    const insert = db.prepare(
      'INSERT INTO sessions (id, protocol_version, client_name, client_version, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    const get = db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?');
    const close = db.prepare(
      'UPDATE sessions SET closed_at = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL',
    );
    const listOpen = db.prepare<[], SessionRow>(
      'SELECT * FROM sessions WHERE closed_at IS NULL ORDER BY created_at',
    );
    const closeAll = db.prepare(
      'UPDATE sessions SET closed_at = ?, close_reason = ? WHERE closed_at IS NULL',
    );
    const sessions = (run: <T>(op: () => T) => Promise<T>): SessionRepo => ({
      insert: (r) =>
        run(
          () =>
            void insert.run(
              r.id,
              r.protocolVersion,
              r.clientName ?? null,
              r.clientVersion ?? null,
              r.createdAt,
            ),
        ),
      get: (id) =>
        run(() => {
          const row = get.get(id);
          return row ? toRecord(row) : undefined;
        }),
      close: (id, reason, at) => run(() => void close.run(at, reason, id)),
      listOpen: () => run(() => listOpen.all().map(toRecord)),
      closeAllOpen: (reason, at) => run(() => closeAll.run(at, reason).changes),
    });
    this.sessions = sessions((op) => this.run(op));
    this.txRepos = { sessions: sessions(async (op) => op()) };
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** Queues an operation behind any running transaction. */
  private run<T>(op: () => T): Promise<T> {
    const p = this.queue.then(op);
    this.queue = p.catch(() => {});
    return p;
  }

  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T> {
    const p = this.queue.then(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(this.txRepos);
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    });
    this.queue = p.catch(() => {});
    return p;
  }

  async close(): Promise<void> {
    await this.queue;
    this.db.close();
  }
}
