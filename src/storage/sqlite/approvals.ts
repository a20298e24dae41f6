/** Approval requests on SQLite (table `approvals`). */
import { type ApprovalRow, approvalValues, toApproval, toApprovals } from '../rows.ts';
import type { ApprovalDecideResult, ApprovalRecord, ApprovalRepo, ApprovalState } from '../types.ts';
import { sqliteRepo } from './database.ts';

const Base = sqliteRepo((db) => ({
  insert: db.prepare(
    `INSERT INTO approvals (id, digest, state, grant_id, session_id, agent, user, tenant, actors, owner,
       server, tool, arguments, definition_hash, policies, attributes, created_at, expires_at)
     VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ),
  get: db.prepare<[string], ApprovalRow>('SELECT * FROM approvals WHERE id = ?'),
  latestByDigest: db.prepare<[string], ApprovalRow>(
    'SELECT * FROM approvals WHERE digest = ? ORDER BY created_at DESC, rowid DESC LIMIT 1',
  ),
  listAll: db.prepare<[number], ApprovalRow>(
    'SELECT * FROM approvals ORDER BY created_at DESC, rowid DESC LIMIT ?',
  ),
  listStates: db.prepare<[string, number], ApprovalRow>(
    `SELECT * FROM approvals WHERE state IN (SELECT value FROM json_each(?))
     ORDER BY created_at DESC, rowid DESC LIMIT ?`,
  ),
  decide: db.prepare(
    `UPDATE approvals SET state = ?, decision = ?, decided_by = ?, reason = ?, channel = ?, decided_at = ?
     WHERE id = ? AND state = 'pending' AND expires_at > ?`,
  ),
  consume: db.prepare(
    `UPDATE approvals SET state = 'consumed', consumed_at = ?
     WHERE id = ? AND state = 'approved' AND expires_at > ?`,
  ),
  expire: db.prepare<[number], { id: string }>(
    `UPDATE approvals SET state = 'expired'
     WHERE state IN ('pending', 'approved') AND expires_at <= ? RETURNING id`,
  ),
  unannounced: db.prepare<[], ApprovalRow>(
    'SELECT * FROM approvals WHERE decision IS NOT NULL AND announced = 0 ORDER BY decided_at',
  ),
  announce: db.prepare('UPDATE approvals SET announced = 1 WHERE id = ? AND announced = 0'),
  countPending: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM approvals WHERE state = 'pending'"),
}));

/** {@link ApprovalRepo} on the `approvals` table. */
export class SqliteApprovalRepo extends Base implements ApprovalRepo {
  insert(r: ApprovalRecord): Promise<void> {
    return this.run(() => void this.sql.insert.run(...approvalValues(r)));
  }

  get(id: string): Promise<ApprovalRecord | undefined> {
    return this.run(() => toApproval(this.sql.get.get(id)));
  }

  latestByDigest(digest: string): Promise<ApprovalRecord | undefined> {
    return this.run(() => toApproval(this.sql.latestByDigest.get(digest)));
  }

  list(filter: { states?: readonly ApprovalState[]; limit?: number } = {}): Promise<ApprovalRecord[]> {
    const limit = filter.limit ?? 1000;
    const states = filter.states;
    return this.run(() =>
      toApprovals(
        states ? this.sql.listStates.all(JSON.stringify(states), limit) : this.sql.listAll.all(limit),
      ),
    );
  }

  decide(
    id: string,
    d: { state: 'approved' | 'denied'; by: string; reason: string | undefined; channel: string; at: number },
  ): Promise<ApprovalDecideResult> {
    return this.run(() => {
      const changed = this.sql.decide.run(
        d.state,
        d.state,
        d.by,
        d.reason ?? null,
        d.channel,
        d.at,
        id,
        d.at,
      ).changes;
      if (changed === 1) return 'decided';
      const row = toApproval(this.sql.get.get(id));
      if (row === undefined) return 'not_found';
      return row.state === 'pending' || row.state === 'expired' ? 'expired' : 'not_pending';
    });
  }

  consume(id: string, at: number): Promise<boolean> {
    return this.run(() => this.sql.consume.run(at, id, at).changes === 1);
  }

  expire(now: number): Promise<string[]> {
    return this.run(() => this.sql.expire.all(now).map((r) => r.id));
  }

  unannounced(): Promise<ApprovalRecord[]> {
    return this.run(() => toApprovals(this.sql.unannounced.all()));
  }

  announce(id: string): Promise<boolean> {
    return this.run(() => this.sql.announce.run(id).changes === 1);
  }

  countPending(): Promise<number> {
    return this.run(() => this.sql.countPending.get()?.n ?? 0);
  }
}
