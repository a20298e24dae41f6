/** Approval requests on SQLite (table `approvals`). */
import type { ApprovalDecideResult, ApprovalRecord, ApprovalRepo, ApprovalState } from '../types.ts';
import { sqliteRepo } from './database.ts';

interface ApprovalRow {
  id: string;
  digest: string;
  state: string;
  grant_id: string;
  session_id: string;
  agent: string;
  user: string | null;
  tenant: string | null;
  actors: string;
  owner: string | null;
  server: string;
  tool: string;
  arguments: string;
  definition_hash: string;
  policies: string;
  attributes: string;
  created_at: number;
  expires_at: number;
  decision: string | null;
  decided_at: number | null;
  decided_by: string | null;
  reason: string | null;
  channel: string | null;
  consumed_at: number | null;
}

const STATES: ReadonlySet<string> = new Set<ApprovalState>([
  'pending',
  'approved',
  'denied',
  'expired',
  'consumed',
]);

function isState(s: string): s is ApprovalState {
  return STATES.has(s);
}

/** A row of a state this version does not know (written by a newer one) is skipped, never misread. */
function toRecord(r: ApprovalRow | undefined): ApprovalRecord | undefined {
  if (r === undefined || !isState(r.state)) return undefined;
  return {
    id: r.id,
    digest: r.digest,
    state: r.state,
    grantId: r.grant_id,
    sessionId: r.session_id,
    agent: r.agent,
    user: r.user ?? undefined,
    tenant: r.tenant ?? undefined,
    actors: JSON.parse(r.actors) as string[],
    owner: r.owner ?? undefined,
    server: r.server,
    tool: r.tool,
    arguments: r.arguments,
    definitionHash: r.definition_hash,
    policies: JSON.parse(r.policies) as string[],
    attributes: JSON.parse(r.attributes) as Record<string, unknown>,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    decision: r.decision === 'approved' || r.decision === 'denied' ? r.decision : undefined,
    decidedAt: r.decided_at ?? undefined,
    decidedBy: r.decided_by ?? undefined,
    reason: r.reason ?? undefined,
    channel: r.channel ?? undefined,
    consumedAt: r.consumed_at ?? undefined,
  };
}

function toRecords(rows: readonly ApprovalRow[]): ApprovalRecord[] {
  const out: ApprovalRecord[] = [];
  for (const r of rows) {
    const rec = toRecord(r);
    if (rec) out.push(rec);
  }
  return out;
}

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
    return this.run(
      () =>
        void this.sql.insert.run(
          r.id,
          r.digest,
          r.grantId,
          r.sessionId,
          r.agent,
          r.user ?? null,
          r.tenant ?? null,
          JSON.stringify(r.actors),
          r.owner ?? null,
          r.server,
          r.tool,
          r.arguments,
          r.definitionHash,
          JSON.stringify(r.policies),
          JSON.stringify(r.attributes),
          r.createdAt,
          r.expiresAt,
        ),
    );
  }

  get(id: string): Promise<ApprovalRecord | undefined> {
    return this.run(() => toRecord(this.sql.get.get(id)));
  }

  latestByDigest(digest: string): Promise<ApprovalRecord | undefined> {
    return this.run(() => toRecord(this.sql.latestByDigest.get(digest)));
  }

  list(filter: { states?: readonly ApprovalState[]; limit?: number } = {}): Promise<ApprovalRecord[]> {
    const limit = filter.limit ?? 1000;
    const states = filter.states;
    return this.run(() =>
      toRecords(
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
      const row = toRecord(this.sql.get.get(id));
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
    return this.run(() => toRecords(this.sql.unannounced.all()));
  }

  announce(id: string): Promise<boolean> {
    return this.run(() => this.sql.announce.run(id).changes === 1);
  }

  countPending(): Promise<number> {
    return this.run(() => this.sql.countPending.get()?.n ?? 0);
  }
}
