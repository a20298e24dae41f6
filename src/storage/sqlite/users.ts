/** The embedded authorization server's local users on SQLite (table `users`). */
import type { UserRecord, UserRepo } from '../types.ts';
import { sqliteRepo } from './database.ts';

interface UserRow {
  username: string;
  password_hash: string;
  created_at: number;
}

function toUser(r: UserRow): UserRecord {
  return { username: r.username, passwordHash: r.password_hash, createdAt: r.created_at };
}

const Base = sqliteRepo((db) => ({
  add: db.prepare('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)'),
  get: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
  list: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY username'),
  remove: db.prepare('DELETE FROM users WHERE username = ?'),
}));

/** {@link UserRepo} on the `users` table. */
export class SqliteUserRepo extends Base implements UserRepo {
  add(u: UserRecord): Promise<void> {
    return this.run(() => void this.sql.add.run(u.username, u.passwordHash, u.createdAt));
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
}
