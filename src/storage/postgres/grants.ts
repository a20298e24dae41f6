/** The grants repository on PostgreSQL (table `grants`). */
import { type GrantRow, grantValues, toGrant } from '../rows.ts';
import type { GrantRecord, GrantRepo, GrantSelector } from '../types.ts';
import type { Sql } from './database.ts';
import { endRows } from './ending.ts';

const SELECTOR_COLUMNS = { id: 'id', agent: 'agent', user: 'user_name' } as const;

/** {@link GrantRepo} on the `grants` table. */
export class PgGrantRepo implements GrantRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async insert(g: GrantRecord): Promise<void> {
    await this.#sql.count(
      `INSERT INTO grants (id, kind, agent, user_name, tenant, issuer, actors, principal_key, owner, tools,
         constraints, created_at, expires_at, idle_timeout_ms, created_by, token_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
      grantValues(g),
    );
  }

  async get(id: string): Promise<GrantRecord | undefined> {
    const row = await this.#sql.one<GrantRow>('SELECT *, user_name AS "user" FROM grants WHERE id = $1', [
      id,
    ]);
    return row && toGrant(row);
  }

  end(selector: GrantSelector, reason: string, at: number): Promise<string[]> {
    return endRows(this.#sql, 'grants', SELECTOR_COLUMNS, selector, reason, at);
  }

  endedSince(at: number): Promise<{ id: string; endedAt: number; endReason: string }[]> {
    return this.#sql.rows(
      `SELECT id, ended_at AS "endedAt", end_reason AS "endReason" FROM grants
       WHERE ended_at >= $1 ORDER BY ended_at`,
      [at],
    );
  }

  async listLive(now: number): Promise<GrantRecord[]> {
    const rows = await this.#sql.rows<GrantRow>(
      'SELECT *, user_name AS "user" FROM grants WHERE ended_at IS NULL AND expires_at > $1 ORDER BY created_at',
      [now],
    );
    return rows.map(toGrant);
  }
}
