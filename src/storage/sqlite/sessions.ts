/** The sessions repository on SQLite (table `sessions`). */
import { type SessionRow, toSession } from '../rows.ts';
import type { SessionRecord, SessionRepo } from '../types.ts';
import { sqliteRepo } from './database.ts';

const Base = sqliteRepo((db) => ({
  insert: db.prepare(
    'INSERT INTO sessions (id, protocol_version, client_name, client_version, created_at) VALUES (?, ?, ?, ?, ?)',
  ),
  get: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?'),
  close: db.prepare('UPDATE sessions SET closed_at = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL'),
  listOpen: db.prepare<[], SessionRow>('SELECT * FROM sessions WHERE closed_at IS NULL ORDER BY created_at'),
  closeAll: db.prepare('UPDATE sessions SET closed_at = ?, close_reason = ? WHERE closed_at IS NULL'),
}));

/** {@link SessionRepo} on the `sessions` table. */
export class SqliteSessionRepo extends Base implements SessionRepo {
  insert(r: SessionRecord): Promise<void> {
    return this.run(
      () =>
        void this.sql.insert.run(
          r.id,
          r.protocolVersion,
          r.clientName ?? null,
          r.clientVersion ?? null,
          r.createdAt,
        ),
    );
  }

  get(id: string): Promise<SessionRecord | undefined> {
    return this.run(() => {
      const row = this.sql.get.get(id);
      return row ? toSession(row) : undefined;
    });
  }

  close(id: string, reason: string, at: number): Promise<void> {
    return this.run(() => void this.sql.close.run(at, reason, id));
  }

  listOpen(): Promise<SessionRecord[]> {
    return this.run(() => this.sql.listOpen.all().map(toSession));
  }

  closeAllOpen(reason: string, at: number): Promise<number> {
    return this.run(() => this.sql.closeAll.run(at, reason).changes);
  }
}
