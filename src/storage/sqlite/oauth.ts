/** The embedded authorization server's model store on SQLite (table `oauth`). */
import { type OAuthRow, toOAuthPayload } from '../rows.ts';
import type { OAuthRepo } from '../types.ts';
import { sqliteRepo } from './database.ts';

const live = 'AND (expires_at IS NULL OR expires_at > ?)';

const Base = sqliteRepo((db) => ({
  upsert: db.prepare(
    `INSERT INTO oauth (model, id, payload, expires_at, grant_id, user_code, uid) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at,
       grant_id = excluded.grant_id, user_code = excluded.user_code, uid = excluded.uid`,
  ),
  find: db.prepare<[string, string, number], OAuthRow>(
    `SELECT payload, consumed_at FROM oauth WHERE model = ? AND id = ? ${live}`,
  ),
  findByUid: db.prepare<[string, string, number], OAuthRow>(
    `SELECT payload, consumed_at FROM oauth WHERE model = ? AND uid = ? ${live} LIMIT 1`,
  ),
  findByUserCode: db.prepare<[string, string, number], OAuthRow>(
    `SELECT payload, consumed_at FROM oauth WHERE model = ? AND user_code = ? ${live} LIMIT 1`,
  ),
  // A consumed row stays consumed across later upserts: single use is never undone.
  consume: db.prepare('UPDATE oauth SET consumed_at = ? WHERE model = ? AND id = ? AND consumed_at IS NULL'),
  destroy: db.prepare('DELETE FROM oauth WHERE model = ? AND id = ?'),
  revoke: db.prepare('DELETE FROM oauth WHERE grant_id = ?'),
  purge: db.prepare('DELETE FROM oauth WHERE expires_at IS NOT NULL AND expires_at <= ?'),
}));

/** {@link OAuthRepo} on the `oauth` table: one row per oidc-provider model instance. */
export class SqliteOAuthRepo extends Base implements OAuthRepo {
  upsert(
    model: string,
    id: string,
    payload: Record<string, unknown>,
    expiresAt: number | undefined,
    grantId?: string,
    userCode?: string,
    uid?: string,
  ): Promise<void> {
    return this.run(
      () =>
        void this.sql.upsert.run(
          model,
          id,
          JSON.stringify(payload),
          expiresAt ?? null,
          grantId ?? null,
          userCode ?? null,
          uid ?? null,
        ),
    );
  }

  find(model: string, id: string): Promise<Record<string, unknown> | undefined> {
    return this.run(() => toOAuthPayload(this.sql.find.get(model, id, Date.now())));
  }

  findByUid(model: string, uid: string): Promise<Record<string, unknown> | undefined> {
    return this.run(() => toOAuthPayload(this.sql.findByUid.get(model, uid, Date.now())));
  }

  findByUserCode(model: string, userCode: string): Promise<Record<string, unknown> | undefined> {
    return this.run(() => toOAuthPayload(this.sql.findByUserCode.get(model, userCode, Date.now())));
  }

  consume(model: string, id: string, at: number): Promise<void> {
    return this.run(() => void this.sql.consume.run(at, model, id));
  }

  destroy(model: string, id: string): Promise<void> {
    return this.run(() => void this.sql.destroy.run(model, id));
  }

  revokeByGrantId(grantId: string): Promise<number> {
    return this.run(() => this.sql.revoke.run(grantId).changes);
  }

  purgeExpired(now: number): Promise<number> {
    return this.run(() => this.sql.purge.run(now).changes);
  }
}
