/** The embedded authorization server's users on PostgreSQL (table `users`): local, or from the upstream IdP. */
import { toUser, type UserRow } from '../rows.ts';
import type { ExternalIdentity, PutExternalResult, UserRecord, UserRepo } from '../types.ts';
import type { Sql } from './database.ts';

const ADD = 'INSERT INTO users (username, password_hash, created_at, external) VALUES ($1, $2, $3, $4)';

/** {@link UserRepo} on the `users` table. */
export class PgUserRepo implements UserRepo {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  async add(u: UserRecord): Promise<void> {
    await this.#sql.count(ADD, [
      u.username,
      u.passwordHash,
      u.createdAt,
      u.external ? JSON.stringify(u.external) : null,
    ]);
  }

  async get(username: string): Promise<UserRecord | undefined> {
    const row = await this.#sql.one<UserRow>('SELECT * FROM users WHERE username = $1', [username]);
    return row && toUser(row);
  }

  async list(): Promise<UserRecord[]> {
    // COLLATE "C": by code point, as SQLite orders (the database's locale must not reorder names).
    return (await this.#sql.rows<UserRow>('SELECT * FROM users ORDER BY username COLLATE "C"')).map(toUser);
  }

  async remove(username: string): Promise<boolean> {
    return (await this.#sql.count('DELETE FROM users WHERE username = $1', [username])) > 0;
  }

  putExternal(username: string, identity: ExternalIdentity, now: number): Promise<PutExternalResult> {
    const json = JSON.stringify(identity);
    // One transaction holding the row (or, for a new name, the insert's key): two replicas logging
    // the same name in at once cannot both create it or bind it to different identities.
    return this.#sql.atomic(async (sql) => {
      const row = await sql.one<UserRow>('SELECT * FROM users WHERE username = $1 FOR UPDATE', [username]);
      if (!row) {
        const n = await sql.count(`${ADD} ON CONFLICT (username) DO NOTHING`, [username, '', now, json]);
        if (n === 1) return 'created';
        // Created by another replica between the read and the insert: decide on its row.
        const again = await sql.one<UserRow>('SELECT * FROM users WHERE username = $1 FOR UPDATE', [
          username,
        ]);
        if (!again) return 'conflict';
        return bindExternal(sql, again, username, identity, json);
      }
      return bindExternal(sql, row, username, identity, json);
    });
  }
}

async function bindExternal(
  sql: Sql,
  row: UserRow,
  username: string,
  identity: ExternalIdentity,
  json: string,
): Promise<PutExternalResult> {
  const cur = toUser(row).external;
  if (!cur || cur.issuer !== identity.issuer || cur.subject !== identity.subject) return 'conflict';
  await sql.count('UPDATE users SET external = $1 WHERE username = $2', [json, username]);
  return 'updated';
}
