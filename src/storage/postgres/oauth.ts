/** The embedded authorization server's model store on PostgreSQL (table `oauth`). */
import { type OAuthRow, toOAuthPayload } from '../rows.ts';
import type { OAuthRepo } from '../types.ts';
import type { Sql } from './database.ts';

const live = '(expires_at IS NULL OR expires_at > $3)';

/** {@link OAuthRepo} on the `oauth` table: one row per oidc-provider model instance. */
export class PgOAuthRepo implements OAuthRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async upsert(
    model: string,
    id: string,
    payload: Record<string, unknown>,
    expiresAt: number | undefined,
    grantId?: string,
    userCode?: string,
    uid?: string,
  ): Promise<void> {
    // A consumed row stays consumed across later upserts: single use is never undone.
    await this.#sql.count(
      `INSERT INTO oauth (model, id, payload, expires_at, grant_id, user_code, uid) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at,
         grant_id = excluded.grant_id, user_code = excluded.user_code, uid = excluded.uid`,
      [model, id, JSON.stringify(payload), expiresAt ?? null, grantId ?? null, userCode ?? null, uid ?? null],
    );
  }

  async find(model: string, id: string): Promise<Record<string, unknown> | undefined> {
    return toOAuthPayload(
      await this.#sql.one<OAuthRow>(
        `SELECT payload, consumed_at FROM oauth WHERE model = $1 AND id = $2 AND ${live}`,
        [model, id, Date.now()],
      ),
    );
  }

  async findByUid(model: string, uid: string): Promise<Record<string, unknown> | undefined> {
    return toOAuthPayload(
      await this.#sql.one<OAuthRow>(
        `SELECT payload, consumed_at FROM oauth WHERE model = $1 AND uid = $2 AND ${live} LIMIT 1`,
        [model, uid, Date.now()],
      ),
    );
  }

  async findByUserCode(model: string, userCode: string): Promise<Record<string, unknown> | undefined> {
    return toOAuthPayload(
      await this.#sql.one<OAuthRow>(
        `SELECT payload, consumed_at FROM oauth WHERE model = $1 AND user_code = $2 AND ${live} LIMIT 1`,
        [model, userCode, Date.now()],
      ),
    );
  }

  async consume(model: string, id: string, at: number): Promise<void> {
    await this.#sql.count(
      'UPDATE oauth SET consumed_at = $1 WHERE model = $2 AND id = $3 AND consumed_at IS NULL',
      [at, model, id],
    );
  }

  async destroy(model: string, id: string): Promise<void> {
    await this.#sql.count('DELETE FROM oauth WHERE model = $1 AND id = $2', [model, id]);
  }

  revokeByGrantId(grantId: string): Promise<number> {
    return this.#sql.count('DELETE FROM oauth WHERE grant_id = $1', [grantId]);
  }

  purgeExpired(now: number): Promise<number> {
    return this.#sql.count('DELETE FROM oauth WHERE expires_at IS NOT NULL AND expires_at <= $1', [now]);
  }
}
