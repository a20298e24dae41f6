/** Approval requests on PostgreSQL (table `approvals`). */
import type { ApprovalDecideResult, ApprovalRecord, ApprovalRepo, ApprovalState } from '../types.ts';
import type { Sql } from './database.ts';

interface ApprovalRow {
  id: string;
  digest: string;
  state: string;
  grant_id: string;
  session_id: string;
  agent: string;
  user_name: string | null;
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
    user: r.user_name ?? undefined,
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
      [
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
      ],
    );
  }

  async get(id: string): Promise<ApprovalRecord | undefined> {
    return toRecord(await this.#sql.one<ApprovalRow>('SELECT * FROM approvals WHERE id = $1', [id]));
  }

  async latestByDigest(digest: string): Promise<ApprovalRecord | undefined> {
    return toRecord(
      await this.#sql.one<ApprovalRow>(
        'SELECT * FROM approvals WHERE digest = $1 ORDER BY created_at DESC, n DESC LIMIT 1',
        [digest],
      ),
    );
  }

  async list(filter: { states?: readonly ApprovalState[]; limit?: number } = {}): Promise<ApprovalRecord[]> {
    const limit = filter.limit ?? 1000;
    const rows = filter.states
      ? await this.#sql.rows<ApprovalRow>(
          'SELECT * FROM approvals WHERE state = ANY($1::text[]) ORDER BY created_at DESC, n DESC LIMIT $2',
          [[...filter.states], limit],
        )
      : await this.#sql.rows<ApprovalRow>(
          'SELECT * FROM approvals ORDER BY created_at DESC, n DESC LIMIT $1',
          [limit],
        );
    return toRecords(rows);
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
    return toRecords(
      await this.#sql.rows<ApprovalRow>(
        'SELECT * FROM approvals WHERE decision IS NOT NULL AND NOT announced ORDER BY decided_at, n',
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
