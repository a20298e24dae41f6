/** The grants repository on PostgreSQL (table `grants`). */
import type { GrantRecord, GrantRepo, GrantSelector } from '../types.ts';
import type { Sql } from './database.ts';
import { endRows } from './ending.ts';

interface GrantRow {
  id: string;
  kind: string;
  agent: string;
  user_name: string | null;
  tenant: string | null;
  issuer: string;
  actors: string;
  principal_key: string;
  owner: string | null;
  tools: string | null;
  constraints: string;
  created_at: number;
  expires_at: number;
  idle_timeout_ms: number;
  created_by: string;
  token_id: string | null;
  ended_at: number | null;
  end_reason: string | null;
}

function toGrant(r: GrantRow): GrantRecord {
  return {
    id: r.id,
    kind: r.kind === 'task' ? 'task' : 'session',
    agent: r.agent,
    user: r.user_name ?? undefined,
    tenant: r.tenant ?? undefined,
    issuer: r.issuer,
    actors: JSON.parse(r.actors) as string[],
    principalKey: r.principal_key,
    owner: r.owner ?? undefined,
    tools: r.tools === null ? undefined : (JSON.parse(r.tools) as string[]),
    constraints: JSON.parse(r.constraints) as GrantRecord['constraints'],
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    idleTimeoutMs: r.idle_timeout_ms,
    createdBy: r.created_by,
    tokenId: r.token_id ?? undefined,
    endedAt: r.ended_at ?? undefined,
    endReason: r.end_reason ?? undefined,
  };
}

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
      [
        g.id,
        g.kind,
        g.agent,
        g.user ?? null,
        g.tenant ?? null,
        g.issuer,
        JSON.stringify(g.actors),
        g.principalKey,
        g.owner ?? null,
        g.tools === undefined ? null : JSON.stringify(g.tools),
        JSON.stringify(g.constraints),
        g.createdAt,
        g.expiresAt,
        g.idleTimeoutMs,
        g.createdBy,
        g.tokenId ?? null,
      ],
    );
  }

  async get(id: string): Promise<GrantRecord | undefined> {
    const row = await this.#sql.one<GrantRow>('SELECT * FROM grants WHERE id = $1', [id]);
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
      'SELECT * FROM grants WHERE ended_at IS NULL AND expires_at > $1 ORDER BY created_at',
      [now],
    );
    return rows.map(toGrant);
  }
}
