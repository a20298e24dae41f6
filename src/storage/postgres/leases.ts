/** Credential leases and kill switches on PostgreSQL (tables `leases` and `credential_blocks`). */
import { type LeaseRow, leaseValues, toLiveLease } from '../rows.ts';
import type { CredentialBlock, LeaseRecord, LeaseRepo, LeaseSelector } from '../types.ts';
import type { Sql } from './database.ts';
import { endRows } from './ending.ts';

const SELECTOR_COLUMNS = {
  id: 'id',
  grant: 'grant_id',
  service: 'service',
  agent: 'agent',
  user: 'user_name',
  secret: 'credential',
} as const;

/** {@link LeaseRepo} on the `leases` and `credential_blocks` tables. */
export class PgLeaseRepo implements LeaseRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async insert(l: LeaseRecord): Promise<void> {
    await this.#sql.count(
      `INSERT INTO leases (id, grant_id, service, credential, kind, agent, user_name, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      leaseValues(l),
    );
  }

  end(selector: LeaseSelector, reason: string, at: number): Promise<string[]> {
    return endRows(this.#sql, 'leases', SELECTOR_COLUMNS, selector, reason, at);
  }

  endedSince(at: number): Promise<{ id: string; endReason: string }[]> {
    return this.#sql.rows(
      'SELECT id, end_reason AS "endReason" FROM leases WHERE ended_at >= $1 ORDER BY ended_at',
      [at],
    );
  }

  async listLive(now: number): Promise<LeaseRecord[]> {
    const rows = await this.#sql.rows<LeaseRow>(
      'SELECT *, user_name AS "user" FROM leases WHERE ended_at IS NULL AND expires_at > $1 ORDER BY created_at',
      [now],
    );
    return rows.map(toLiveLease);
  }

  async block(b: CredentialBlock): Promise<void> {
    await this.#sql.count(
      `INSERT INTO credential_blocks (kind, name, reason, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kind, name) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at`,
      [b.kind, b.name, b.reason, b.createdAt],
    );
  }

  async unblock(kind: CredentialBlock['kind'], name: string): Promise<boolean> {
    return (
      (await this.#sql.count('DELETE FROM credential_blocks WHERE kind = $1 AND name = $2', [kind, name])) > 0
    );
  }

  async blocks(): Promise<CredentialBlock[]> {
    const rows = await this.#sql.rows<{ kind: string; name: string; reason: string; created_at: number }>(
      'SELECT kind, name, reason, created_at FROM credential_blocks ORDER BY created_at',
    );
    return rows.map((r) => ({
      kind: r.kind as CredentialBlock['kind'],
      name: r.name,
      reason: r.reason,
      createdAt: r.created_at,
    }));
  }
}
