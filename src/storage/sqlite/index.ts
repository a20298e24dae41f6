/**
 * SQLite storage (better-sqlite3 12.x: 13.x crashes on Node 20). Synchronous
 * under the hood; calls are serialised through one queue so a transaction's
 * awaits never interleave with other writes. One file per repository beside
 * this one; the schema is in migrations.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type Database from 'better-sqlite3';
import { AuditSegments } from '../audit-segments.ts';
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
import { SqliteApprovalRepo } from './approvals.ts';
import { SqliteAuditRepo } from './audit.ts';
import { SqliteAuditIndex } from './audit-index.ts';
import { migrate, openDatabase, type Run } from './database.ts';
import { SqliteDefinitionRepo } from './definitions.ts';
import { SqliteGrantRepo } from './grants.ts';
import { SqliteLeaseRepo } from './leases.ts';
import { MIGRATIONS } from './migrations.ts';
import { SqliteOAuthRepo } from './oauth.ts';
import { SqliteRevocationRepo } from './revocations.ts';
import { SqliteSessionRepo } from './sessions.ts';
import { SqliteUserRepo } from './users.ts';

/** Options of the SQLite backend. */
export interface SqliteOptions {
  /**
   * `normal` (default): a commit (and an audit batch, written with write()) survives
   * a process crash (kill -9) but the last ones can be lost on power loss or an OS
   * crash. `full`: every commit fsyncs the WAL and every audit batch is fdatasync'd
   * before it counts as written, so they also survive power loss (slower; see docs/audit.md).
   */
  synchronous?: 'normal' | 'full';
  /** Directory of the audit segment files (default: `audit/` beside the database; a temp dir for `:memory:`). */
  auditDir?: string;
  /** Size at which a new audit segment file is started (default 16 MiB). */
  segmentBytes?: number;
}

/** {@link Storage} in one SQLite database (WAL) plus the audit segment files. */
export class SqliteStorage implements Storage {
  readonly sessions: SessionRepo;
  readonly grants: GrantRepo;
  readonly leases: LeaseRepo;
  readonly revocations: RevocationRepo;
  readonly oauth: OAuthRepo;
  readonly users: UserRepo;
  readonly audit: AuditRepo;
  readonly approvals: ApprovalRepo;
  readonly definitions: DefinitionRepo;
  readonly #db: Database.Database;
  /** The repositories as seen inside a transaction: not queued (the transaction holds the queue). */
  readonly #txRepos: Repos;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #segments: AuditSegments;
  readonly #auditIndex: SqliteAuditIndex;
  /** A temp segment dir of a `:memory:` database, removed on close. */
  readonly #tempDir: string | undefined;

  /** Opens (creating and migrating) the database at `path`, or a private one for `:memory:`. */
  constructor(path: string, options: SqliteOptions = {}) {
    this.#tempDir =
      path === ':memory:' && options.auditDir === undefined
        ? mkdtempSync(join(tmpdir(), 'gatehouse-audit-'))
        : undefined;
    this.#segments = new AuditSegments(options.auditDir ?? this.#tempDir ?? join(dirname(path), 'audit'), {
      synchronous: options.synchronous ?? 'normal',
      ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
    });
    const db = openDatabase(path);
    this.#db = db;
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db, MIGRATIONS);
    const queued: Run = (op) => this.#run(op);
    this.#auditIndex = new SqliteAuditIndex(db, this.#segments, queued);
    const repos = (run: Run, inTransaction: boolean): Repos => ({
      sessions: new SqliteSessionRepo(db, run),
      grants: new SqliteGrantRepo(db, run),
      leases: new SqliteLeaseRepo(db, run),
      revocations: new SqliteRevocationRepo(db, run),
      oauth: new SqliteOAuthRepo(db, run),
      users: new SqliteUserRepo(db, run),
      audit: new SqliteAuditRepo(this.#auditIndex, this.#segments, run, inTransaction),
      approvals: new SqliteApprovalRepo(db, run),
      definitions: new SqliteDefinitionRepo(db, run),
    });
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
    } = repos(queued, false));
    this.#txRepos = repos(async (op) => op(), true);
  }

  /** Queues an operation behind any running transaction. */
  #run<T>(op: () => T | PromiseLike<T>): Promise<T> {
    const p = this.#queue.then(op);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction, holding the queue until it settles. */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T> {
    return this.#run(async () => {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(this.#txRepos);
        this.#db.exec('COMMIT');
        return out;
      } catch (err) {
        this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /** Brings the query index up to date, then closes the files and the database. */
  async close(): Promise<void> {
    this.#auditIndex.stop();
    await this.#queue;
    this.#auditIndex.catchUp(Number.POSITIVE_INFINITY);
    this.#segments.close();
    this.#db.close();
    if (this.#tempDir) rmSync(this.#tempDir, { recursive: true, force: true });
  }
}
