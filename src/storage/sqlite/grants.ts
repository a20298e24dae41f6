/** The grants repository on SQLite (table `grants`). */
import type { GrantRecord, GrantRepo, GrantSelector } from '../types.ts';
import { sqliteRepo } from './database.ts';
import { prepareEnd } from './ending.ts';

interface GrantRow {
  id: string;
  kind: string;
  agent: string;
  user: string | null;
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
    user: r.user ?? undefined,
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

const Base = sqliteRepo((db) => ({
  insert: db.prepare(
    `INSERT INTO grants (id, kind, agent, user, tenant, issuer, actors, principal_key, owner, tools,
       constraints, created_at, expires_at, idle_timeout_ms, created_by, token_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ),
  get: db.prepare<[string], GrantRow>('SELECT * FROM grants WHERE id = ?'),
  end: prepareEnd(db, 'grants', { id: 'id', agent: 'agent', user: 'user' }),
  endedSince: db.prepare<[number], { id: string; endedAt: number; endReason: string }>(
    'SELECT id, ended_at AS endedAt, end_reason AS endReason FROM grants WHERE ended_at >= ? ORDER BY ended_at',
  ),
  listLive: db.prepare<[number], GrantRow>(
    'SELECT * FROM grants WHERE ended_at IS NULL AND expires_at > ? ORDER BY created_at',
  ),
}));

/** {@link GrantRepo} on the `grants` table. */
export class SqliteGrantRepo extends Base implements GrantRepo {
  insert(g: GrantRecord): Promise<void> {
    return this.run(
      () =>
        void this.sql.insert.run(
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
        ),
    );
  }

  get(id: string): Promise<GrantRecord | undefined> {
    return this.run(() => {
      const row = this.sql.get.get(id);
      return row ? toGrant(row) : undefined;
    });
  }

  end(selector: GrantSelector, reason: string, at: number): Promise<string[]> {
    return this.run(() => this.sql.end(selector, reason, at));
  }

  endedSince(at: number): Promise<{ id: string; endedAt: number; endReason: string }[]> {
    return this.run(() => this.sql.endedSince.all(at));
  }

  listLive(now: number): Promise<GrantRecord[]> {
    return this.run(() => this.sql.listLive.all(now).map(toGrant));
  }
}
