/** The embedded authorization server's users on SQLite (table `users`): local, or from the upstream IdP. */
import { toUser, type UserRow } from '../rows.ts';
import type { ExternalIdentity, PutExternalResult, UserRecord, UserRepo } from '../types.ts';
import { sqliteRepo } from './database.ts';

const Base = sqliteRepo((db) => ({
  add: db.prepare('INSERT INTO users (username, password_hash, created_at, external) VALUES (?, ?, ?, ?)'),
  get: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
  list: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY username'),
  remove: db.prepare('DELETE FROM users WHERE username = ?'),
  setExternal: db.prepare('UPDATE users SET external = ? WHERE username = ?'),
}));

/** {@link UserRepo} on the `users` table. */
export class SqliteUserRepo extends Base implements UserRepo {
  add(u: UserRecord): Promise<void> {
    return this.run(
      () =>
        void this.sql.add.run(
          u.username,
          u.passwordHash,
          u.createdAt,
          u.external ? JSON.stringify(u.external) : null,
        ),
    );
  }

  get(username: string): Promise<UserRecord | undefined> {
    return this.run(() => {
      const row = this.sql.get.get(username);
      return row ? toUser(row) : undefined;
    });
  }

  list(): Promise<UserRecord[]> {
    return this.run(() => this.sql.list.all().map(toUser));
  }

  remove(username: string): Promise<boolean> {
    return this.run(() => this.sql.remove.run(username).changes > 0);
  }

  putExternal(username: string, identity: ExternalIdentity, now: number): Promise<PutExternalResult> {
    // One synchronous step on the store's queue: the read and the write cannot interleave with another.
    return this.run(() => {
      const row = this.sql.get.get(username);
      const json = JSON.stringify(identity);
      if (!row) {
        this.sql.add.run(username, '', now, json);
        return 'created';
      }
      const cur = toUser(row).external;
      if (!cur || cur.issuer !== identity.issuer || cur.subject !== identity.subject) return 'conflict';
      this.sql.setExternal.run(json, username);
      return 'updated';
    });
  }
}
