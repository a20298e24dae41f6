/** The sessions repository on PostgreSQL (table `sessions`). */
import { type SessionRow, toSession } from '../rows.ts';
import type { SessionRecord, SessionRepo } from '../types.ts';
import type { Sql } from './database.ts';

/**
 * A client-chosen display field (`clientInfo.name`, `version`) as PostgreSQL TEXT can hold it: a NUL
 * becomes U+FFFD. Without this one client's odd name would leave its session unrecorded (T31).
 */
function displayText(s: string | undefined): string | null {
  return s === undefined ? null : s.replaceAll('\u0000', '\ufffd');
}

/** {@link SessionRepo} on the `sessions` table. */
export class PgSessionRepo implements SessionRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async insert(r: SessionRecord): Promise<void> {
    await this.#sql.count(
      'INSERT INTO sessions (id, protocol_version, client_name, client_version, created_at) VALUES ($1, $2, $3, $4, $5)',
      [r.id, r.protocolVersion, displayText(r.clientName), displayText(r.clientVersion), r.createdAt],
    );
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const row = await this.#sql.one<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return row && toSession(row);
  }

  async close(id: string, reason: string, at: number): Promise<void> {
    await this.#sql.count(
      'UPDATE sessions SET closed_at = $1, close_reason = $2 WHERE id = $3 AND closed_at IS NULL',
      [at, reason, id],
    );
  }

  async listOpen(): Promise<SessionRecord[]> {
    const rows = await this.#sql.rows<SessionRow>(
      'SELECT * FROM sessions WHERE closed_at IS NULL ORDER BY created_at',
    );
    return rows.map(toSession);
  }

  closeAllOpen(reason: string, at: number): Promise<number> {
    return this.#sql.count('UPDATE sessions SET closed_at = $1, close_reason = $2 WHERE closed_at IS NULL', [
      at,
      reason,
    ]);
  }
}
