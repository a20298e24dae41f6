/**
 * The secret store's SQLite repository: a separate database file,
 * `<dataDir>/secrets.db` (WAL, mode 0600), not a table in the gateway's database.
 * Why: the ciphertexts stay out of the main database and its backups (which get
 * copied around far more than a secrets file should); the main schema keeps one
 * owner of its migrations; and this file can be swapped for a KMS- or Vault-backed
 * repository behind the same {@link SecretRepo} interface.
 */
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { migrate, openDatabase } from '../storage/sqlite/database.ts';
import type { Rewrap, SecretInfo, SecretRepo, SecretRow } from './repo.ts';

/** Ordered, append-only migrations; the index + 1 is the schema version (PRAGMA user_version). */
const MIGRATIONS = [
  `CREATE TABLE secrets (
     name TEXT PRIMARY KEY,
     service TEXT,
     format INTEGER NOT NULL,
     key_id TEXT NOT NULL,
     wrapped_key BLOB NOT NULL,
     ciphertext BLOB NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     last_used_at INTEGER
   );
   CREATE INDEX secrets_key_id ON secrets (key_id);`,
];

interface Row {
  name: string;
  service: string | null;
  format: number;
  key_id: string;
  wrapped_key: Buffer;
  ciphertext: Buffer;
  created_at: number;
  updated_at: number;
  last_used_at: number | null;
}

function info(r: Row): SecretInfo {
  return {
    name: r.name,
    service: r.service ?? undefined,
    keyId: r.key_id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastUsedAt: r.last_used_at ?? undefined,
  };
}

/** Path of the secrets database inside a data directory. */
export function secretsDbPath(dataDir: string): string {
  return join(dataDir, 'secrets.db');
}

/** {@link SecretRepo} on better-sqlite3 (synchronous underneath; each call is one statement or transaction). */
export class SqliteSecretRepo implements SecretRepo {
  readonly #db: Database.Database;

  constructor(path: string) {
    // Owner-only like every database (names and services are metadata worth keeping private too).
    this.#db = openDatabase(path);
    const version = migrate(this.#db, MIGRATIONS);
    if (version > MIGRATIONS.length) {
      this.#db.close();
      throw new Error(
        `${path}: schema version ${version} is newer than this gatehouse (${MIGRATIONS.length})`,
      );
    }
  }

  async get(name: string): Promise<SecretRow | undefined> {
    const r = this.#db.prepare('SELECT * FROM secrets WHERE name = ?').get(name) as Row | undefined;
    if (!r) return undefined;
    return { ...info(r), format: r.format, ciphertext: r.ciphertext, wrappedKey: r.wrapped_key };
  }

  async put(row: SecretRow): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO secrets (name, service, format, key_id, wrapped_key, ciphertext, created_at, updated_at, last_used_at)
         VALUES (@name, @service, @format, @keyId, @wrappedKey, @ciphertext, @createdAt, @updatedAt, @lastUsedAt)
         ON CONFLICT (name) DO UPDATE SET service = excluded.service, format = excluded.format,
           key_id = excluded.key_id, wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext,
           updated_at = excluded.updated_at`,
      )
      .run({
        name: row.name,
        service: row.service ?? null,
        format: row.format,
        keyId: row.keyId,
        wrappedKey: row.wrappedKey,
        ciphertext: row.ciphertext,
        createdAt: row.createdAt,
        updatedAt: row.updatedAt,
        lastUsedAt: row.lastUsedAt ?? null,
      });
  }

  async remove(name: string): Promise<boolean> {
    return this.#db.prepare('DELETE FROM secrets WHERE name = ?').run(name).changes > 0;
  }

  async list(): Promise<SecretInfo[]> {
    const rows = this.#db
      .prepare(
        'SELECT name, service, key_id, created_at, updated_at, last_used_at FROM secrets ORDER BY name',
      )
      .all() as Row[];
    return rows.map(info);
  }

  async touch(name: string, at: number): Promise<void> {
    this.#db.prepare('UPDATE secrets SET last_used_at = ? WHERE name = ?').run(at, name);
  }

  async wrappedKeys(): Promise<Array<{ name: string; keyId: string; wrappedKey: Buffer }>> {
    const rows = this.#db
      .prepare('SELECT name, key_id, wrapped_key FROM secrets ORDER BY name')
      .all() as Row[];
    return rows.map((r) => ({ name: r.name, keyId: r.key_id, wrappedKey: r.wrapped_key }));
  }

  async rewrap(updates: readonly Rewrap[]): Promise<number> {
    const stmt = this.#db.prepare(
      'UPDATE secrets SET key_id = ?, wrapped_key = ? WHERE name = ? AND key_id = ? AND wrapped_key = ?',
    );
    return this.#db.transaction(() => {
      let n = 0;
      for (const u of updates)
        n += stmt.run(u.keyId, u.wrappedKey, u.name, u.old.keyId, u.old.wrappedKey).changes;
      return n;
    })();
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}
