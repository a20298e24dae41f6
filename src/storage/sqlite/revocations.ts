/** The token revocation list on SQLite (table `token_revocations`). */
import { type RevocationRow, toRevocations } from '../rows.ts';
import type { RevocationRecord, RevocationRepo } from '../types.ts';
import { sqliteRepo } from './database.ts';

const Base = sqliteRepo((db) => ({
  add: db.prepare(
    `INSERT INTO token_revocations (kind, value, not_before, expires_at, recorded_at, reason)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, value) DO UPDATE SET
       not_before = max(not_before, excluded.not_before),
       expires_at = max(expires_at, excluded.expires_at),
       recorded_at = excluded.recorded_at,
       reason = excluded.reason`,
  ),
  recordedSince: db.prepare<[number], RevocationRow>(
    'SELECT * FROM token_revocations WHERE recorded_at >= ? ORDER BY recorded_at',
  ),
  listLive: db.prepare<[number], RevocationRow>(
    'SELECT * FROM token_revocations WHERE expires_at > ? ORDER BY recorded_at',
  ),
  purge: db.prepare('DELETE FROM token_revocations WHERE expires_at <= ?'),
}));

/** {@link RevocationRepo} on the `token_revocations` table. */
export class SqliteRevocationRepo extends Base implements RevocationRepo {
  add(r: RevocationRecord): Promise<void> {
    return this.run(
      () => void this.sql.add.run(r.kind, r.value, r.notBefore, r.expiresAt, r.recordedAt, r.reason),
    );
  }

  recordedSince(at: number): Promise<RevocationRecord[]> {
    return this.run(() => toRevocations(this.sql.recordedSince.all(at)));
  }

  listLive(now: number): Promise<RevocationRecord[]> {
    return this.run(() => toRevocations(this.sql.listLive.all(now)));
  }

  purge(now: number): Promise<number> {
    return this.run(() => this.sql.purge.run(now).changes);
  }
}
