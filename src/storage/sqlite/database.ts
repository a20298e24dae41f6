/**
 * Opening a better-sqlite3 database and migrating its schema (shared by the
 * gateway's store, ./index.ts, and the secret store's own database,
 * src/secrets/sqlite-repo.ts), and the base of the store's repositories.
 */
import Database from 'better-sqlite3';
import { ensurePrivateFile, restrictExisting } from '../../util/private-file.ts';

/**
 * How a repository runs one synchronous database operation: queued behind any
 * running transaction, or directly when the caller is that transaction.
 */
export type Run = <T>(op: () => T) => Promise<T>;

/**
 * The base class of a repository on SQLite: `prepare` runs once per database,
 * so the store's queued view and its transaction view share the statements
 * (`this.sql`), and each call goes through `this.run`.
 */
export function sqliteRepo<S>(prepare: (db: Database.Database) => S) {
  const prepared = new WeakMap<Database.Database, S>();
  return class {
    protected readonly sql: S;
    protected readonly run: Run;

    /** `run`: the store's queue, or direct inside a transaction (which holds the queue). */
    constructor(db: Database.Database, run: Run) {
      let sql = prepared.get(db);
      if (sql === undefined) {
        sql = prepare(db);
        prepared.set(db, sql);
      }
      this.sql = sql;
      this.run = run;
    }
  };
}

/**
 * Opens the database at `path` (`:memory:` for a private in-memory one), in WAL
 * mode with a 5 s busy timeout. A file database is owner-only: its directory is
 * created 0700 and the file 0600 before SQLite opens it, because SQLite creates
 * a missing database 0644 (less the umask) and gives the `-wal`, `-shm` and
 * `-journal` files it creates later the database file's mode; such files left
 * with looser modes by an older version lose their group/other bits too.
 */
export function openDatabase(path: string): Database.Database {
  if (path !== ':memory:') {
    ensurePrivateFile(path);
    for (const suffix of ['-wal', '-shm', '-journal']) restrictExisting(`${path}${suffix}`);
  }
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * Applies the migrations the database lacks, each in one transaction with its
 * version: `PRAGMA user_version` counts the ones applied, so `migrations` is
 * ordered and append-only. Returns the version found, which is greater than
 * `migrations.length` when a newer program wrote the database.
 */
export function migrate(db: Database.Database, migrations: readonly string[]): number {
  const found = Number(db.pragma('user_version', { simple: true }));
  migrations.forEach((sql, v) => {
    if (v < found) return;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${v + 1}`);
    })();
  });
  return found;
}
