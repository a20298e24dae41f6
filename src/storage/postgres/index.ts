/**
 * PostgreSQL storage (node-postgres `pg` with its Pool), for several gateway processes sharing one
 * state (cluster mode, docs/storage.md). One file per repository beside this one; the schema is in
 * migrations.ts, applied under an advisory lock (./database.ts).
 *
 * The constructor is synchronous and connects lazily: the first statement waits for {@link
 * PostgresStorage.ready} (connect, then migrate or check the schema version), so a failure there
 * fails every statement with the same {@link StoreError}. The gateway awaits `ready()` before serving.
 */
import type pg from 'pg';
import { StoreError } from '../errors.ts';
import type {
  ApprovalRepo,
  AuditRepo,
  DefinitionRepo,
  GrantRepo,
  LeaseRepo,
  OAuthRepo,
  Repos,
  RevocationRepo,
  SessionRepo,
  Storage,
  UserRepo,
} from '../types.ts';
import { PgApprovalRepo } from './approvals.ts';
import { PgAuditRepo } from './audit.ts';
import {
  createPool,
  inTransaction,
  type MigrateResult,
  migrate,
  type PostgresOptions,
  Sql,
  schemaVersion,
} from './database.ts';
import { PgDefinitionRepo } from './definitions.ts';
import { PgGrantRepo } from './grants.ts';
import { PgLeaseRepo } from './leases.ts';
import { MIGRATIONS } from './migrations.ts';
import { PgOAuthRepo } from './oauth.ts';
import { PgRevocationRepo } from './revocations.ts';
import { PgSessionRepo } from './sessions.ts';
import { PgUserRepo } from './users.ts';

export type { PostgresOptions } from './database.ts';

/** The schema when none is configured. */
export const DEFAULT_SCHEMA = 'gatehouse';

/** The audit chain a store writes when none is named. */
export const DEFAULT_AUDIT_CHAIN = 'main';

/** {@link Storage} in one PostgreSQL schema. */
export class PostgresStorage implements Storage {
  readonly sessions: SessionRepo;
  readonly grants: GrantRepo;
  readonly leases: LeaseRepo;
  readonly revocations: RevocationRepo;
  readonly oauth: OAuthRepo;
  readonly users: UserRepo;
  readonly audit: AuditRepo;
  readonly approvals: ApprovalRepo;
  readonly definitions: DefinitionRepo;
  /** The schema the store's tables live in. */
  readonly schema: string;
  readonly #pool: pg.Pool;
  readonly #opts: PostgresOptions;
  readonly #chain: string;
  #ready: Promise<MigrateResult> | undefined;
  #closed = false;

  /** `auditChain`: the audit chain this store appends to and reads (default `main`). */
  constructor(opts: PostgresOptions & { auditChain?: string }) {
    this.#opts = opts;
    this.schema = opts.schema ?? DEFAULT_SCHEMA;
    this.#chain = opts.auditChain ?? DEFAULT_AUDIT_CHAIN;
    this.#pool = createPool(opts, this.schema);
    ({
      sessions: this.sessions,
      grants: this.grants,
      leases: this.leases,
      revocations: this.revocations,
      oauth: this.oauth,
      users: this.users,
      audit: this.audit,
      approvals: this.approvals,
      definitions: this.definitions,
    } = this.#repos(new Sql({ pool: this.#pool }, () => this.#whenReady())));
  }

  #repos(sql: Sql): Repos {
    return {
      sessions: new PgSessionRepo(sql),
      grants: new PgGrantRepo(sql),
      leases: new PgLeaseRepo(sql),
      revocations: new PgRevocationRepo(sql),
      oauth: new PgOAuthRepo(sql),
      users: new PgUserRepo(sql),
      audit: new PgAuditRepo(sql, this.#chain),
      approvals: new PgApprovalRepo(sql),
      definitions: new PgDefinitionRepo(sql),
    };
  }

  async #whenReady(): Promise<void> {
    await this.ready();
  }

  /**
   * Connects and brings the schema up: `migrate: auto` (default) applies missing migrations;
   * `manual` refuses a schema that lacks any (StoreError `store_schema_behind`). Runs once; later
   * calls share the outcome.
   */
  ready(): Promise<MigrateResult> {
    this.#ready ??= this.#prepare();
    return this.#ready;
  }

  async #prepare(): Promise<MigrateResult> {
    try {
      if (this.#opts.migrate === 'manual') {
        const v = await schemaVersion(this.#pool);
        if (v < MIGRATIONS.length) {
          throw new StoreError(
            'store_schema_behind',
            `the PostgreSQL schema \`${this.schema}\` is at version ${v}, this build needs ${MIGRATIONS.length}: run \`gatehouse migrate\` (storage.postgres.migrate is manual)`,
          );
        }
        return { from: v, to: v, applied: [] };
      }
      return await migrate(this.#pool, this.schema);
    } catch (err) {
      throw unreachable(err);
    }
  }

  /** Applies missing migrations now, whatever `migrate` says (the `gatehouse migrate` verb). */
  async migrate(): Promise<MigrateResult> {
    try {
      return await migrate(this.#pool, this.schema);
    } catch (err) {
      throw unreachable(err);
    }
  }

  /** The schema's version (0: no schema yet), without migrating. */
  async schemaVersion(): Promise<number> {
    try {
      return await schemaVersion(this.#pool);
    } catch (err) {
      throw unreachable(err);
    }
  }

  /** Runs `fn` in one transaction on one connection: all of its writes or none. */
  async transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T> {
    await this.ready();
    return inTransaction(this.#pool, (client) =>
      fn(this.#repos(new Sql({ client }, () => this.#whenReady()))),
    );
  }

  /** Every audit chain in the schema (one per replica in cluster mode), by name. */
  async auditChains(): Promise<string[]> {
    await this.ready();
    const r = await this.#pool.query<{ chain: string }>(
      'SELECT chain FROM audit_log GROUP BY chain UNION SELECT chain FROM audit_checkpoints GROUP BY chain ORDER BY chain',
    );
    return r.rows.map((x) => x.chain);
  }

  /** A round trip to the server (readiness probes); rejects when it cannot be made. */
  async ping(): Promise<void> {
    await this.ready();
    await this.#pool.query('SELECT 1');
  }

  /** Closes the pool (after running statements finish). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/** A driver error as a StoreError naming the key to check (a StoreError as it is). */
function unreachable(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return new StoreError(
    'store_unreachable',
    `cannot use the PostgreSQL store (storage.postgres.url): ${err instanceof Error ? err.message : String(err)}`,
    err,
  );
}
