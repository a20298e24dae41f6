/** The token revocation list on PostgreSQL (table `token_revocations`). */
import { type RevocationRow, toRevocations } from '../rows.ts';
import type { RevocationRecord, RevocationRepo } from '../types.ts';
import type { Sql } from './database.ts';

/** {@link RevocationRepo} on the `token_revocations` table. */
export class PgRevocationRepo implements RevocationRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async add(r: RevocationRecord): Promise<void> {
    await this.#sql.count(
      `INSERT INTO token_revocations AS t (kind, value, not_before, expires_at, recorded_at, reason)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (kind, value) DO UPDATE SET
         not_before = greatest(t.not_before, excluded.not_before),
         expires_at = greatest(t.expires_at, excluded.expires_at),
         recorded_at = excluded.recorded_at,
         reason = excluded.reason`,
      [r.kind, r.value, r.notBefore, r.expiresAt, r.recordedAt, r.reason],
    );
  }

  async recordedSince(at: number): Promise<RevocationRecord[]> {
    return toRevocations(
      await this.#sql.rows<RevocationRow>(
        'SELECT * FROM token_revocations WHERE recorded_at >= $1 ORDER BY recorded_at',
        [at],
      ),
    );
  }

  async listLive(now: number): Promise<RevocationRecord[]> {
    return toRevocations(
      await this.#sql.rows<RevocationRow>(
        'SELECT * FROM token_revocations WHERE expires_at > $1 ORDER BY recorded_at',
        [now],
      ),
    );
  }

  purge(now: number): Promise<number> {
    return this.#sql.count('DELETE FROM token_revocations WHERE expires_at <= $1', [now]);
  }
}
