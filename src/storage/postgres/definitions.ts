/** Tool-definition pins on PostgreSQL (table `definitions`). */
import { type DefinitionRow, definitionValues, toDefinitions } from '../rows.ts';
import type { DefinitionKey, DefinitionRecord, DefinitionRepo, DefinitionStatus } from '../types.ts';
import type { Sql } from './database.ts';

const WHERE_KEY = 'server = $1 AND kind = $2 AND name = $3';

/**
 * Serialises the read-then-write steps on one (server, kind, name) across connections and
 * replicas: an advisory lock held until the step's transaction ends.
 */
async function lockName(sql: Sql, server: string, kind: string, name: string): Promise<void> {
  await sql.rows(
    "SELECT pg_advisory_xact_lock(hashtext('gatehouse.definition:' || $1 || '/' || $2 || '/' || $3))",
    [server, kind, name],
  );
}

async function statusOf(sql: Sql, server: string, kind: string, name: string, hash: string) {
  return (
    await sql.one<{ status: string }>(`SELECT status FROM definitions WHERE ${WHERE_KEY} AND hash = $4`, [
      server,
      kind,
      name,
      hash,
    ])
  )?.status;
}

async function write(sql: Sql, r: DefinitionRecord): Promise<void> {
  await sql.count(
    `INSERT INTO definitions (server, kind, name, hash, definition, status, findings, first_seen, updated_at, decided_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    definitionValues(r),
  );
}

async function decide(
  sql: Sql,
  status: DefinitionStatus,
  at: number,
  by: string | null,
  k: [string, string, string, string],
): Promise<void> {
  await sql.count(
    `UPDATE definitions SET status = $5, updated_at = $6, decided_by = $7 WHERE ${WHERE_KEY} AND hash = $4`,
    [...k, status, at, by],
  );
}

/** {@link DefinitionRepo} on the `definitions` table; each step is one transaction under its name's lock. */
export class PgDefinitionRepo implements DefinitionRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  pin(r: DefinitionRecord): Promise<boolean> {
    return this.#sql.atomic(async (sql) => {
      await lockName(sql, r.server, r.kind, r.name);
      const taken = await sql.one(
        `SELECT 1 FROM definitions WHERE ${WHERE_KEY} AND (status = 'pinned' OR hash = $4) LIMIT 1`,
        [r.server, r.kind, r.name, r.hash],
      );
      if (taken) return false;
      await write(sql, { ...r, status: 'pinned' });
      return true;
    });
  }

  propose(r: DefinitionRecord): Promise<boolean> {
    return this.#sql.atomic(async (sql) => {
      await lockName(sql, r.server, r.kind, r.name);
      const was = await statusOf(sql, r.server, r.kind, r.name, r.hash);
      // A pin replaced earlier that is offered again waits for review like any other definition.
      if (was !== undefined && was !== 'superseded') return false;
      await sql.count(`DELETE FROM definitions WHERE ${WHERE_KEY} AND status = 'pending'`, [
        r.server,
        r.kind,
        r.name,
      ]);
      if (was === 'superseded')
        await decide(sql, 'pending', r.updatedAt, null, [r.server, r.kind, r.name, r.hash]);
      else await write(sql, { ...r, status: 'pending' });
      return true;
    });
  }

  approve({ server, kind, name, hash }: DefinitionKey, by: string, at: number): Promise<boolean> {
    return this.#sql.atomic(async (sql) => {
      await lockName(sql, server, kind, name);
      const s = await statusOf(sql, server, kind, name, hash);
      if (s !== 'pending' && s !== 'rejected') return false;
      await sql.count(
        `UPDATE definitions SET status = 'superseded', updated_at = $4 WHERE ${WHERE_KEY} AND status = 'pinned'`,
        [server, kind, name, at],
      );
      await decide(sql, 'pinned', at, by, [server, kind, name, hash]);
      return true;
    });
  }

  reject({ server, kind, name, hash }: DefinitionKey, by: string, at: number): Promise<boolean> {
    return this.#sql.atomic(async (sql) => {
      await lockName(sql, server, kind, name);
      if ((await statusOf(sql, server, kind, name, hash)) !== 'pending') return false;
      await decide(sql, 'rejected', at, by, [server, kind, name, hash]);
      return true;
    });
  }

  async list(filter: { server?: string; status?: DefinitionStatus } = {}): Promise<DefinitionRecord[]> {
    return toDefinitions(
      await this.#sql.rows<DefinitionRow>(
        `SELECT * FROM definitions WHERE status <> 'superseded'
         AND ($1::text IS NULL OR server = $1) AND ($2::text IS NULL OR status = $2)
         ORDER BY server COLLATE "C", kind COLLATE "C", name COLLATE "C", updated_at`,
        [filter.server ?? null, filter.status ?? null],
      ),
    );
  }

  async changedSince(at: number): Promise<DefinitionRecord[]> {
    return toDefinitions(
      await this.#sql.rows<DefinitionRow>(
        'SELECT * FROM definitions WHERE updated_at >= $1 ORDER BY updated_at',
        [at],
      ),
    );
  }
}
