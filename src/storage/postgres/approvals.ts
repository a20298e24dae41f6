/** Approval requests on PostgreSQL (table `approvals`). */
import { type ApprovalRow, approvalValues, toApproval, toApprovals } from '../rows.ts';
import type { ApprovalDecideResult, ApprovalRecord, ApprovalRepo, ApprovalState } from '../types.ts';
import type { Sql } from './database.ts';

/** {@link ApprovalRepo} on the `approvals` table. Every decision is one conditional UPDATE: the first wins. */
export class PgApprovalRepo implements ApprovalRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async insert(r: ApprovalRecord): Promise<void> {
    await this.#sql.count(
      `INSERT INTO approvals (id, digest, state, grant_id, session_id, agent, user_name, tenant, actors, owner,
         server, tool, arguments, definition_hash, policies, attributes, created_at, expires_at)
       VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
      approvalValues(r),
    );
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    return toApproval(
      await this.#sql.one<ApprovalRow>('SELECT *, user_name AS "user" FROM approvals WHERE id = $1', [id]),
    );
  }

  async latestByDigest(digest: string): Promise<ApprovalRecord | undefined> {
    return toApproval(
      await this.#sql.one<ApprovalRow>(
        'SELECT *, user_name AS "user" FROM approvals WHERE digest = $1 ORDER BY created_at DESC, n DESC LIMIT 1',
        [digest],
      ),
    );
  }

  async list(filter: { states?: readonly ApprovalState[]; limit?: number } = {}): Promise<ApprovalRecord[]> {
    const limit = filter.limit ?? 1000;
    const rows = filter.states
      ? await this.#sql.rows<ApprovalRow>(
          'SELECT *, user_name AS "user" FROM approvals WHERE state = ANY($1::text[]) ORDER BY created_at DESC, n DESC LIMIT $2',
          [[...filter.states], limit],
        )
      : await this.#sql.rows<ApprovalRow>(
          'SELECT *, user_name AS "user" FROM approvals ORDER BY created_at DESC, n DESC LIMIT $1',
          [limit],
        );
    return toApprovals(rows);
  }

  async decide(
    id: string,
    d: { state: 'approved' | 'denied'; by: string; reason: string | undefined; channel: string; at: number },
  ): Promise<ApprovalDecideResult> {
    const changed = await this.#sql.count(
      `UPDATE approvals SET state = $1, decision = $1, decided_by = $2, reason = $3, channel = $4, decided_at = $5
       WHERE id = $6 AND state = 'pending' AND expires_at > $5`,
      [d.state, d.by, d.reason ?? null, d.channel, d.at, id],
    );
    if (changed === 1) return 'decided';
    const row = await this.get(id);
    if (row === undefined) return 'not_found';
    return row.state === 'pending' || row.state === 'expired' ? 'expired' : 'not_pending';
  }

  async consume(id: string, at: number): Promise<boolean> {
    const n = await this.#sql.count(
      `UPDATE approvals SET state = 'consumed', consumed_at = $1
       WHERE id = $2 AND state = 'approved' AND expires_at > $1`,
      [at, id],
    );
    return n === 1;
  }

  async expire(now: number): Promise<string[]> {
    const rows = await this.#sql.rows<{ id: string }>(
      `UPDATE approvals SET state = 'expired'
       WHERE state IN ('pending', 'approved') AND expires_at <= $1 RETURNING id`,
      [now],
    );
    return rows.map((r) => r.id);
  }

  async unannounced(): Promise<ApprovalRecord[]> {
    return toApprovals(
      await this.#sql.rows<ApprovalRow>(
        'SELECT *, user_name AS "user" FROM approvals WHERE decision IS NOT NULL AND NOT announced ORDER BY decided_at, n',
      ),
    );
  }

  async announce(id: string): Promise<boolean> {
    return (
      (await this.#sql.count('UPDATE approvals SET announced = true WHERE id = $1 AND NOT announced', [
        id,
      ])) === 1
    );
  }

  async countPending(): Promise<number> {
    const r = await this.#sql.one<{ n: number }>(
      "SELECT count(*) AS n FROM approvals WHERE state = 'pending'",
    );
    return r?.n ?? 0;
  }
}
