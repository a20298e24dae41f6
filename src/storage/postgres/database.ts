/**
 * The PostgreSQL connection layer of the store: one `pg` Pool per store, every
 * connection confined to the store's schema (`search_path`), 64-bit integers
 * read as numbers, and {@link Sql}, what a repository runs its statements on
 * (the pool, or the client of a running transaction).
 */
import pg from 'pg';
import { StoreError } from '../errors.ts';
import { MIGRATIONS } from './migrations.ts';

/** A schema name the store accepts: a plain lower-case SQL identifier (never quoted, never input to SQL text otherwise). */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * `int8` (BIGINT: epoch ms, counts) as a JS number: every value the store keeps is below 2^53.
 * Per pool, so no other `pg` user in the process is affected.
 */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** Options of a PostgreSQL store (config `storage.postgres`, docs/storage.md). */
export interface PostgresOptions {
  /** `postgres://user:password@host:port/database?…`. */
  url: string;
  /** The schema that holds the store's tables (created by the first migration run). Default `gatehouse`. */
  schema?: string;
  /** Pool size (connections per process). Default 10. */
  poolMax?: number;
  /** An idle connection is closed after this long (ms). Default 30 000. */
  idleTimeoutMs?: number;
  /** A connection attempt fails after this long (ms). Default 5 000. */
  connectTimeoutMs?: number;
  /** `auto`: migrate when the store opens; `manual`: refuse a schema that lacks migrations (run `gatehouse migrate`). */
  migrate?: 'auto' | 'manual';
  /**
   * `synchronous_commit` of the store's connections: `on` (default: a commit waits for the WAL flush)
   * or `off` (it survives a crash of this process, not of the database server: the config's
   * `audit.synchronous: normal`, as SQLite's `synchronous = NORMAL`).
   */
  synchronousCommit?: 'on' | 'off';
  /** Errors of idle pool connections (a restarted server): logged, never thrown. */
  onPoolError?: (err: Error) => void;
}

/** Opens a pool confined to `schema`; connections are made on first use. */
export function createPool(opts: PostgresOptions, schema: string): pg.Pool {
  if (!SCHEMA_NAME.test(schema)) throw new StoreError('store_config', `invalid schema name \`${schema}\``);
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax ?? 10,
    idleTimeoutMillis: opts.idleTimeoutMs ?? 30_000,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    // INVARIANT: `schema` matched SCHEMA_NAME above, so it needs no quoting in the startup options.
    options: `-c search_path=${schema} -c synchronous_commit=${opts.synchronousCommit === 'off' ? 'off' : 'on'}`,
    types: TYPES,
    application_name: 'gatehouse',
  });
  // An idle client whose server went away emits here; unhandled, it would end the process.
  pool.on('error', (err) => opts.onPoolError?.(err));
  return pool;
}

/** Something statements run on: the pool (each statement on any connection) or one transaction's client. */
type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/**
 * What a repository runs its SQL on. `atomic` runs several statements as one unit: a transaction of
 * its own on the pool, a savepoint inside a storage transaction.
 */
export class Sql {
  readonly #q: Queryable;
  readonly #pool: pg.Pool | undefined;
  readonly #ready: () => Promise<void>;

  /** `pool` set: statements use the pool; otherwise `client` is a running transaction's connection. */
  constructor(target: { pool: pg.Pool } | { client: pg.PoolClient }, ready: () => Promise<void>) {
    this.#pool = 'pool' in target ? target.pool : undefined;
    this.#q = 'pool' in target ? target.pool : target.client;
    this.#ready = ready;
  }

  /** True when this runs inside a storage transaction. */
  get inTransaction(): boolean {
    return this.#pool === undefined;
  }

  /**
   * The rows of one statement. `text` may be `{ name, text }`: a statement prepared once per
   * connection (for the request path; the name must be unique to the text).
   */
  async rows<R extends pg.QueryResultRow>(
    text: string | { name: string; text: string },
    values: unknown[] = [],
  ): Promise<R[]> {
    await this.#ready();
    const q = typeof text === 'string' ? { text, values } : { ...text, values };
    return (await this.#q.query<R>(q)).rows;
  }

  /** The first row of one statement, undefined when none. */
  async one<R extends pg.QueryResultRow>(
    text: string | { name: string; text: string },
    values: unknown[] = [],
  ): Promise<R | undefined> {
    return (await this.rows<R>(text, values))[0];
  }

  /** How many rows one statement changed. */
  async count(text: string, values: unknown[] = []): Promise<number> {
    await this.#ready();
    return (await this.#q.query(text, values)).rowCount ?? 0;
  }

  /** Runs `fn` atomically: in a transaction of its own, or in a savepoint of the running one. */
  async atomic<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    await this.#ready();
    if (this.#pool === undefined) {
      const client = this.#q as pg.PoolClient;
      await client.query('SAVEPOINT gatehouse_atomic');
      try {
        const out = await fn(this);
        await client.query('RELEASE SAVEPOINT gatehouse_atomic');
        return out;
      } catch (err) {
        await client.query('ROLLBACK TO SAVEPOINT gatehouse_atomic');
        throw err;
      }
    }
    return inTransaction(this.#pool, (client) => fn(new Sql({ client }, this.#ready)));
  }
}

/** Runs `fn` in one transaction on a client of `pool`: committed when it resolves, rolled back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection is gone: the server rolled back; do not reuse it
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * The advisory lock key of `schema`'s migrations: every replica starting at once takes the same
 * one, so exactly one applies the missing migrations while the others wait, then find nothing to do.
 */
const MIGRATE_LOCK = "hashtext('gatehouse.migrate:' || $1)";

/** What a migration run found and did. */
export interface MigrateResult {
  /** The schema version found (0: a new schema). */
  from: number;
  /** The version after the run (greater than this build's when a newer build migrated the schema). */
  to: number;
  /** The versions this run applied. */
  applied: number[];
}

/**
 * Applies the migrations `schema` lacks, forward only, each in one transaction with its row in
 * `schema_migrations`, under a session-level advisory lock (concurrent replicas do not race).
 */
export async function migrate(pool: pg.Pool, schema: string): Promise<MigrateResult> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query(`SELECT pg_advisory_lock(${MIGRATE_LOCK})`, [schema]);
    try {
      // INVARIANT: schema matched SCHEMA_NAME (createPool), escapeIdentifier is belt and braces.
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version INTEGER PRIMARY KEY,
           name TEXT NOT NULL,
           applied_at BIGINT NOT NULL
         )`,
      );
      const from = await currentVersion(client);
      const applied: number[] = [];
      for (const [i, m] of MIGRATIONS.entries()) {
        const version = i + 1;
        if (version <= from) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query(
            'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
            [version, m.name, Date.now()],
          );
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new StoreError('store_migration_failed', `migration ${version} (${m.name}) failed`, err);
        }
        applied.push(version);
      }
      return { from, to: Math.max(from, MIGRATIONS.length), applied };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${MIGRATE_LOCK})`, [schema]);
    }
  } catch (err) {
    if (!(err instanceof StoreError)) broken = true;
    throw err;
  } finally {
    client.release(broken);
  }
}

/** The schema's version: the highest applied migration (0 when none or no table). */
export async function schemaVersion(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    return await currentVersion(client);
  } finally {
    client.release();
  }
}

async function currentVersion(client: pg.PoolClient): Promise<number> {
  const exists = await client.query<{ t: string | null }>("SELECT to_regclass('schema_migrations') AS t");
  if (!exists.rows[0]?.t) return 0;
  const r = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
  return r.rows[0]?.v ?? 0;
}
