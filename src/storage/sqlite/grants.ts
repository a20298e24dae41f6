/** The grants repository on SQLite (table `grants`). */
import { type GrantRow, grantValues, toGrant } from '../rows.ts';
import type { GrantRecord, GrantRepo, GrantSelector } from '../types.ts';
import { sqliteRepo } from './database.ts';
import { prepareEnd } from './ending.ts';

const Base = sqliteRepo((db) => ({
  insert: db.prepare(
    `INSERT INTO grants (id, kind, agent, user, tenant, issuer, actors, principal_key, owner, tools,
       constraints, created_at, expires_at, idle_timeout_ms, created_by, token_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ),
  get: db.prepare<[string], GrantRow>('SELECT * FROM grants WHERE id = ?'),
  end: prepareEnd(db, 'grants', { id: 'id', agent: 'agent', user: 'user' }),
  endedSince: db.prepare<[number], { id: string; endedAt: number; endReason: string }>(
    'SELECT id, ended_at AS endedAt, end_reason AS endReason FROM grants WHERE ended_at >= ? ORDER BY ended_at',
  ),
  listLive: db.prepare<[number], GrantRow>(
    'SELECT * FROM grants WHERE ended_at IS NULL AND expires_at > ? ORDER BY created_at',
  ),
}));

/** {@link GrantRepo} on the `grants` table. */
export class SqliteGrantRepo extends Base implements GrantRepo {
  insert(g: GrantRecord): Promise<void> {
    return this.run(() => void this.sql.insert.run(...grantValues(g)));
  }

  get(id: string): Promise<GrantRecord | undefined> {
    return this.run(() => {
      const row = this.sql.get.get(id);
      return row ? toGrant(row) : undefined;
    });
  }

  end(selector: GrantSelector, reason: string, at: number): Promise<string[]> {
    return this.run(() => this.sql.end(selector, reason, at));
  }

  endedSince(at: number): Promise<{ id: string; endedAt: number; endReason: string }[]> {
    return this.run(() => this.sql.endedSince.all(at));
  }

  listLive(now: number): Promise<GrantRecord[]> {
    return this.run(() => this.sql.listLive.all(now).map(toGrant));
  }
}
