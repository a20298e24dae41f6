/**
 * SQLite storage (better-sqlite3 12.x: 13.x crashes on Node 20). Synchronous
 * under the hood; calls are serialised through one queue so a transaction's
 * awaits never interleave with other writes.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { AuditSegments } from './audit-segments.ts';
import type {
  AuditCheckpointRow,
  AuditFilter,
  AuditRepo,
  AuditRow,
  CredentialBlock,
  GrantRecord,
  GrantRepo,
  LeaseRecord,
  LeaseRepo,
  OAuthRepo,
  Repos,
  SessionRecord,
  SessionRepo,
  Storage,
  UserRecord,
  UserRepo,
} from './types.ts';

/** Ordered, append-only migrations; the index + 1 is the schema version. */
const MIGRATIONS = [
  `CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     protocol_version TEXT NOT NULL,
     client_name TEXT,
     client_version TEXT,
     created_at INTEGER NOT NULL,
     closed_at INTEGER,
     close_reason TEXT
   );
   CREATE INDEX sessions_open ON sessions (closed_at, created_at);`,
  // 2: the embedded authorization server (oidc-provider models) and local users.
  `CREATE TABLE oauth (
     model TEXT NOT NULL,
     id TEXT NOT NULL,
     payload TEXT NOT NULL,
     expires_at INTEGER,
     grant_id TEXT,
     user_code TEXT,
     uid TEXT,
     consumed_at INTEGER,
     PRIMARY KEY (model, id)
   );
   CREATE INDEX oauth_grant ON oauth (grant_id) WHERE grant_id IS NOT NULL;
   CREATE INDEX oauth_uid ON oauth (model, uid) WHERE uid IS NOT NULL;
   CREATE INDEX oauth_user_code ON oauth (model, user_code) WHERE user_code IS NOT NULL;
   CREATE INDEX oauth_expires ON oauth (expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE users (
     username TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );`,
  // 3: the tamper-evident audit log (src/audit/). `body` is what is hashed; the
  // other columns are query copies that verification checks against it.
  `CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL,
     body TEXT NOT NULL,
     event_id TEXT NOT NULL,
     time INTEGER NOT NULL,
     type TEXT NOT NULL,
     request_id TEXT,
     grant_id TEXT,
     session_id TEXT,
     agent TEXT,
     user TEXT,
     jti TEXT,
     server TEXT,
     tool TEXT,
     decision TEXT
   );
   CREATE INDEX audit_time ON audit_log (time);
   CREATE INDEX audit_grant ON audit_log (grant_id) WHERE grant_id IS NOT NULL;
   CREATE INDEX audit_session ON audit_log (session_id) WHERE session_id IS NOT NULL;
   CREATE INDEX audit_agent ON audit_log (agent) WHERE agent IS NOT NULL;
   CREATE INDEX audit_user ON audit_log (user) WHERE user IS NOT NULL;
   CREATE INDEX audit_jti ON audit_log (jti) WHERE jti IS NOT NULL;
   CREATE INDEX audit_tool ON audit_log (tool) WHERE tool IS NOT NULL;
   CREATE TABLE audit_checkpoints (
     seq INTEGER PRIMARY KEY,
     hash TEXT NOT NULL,
     payload TEXT NOT NULL,
     signature TEXT NOT NULL,
     key_id TEXT NOT NULL,
     time INTEGER NOT NULL
   );`,
  // 4: grants (src/grants/).
  `CREATE TABLE grants (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     agent TEXT NOT NULL,
     user TEXT,
     tenant TEXT,
     issuer TEXT NOT NULL,
     actors TEXT NOT NULL,
     principal_key TEXT NOT NULL,
     owner TEXT,
     tools TEXT,
     constraints TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     idle_timeout_ms INTEGER NOT NULL,
     created_by TEXT NOT NULL,
     token_id TEXT,
     ended_at INTEGER,
     end_reason TEXT
   );
   CREATE INDEX grants_live ON grants (ended_at, expires_at);
   CREATE INDEX grants_agent ON grants (agent) WHERE ended_at IS NULL;
   CREATE INDEX grants_user ON grants (user) WHERE ended_at IS NULL;`,
  // 5: credential leases and kill switches (src/credentials/).
  `CREATE TABLE leases (
     id TEXT PRIMARY KEY,
     grant_id TEXT NOT NULL,
     service TEXT NOT NULL,
     credential TEXT NOT NULL,
     kind TEXT NOT NULL,
     agent TEXT NOT NULL,
     user TEXT,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     ended_at INTEGER,
     end_reason TEXT
   );
   CREATE INDEX leases_live ON leases (ended_at, expires_at);
   CREATE INDEX leases_grant ON leases (grant_id) WHERE ended_at IS NULL;
   CREATE TABLE credential_blocks (
     kind TEXT NOT NULL,
     name TEXT NOT NULL,
     reason TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (kind, name)
   );`,
];

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

/** Index rows copied from the segment files per transaction. */
const INDEX_CHUNK = 5000;
/** The index is brought up to date when appends pause this long ... */
const INDEX_IDLE_MS = 200;
/** ... or when it lags by this many records (queries always catch it up first). */
const INDEX_MAX_LAG = 100_000;

interface AuditDbRow {
  seq: number;
  prev_hash: string;
  hash: string;
  body: string;
  event_id: string;
  time: number;
  type: string;
  request_id: string | null;
  grant_id: string | null;
  session_id: string | null;
  agent: string | null;
  user: string | null;
  jti: string | null;
  server: string | null;
  tool: string | null;
  decision: string | null;
}

function toAuditRow(r: AuditDbRow): AuditRow {
  return {
    seq: r.seq,
    prevHash: r.prev_hash,
    hash: r.hash,
    body: r.body,
    eventId: r.event_id,
    time: r.time,
    type: r.type,
    requestId: r.request_id ?? undefined,
    grantId: r.grant_id ?? undefined,
    sessionId: r.session_id ?? undefined,
    agent: r.agent ?? undefined,
    user: r.user ?? undefined,
    jti: r.jti ?? undefined,
    server: r.server ?? undefined,
    tool: r.tool ?? undefined,
    decision: r.decision ?? undefined,
  };
}

interface CheckpointDbRow {
  seq: number;
  hash: string;
  payload: string;
  signature: string;
  key_id: string;
  time: number;
}

function toCheckpoint(r: CheckpointDbRow): AuditCheckpointRow {
  return {
    seq: r.seq,
    hash: r.hash,
    payload: r.payload,
    signature: r.signature,
    keyId: r.key_id,
    time: r.time,
  };
}

/** Query filter field -> column (fixed names, so the WHERE clause never carries input). */
const AUDIT_FILTER_COLUMNS = {
  agent: 'agent',
  user: 'user',
  grantId: 'grant_id',
  sessionId: 'session_id',
  requestId: 'request_id',
  tool: 'tool',
  server: 'server',
  decision: 'decision',
  jti: 'jti',
  type: 'type',
} as const satisfies Partial<Record<keyof AuditFilter, string>>;

interface OAuthRow {
  payload: string;
  consumed_at: number | null;
}

function toPayload(r: OAuthRow | undefined): Record<string, unknown> | undefined {
  if (!r) return undefined;
  const payload = JSON.parse(r.payload) as Record<string, unknown>;
  if (r.consumed_at !== null) payload['consumed'] = r.consumed_at;
  return payload;
}

interface UserRow {
  username: string;
  password_hash: string;
  created_at: number;
}

function toUser(r: UserRow): UserRecord {
  return { username: r.username, passwordHash: r.password_hash, createdAt: r.created_at };
}

interface SessionRow {
  id: string;
  protocol_version: string;
  client_name: string | null;
  client_version: string | null;
  created_at: number;
  closed_at: number | null;
  close_reason: string | null;
}

function toRecord(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    protocolVersion: r.protocol_version,
    clientName: r.client_name ?? undefined,
    clientVersion: r.client_version ?? undefined,
    createdAt: r.created_at,
    closedAt: r.closed_at ?? undefined,
    closeReason: r.close_reason ?? undefined,
  };
}

interface GrantRow {
  id: string;
  kind: string;
  agent: string;
  user: string | null;
  tenant: string | null;
  issuer: string;
  actors: string;
  principal_key: string;
  owner: string | null;
  tools: string | null;
  constraints: string;
  created_at: number;
  expires_at: number;
  idle_timeout_ms: number;
  created_by: string;
  token_id: string | null;
  ended_at: number | null;
  end_reason: string | null;
}

function toGrant(r: GrantRow): GrantRecord {
  return {
    id: r.id,
    kind: r.kind === 'task' ? 'task' : 'session',
    agent: r.agent,
    user: r.user ?? undefined,
    tenant: r.tenant ?? undefined,
    issuer: r.issuer,
    actors: JSON.parse(r.actors) as string[],
    principalKey: r.principal_key,
    owner: r.owner ?? undefined,
    tools: r.tools === null ? undefined : (JSON.parse(r.tools) as string[]),
    constraints: JSON.parse(r.constraints) as GrantRecord['constraints'],
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    idleTimeoutMs: r.idle_timeout_ms,
    createdBy: r.created_by,
    tokenId: r.token_id ?? undefined,
    endedAt: r.ended_at ?? undefined,
    endReason: r.end_reason ?? undefined,
  };
}

interface LeaseRow {
  id: string;
  grant_id: string;
  service: string;
  credential: string;
  kind: string;
  agent: string;
  user: string | null;
  created_at: number;
  expires_at: number;
}

export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  readonly sessions: SessionRepo;
  readonly grants: GrantRepo;
  readonly leases: LeaseRepo;
  readonly oauth: OAuthRepo;
  readonly users: UserRepo;
  readonly audit: AuditRepo;
  /** The repositories as seen inside a transaction: not queued (the transaction holds the queue). */
  private readonly txRepos: Repos;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly segments: AuditSegments;
  /** A temp segment dir of a `:memory:` database, removed on close. */
  private readonly tempDir: string | undefined;
  private indexTimer: NodeJS.Timeout | undefined;
  private lastAppend = 0;
  private readonly catchUpIndex: (max: number) => number;

  constructor(path: string, options: SqliteOptions = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.tempDir =
      path === ':memory:' && options.auditDir === undefined
        ? mkdtempSync(join(tmpdir(), 'gatehouse-audit-'))
        : undefined;
    this.segments = new AuditSegments(options.auditDir ?? this.tempDir ?? join(dirname(path), 'audit'), {
      synchronous: options.synchronous ?? 'normal',
      ...(options.segmentBytes !== undefined ? { segmentBytes: options.segmentBytes } : {}),
    });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
    const db = this.db;
    const insert = db.prepare(
      'INSERT INTO sessions (id, protocol_version, client_name, client_version, created_at) VALUES (?, ?, ?, ?, ?)',
    );
    const get = db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?');
    const close = db.prepare(
      'UPDATE sessions SET closed_at = ?, close_reason = ? WHERE id = ? AND closed_at IS NULL',
    );
    const listOpen = db.prepare<[], SessionRow>(
      'SELECT * FROM sessions WHERE closed_at IS NULL ORDER BY created_at',
    );
    const closeAll = db.prepare(
      'UPDATE sessions SET closed_at = ?, close_reason = ? WHERE closed_at IS NULL',
    );
    const sessions = (run: <T>(op: () => T) => Promise<T>): SessionRepo => ({
      insert: (r) =>
        run(
          () =>
            void insert.run(
              r.id,
              r.protocolVersion,
              r.clientName ?? null,
              r.clientVersion ?? null,
              r.createdAt,
            ),
        ),
      get: (id) =>
        run(() => {
          const row = get.get(id);
          return row ? toRecord(row) : undefined;
        }),
      close: (id, reason, at) => run(() => void close.run(at, reason, id)),
      listOpen: () => run(() => listOpen.all().map(toRecord)),
      closeAllOpen: (reason, at) => run(() => closeAll.run(at, reason).changes),
    });
    const live = 'AND (expires_at IS NULL OR expires_at > ?)';
    const oUpsert = db.prepare(
      `INSERT INTO oauth (model, id, payload, expires_at, grant_id, user_code, uid) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at,
         grant_id = excluded.grant_id, user_code = excluded.user_code, uid = excluded.uid`,
    );
    const oFind = db.prepare<[string, string, number], OAuthRow>(
      `SELECT payload, consumed_at FROM oauth WHERE model = ? AND id = ? ${live}`,
    );
    const oFindByUid = db.prepare<[string, string, number], OAuthRow>(
      `SELECT payload, consumed_at FROM oauth WHERE model = ? AND uid = ? ${live} LIMIT 1`,
    );
    const oFindByUserCode = db.prepare<[string, string, number], OAuthRow>(
      `SELECT payload, consumed_at FROM oauth WHERE model = ? AND user_code = ? ${live} LIMIT 1`,
    );
    // A consumed row stays consumed across later upserts: single use is never undone.
    const oConsume = db.prepare(
      'UPDATE oauth SET consumed_at = ? WHERE model = ? AND id = ? AND consumed_at IS NULL',
    );
    const oDestroy = db.prepare('DELETE FROM oauth WHERE model = ? AND id = ?');
    const oRevoke = db.prepare('DELETE FROM oauth WHERE grant_id = ?');
    const oPurge = db.prepare('DELETE FROM oauth WHERE expires_at IS NOT NULL AND expires_at <= ?');
    const oauth = (run: <T>(op: () => T) => Promise<T>): OAuthRepo => ({
      upsert: (model, id, payload, expiresAt, grantId, userCode, uid) =>
        run(
          () =>
            void oUpsert.run(
              model,
              id,
              JSON.stringify(payload),
              expiresAt ?? null,
              grantId ?? null,
              userCode ?? null,
              uid ?? null,
            ),
        ),
      find: (model, id) => run(() => toPayload(oFind.get(model, id, Date.now()))),
      findByUid: (model, uid) => run(() => toPayload(oFindByUid.get(model, uid, Date.now()))),
      findByUserCode: (model, code) => run(() => toPayload(oFindByUserCode.get(model, code, Date.now()))),
      consume: (model, id, at) => run(() => void oConsume.run(at, model, id)),
      destroy: (model, id) => run(() => void oDestroy.run(model, id)),
      revokeByGrantId: (grantId) => run(() => oRevoke.run(grantId).changes),
      purgeExpired: (now) => run(() => oPurge.run(now).changes),
    });
    const uAdd = db.prepare('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)');
    const uGet = db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?');
    const uList = db.prepare<[], UserRow>('SELECT * FROM users ORDER BY username');
    const uRemove = db.prepare('DELETE FROM users WHERE username = ?');
    const users = (run: <T>(op: () => T) => Promise<T>): UserRepo => ({
      add: (u) => run(() => void uAdd.run(u.username, u.passwordHash, u.createdAt)),
      get: (name) =>
        run(() => {
          const row = uGet.get(name);
          return row ? toUser(row) : undefined;
        }),
      list: () => run(() => uList.all().map(toUser)),
      remove: (name) => run(() => uRemove.run(name).changes > 0),
    });
    const { repo: audit, catchUp } = this.auditRepo();
    this.catchUpIndex = catchUp;
    const grants = this.grantRepo();
    const leases = this.leaseRepo();
    const queued = <T>(op: () => T): Promise<T> => this.run(op);
    const direct = async <T>(op: () => T): Promise<T> => op();
    this.sessions = sessions(queued);
    this.grants = grants(queued);
    this.leases = leases(queued);
    this.oauth = oauth(queued);
    this.users = users(queued);
    this.audit = audit(queued, false);
    this.txRepos = {
      sessions: sessions(direct),
      grants: grants(direct),
      leases: leases(direct),
      oauth: oauth(direct),
      users: users(direct),
      audit: audit(direct, true),
    };
  }

  private grantRepo(): (run: <T>(op: () => T) => Promise<T>) => GrantRepo {
    const db = this.db;
    const insert = db.prepare(
      `INSERT INTO grants (id, kind, agent, user, tenant, issuer, actors, principal_key, owner, tools,
         constraints, created_at, expires_at, idle_timeout_ms, created_by, token_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const get = db.prepare<[string], GrantRow>('SELECT * FROM grants WHERE id = ?');
    const live = 'ended_at IS NULL';
    const endBy = {
      id: db.prepare<[number, string, string], { id: string }>(
        `UPDATE grants SET ended_at = ?, end_reason = ? WHERE id = ? AND ${live} RETURNING id`,
      ),
      agent: db.prepare<[number, string, string], { id: string }>(
        `UPDATE grants SET ended_at = ?, end_reason = ? WHERE agent = ? AND ${live} RETURNING id`,
      ),
      user: db.prepare<[number, string, string], { id: string }>(
        `UPDATE grants SET ended_at = ?, end_reason = ? WHERE user = ? AND ${live} RETURNING id`,
      ),
    };
    const endedSince = db.prepare<[number], { id: string; endedAt: number; endReason: string }>(
      'SELECT id, ended_at AS endedAt, end_reason AS endReason FROM grants WHERE ended_at >= ? ORDER BY ended_at',
    );
    const listLive = db.prepare<[number], GrantRow>(
      `SELECT * FROM grants WHERE ${live} AND expires_at > ? ORDER BY created_at`,
    );
    return (run) => ({
      insert: (g) =>
        run(
          () =>
            void insert.run(
              g.id,
              g.kind,
              g.agent,
              g.user ?? null,
              g.tenant ?? null,
              g.issuer,
              JSON.stringify(g.actors),
              g.principalKey,
              g.owner ?? null,
              g.tools === undefined ? null : JSON.stringify(g.tools),
              JSON.stringify(g.constraints),
              g.createdAt,
              g.expiresAt,
              g.idleTimeoutMs,
              g.createdBy,
              g.tokenId ?? null,
            ),
        ),
      get: (id) =>
        run(() => {
          const row = get.get(id);
          return row ? toGrant(row) : undefined;
        }),
      end: (selector, reason, at) =>
        run(() => {
          const [key, value] = Object.entries(selector)[0] as [keyof typeof endBy, string];
          return endBy[key].all(at, reason, value).map((r) => r.id);
        }),
      endedSince: (at) => run(() => endedSince.all(at)),
      listLive: (now) => run(() => listLive.all(now).map(toGrant)),
    });
  }

  private leaseRepo(): (run: <T>(op: () => T) => Promise<T>) => LeaseRepo {
    const db = this.db;
    const insert = db.prepare(
      `INSERT INTO leases (id, grant_id, service, credential, kind, agent, user, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const column = {
      id: 'id',
      grant: 'grant_id',
      service: 'service',
      agent: 'agent',
      user: 'user',
      secret: 'credential',
    };
    const endBy = Object.fromEntries(
      Object.entries(column).map(([k, col]) => [
        k,
        db.prepare<[number, string, string], { id: string }>(
          `UPDATE leases SET ended_at = ?, end_reason = ? WHERE ${col} = ? AND ended_at IS NULL RETURNING id`,
        ),
      ]),
    );
    const endedSince = db.prepare<[number], { id: string; endReason: string }>(
      'SELECT id, end_reason AS endReason FROM leases WHERE ended_at >= ? ORDER BY ended_at',
    );
    const listLive = db.prepare<[number], LeaseRow>(
      'SELECT * FROM leases WHERE ended_at IS NULL AND expires_at > ? ORDER BY created_at',
    );
    const block = db.prepare(
      'INSERT OR REPLACE INTO credential_blocks (kind, name, reason, created_at) VALUES (?, ?, ?, ?)',
    );
    const unblock = db.prepare('DELETE FROM credential_blocks WHERE kind = ? AND name = ?');
    const blocks = db.prepare<[], CredentialBlock>(
      'SELECT kind, name, reason, created_at AS createdAt FROM credential_blocks ORDER BY created_at',
    );
    return (run) => ({
      insert: (l) =>
        run(
          () =>
            void insert.run(
              l.id,
              l.grantId,
              l.service,
              l.credential,
              l.kind,
              l.agent,
              l.user ?? null,
              l.createdAt,
              l.expiresAt,
            ),
        ),
      end: (selector, reason, at) =>
        run(() => {
          const [key, value] = Object.entries(selector)[0] as [string, string];
          const stmt = endBy[key];
          if (!stmt) throw new Error(`unknown lease selector ${key}`);
          return stmt.all(at, reason, value).map((r) => r.id);
        }),
      endedSince: (at) => run(() => endedSince.all(at)),
      listLive: (now) =>
        run(() =>
          listLive.all(now).map((r) => ({
            id: r.id,
            grantId: r.grant_id,
            service: r.service,
            credential: r.credential,
            kind: r.kind as LeaseRecord['kind'],
            agent: r.agent,
            user: r.user ?? undefined,
            createdAt: r.created_at,
            expiresAt: r.expires_at,
            endedAt: undefined,
            endReason: undefined,
          })),
        ),
      block: (b) => run(() => void block.run(b.kind, b.name, b.reason, b.createdAt)),
      unblock: (kind, name) => run(() => unblock.run(kind, name).changes > 0),
      blocks: () =>
        run(() =>
          blocks.all().map(({ kind, name, reason, createdAt }) => ({ kind, name, reason, createdAt })),
        ),
    });
  }

  /**
   * The audit repository: the segment files are the durable log (appends,
   * head, bounds, range); the `audit_log` table is their query index, filled
   * from the files off the request path (when appends pause, when it lags far
   * behind, and before every query), and checkpoints live in SQLite.
   */
  private auditRepo(): {
    repo: (run: <T>(op: () => T) => Promise<T>, inTx: boolean) => AuditRepo;
    catchUp: (max: number) => number;
  } {
    const db = this.db;
    const segments = this.segments;
    const insert = db.prepare(
      `INSERT OR IGNORE INTO audit_log (seq, prev_hash, hash, body, event_id, time, type, request_id, grant_id,
         session_id, agent, user, jti, server, tool, decision)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertCheckpoint = db.prepare(
      // A later checkpoint at the same head (prune right after a clean close's checkpoint) supersedes it: it carries the new floor.
      'INSERT OR REPLACE INTO audit_checkpoints (seq, hash, payload, signature, key_id, time) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const indexed = db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM audit_log');
    const checkpoints = db.prepare<[], CheckpointDbRow>('SELECT * FROM audit_checkpoints ORDER BY seq');
    const firstAt = db.prepare<[number], { seq: number }>(
      'SELECT seq FROM audit_log WHERE time >= ? ORDER BY seq LIMIT 1',
    );
    const pruneLog = db.prepare('DELETE FROM audit_log WHERE seq < ?');
    const pruneCheckpoints = db.prepare('DELETE FROM audit_checkpoints WHERE seq < ?');
    const addCheckpoint = (c: AuditCheckpointRow): void =>
      void insertCheckpoint.run(c.seq, c.hash, c.payload, c.signature, c.keyId, c.time);
    const indexTx = db.transaction((rows: readonly AuditRow[]) => {
      for (const r of rows) {
        insert.run(
          r.seq,
          r.prevHash,
          r.hash,
          r.body,
          r.eventId,
          r.time,
          r.type,
          r.requestId ?? null,
          r.grantId ?? null,
          r.sessionId ?? null,
          r.agent ?? null,
          r.user ?? null,
          r.jti ?? null,
          r.server ?? null,
          r.tool ?? null,
          r.decision ?? null,
        );
      }
    });
    // A database from before the segment files (schema 3): its rows become the first segment.
    if (!segments.bounds()) {
      const old = db.prepare<[], AuditDbRow>('SELECT * FROM audit_log ORDER BY seq').all().map(toAuditRow);
      if (old.length > 0) segments.write(old);
    }
    let indexedTo = indexed.get()?.seq ?? 0;
    /** Copies up to `max` records the index lacks from the files; returns how many are still missing. */
    const catchUp = (max: number): number => {
      segments.refresh();
      const head = segments.headRecord()?.seq ?? 0;
      let left = max;
      while (indexedTo < head && left > 0) {
        const rows = segments.range(indexedTo + 1, head, Math.min(INDEX_CHUNK, left));
        const last = rows[rows.length - 1];
        if (!last) break;
        indexTx(rows);
        indexedTo = last.seq;
        left -= rows.length;
      }
      return head - indexedTo;
    };
    const pruneTx = db.transaction((floor: number, checkpoint: AuditCheckpointRow) => {
      addCheckpoint(checkpoint);
      pruneLog.run(floor);
      pruneCheckpoints.run(floor);
    });
    const query = (f: AuditFilter): AuditRow[] => {
      catchUp(Number.POSITIVE_INFINITY);
      const where: string[] = [];
      const params: (string | number)[] = [];
      for (const [key, column] of Object.entries(AUDIT_FILTER_COLUMNS)) {
        const v = f[key as keyof typeof AUDIT_FILTER_COLUMNS];
        if (v === undefined) continue;
        where.push(`${column} = ?`);
        params.push(v);
      }
      if (f.since !== undefined) {
        where.push('time >= ?');
        params.push(f.since);
      }
      if (f.until !== undefined) {
        where.push('time < ?');
        params.push(f.until);
      }
      if (f.afterSeq !== undefined) {
        where.push('seq > ?');
        params.push(f.afterSeq);
      }
      const sql = `SELECT * FROM audit_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq${
        f.limit !== undefined ? ` LIMIT ${Math.max(0, Math.floor(f.limit))}` : ''
      }`;
      return db
        .prepare<(string | number)[], AuditDbRow>(sql)
        .all(...params)
        .map(toAuditRow);
    };
    const repo = (run: <T>(op: () => T) => Promise<T>, inTx: boolean): AuditRepo => ({
      // Not through the SQLite queue: the durable write is the segment file (the
      // audit writer already serialises its batches); only a checkpoint touches SQLite.
      appendBatch: async (rows, checkpoint) => {
        // A written record cannot be rolled back, so it cannot join a transaction.
        if (inTx) throw new Error('audit records cannot be appended inside a storage transaction');
        await segments.append(rows);
        this.lastAppend = Date.now();
        this.scheduleIndex();
        if (checkpoint) {
          // ORDER: what a checkpoint signs is on stable storage first, so power loss
          // cannot leave a signed head whose records are gone.
          await segments.sync();
          await run(() => addCheckpoint(checkpoint));
        }
      },
      head: async () => {
        segments.refresh();
        return segments.headRecord();
      },
      bounds: async () => {
        segments.refresh();
        const b = segments.bounds();
        return b && { ...b, count: b.last - b.first + 1 };
      },
      range: async (from, to, limit) => {
        segments.refresh();
        return segments.range(from, to, limit);
      },
      query: (f) => run(() => query(f)),
      addCheckpoint: (c) => run(() => addCheckpoint(c)),
      checkpoints: () => run(() => checkpoints.all().map(toCheckpoint)),
      firstSeqAtOrAfter: (time) =>
        run(() => {
          catchUp(Number.POSITIVE_INFINITY);
          return firstAt.get(time)?.seq;
        }),
      // ORDER: the checkpoint carrying the new floor is committed before any file
      // goes, so a crash in between leaves extra old records, never a hole.
      prune: async (floor, checkpoint) => {
        await run(() => pruneTx(floor, checkpoint));
        return segments.prune(floor);
      },
    });
    return { repo, catchUp };
  }

  /** Keeps the query index close behind the files without costing the request path. */
  private scheduleIndex(): void {
    if (this.indexTimer) return;
    this.indexTimer = setTimeout(() => {
      this.indexTimer = undefined;
      const idle = Date.now() - this.lastAppend >= INDEX_IDLE_MS;
      this.run(() => {
        const lag = this.catchUpIndex(0);
        return idle || lag >= INDEX_MAX_LAG ? this.catchUpIndex(INDEX_CHUNK) : lag;
      }).then(
        (left) => left > 0 && this.scheduleIndex(),
        () => this.scheduleIndex(),
      );
    }, INDEX_IDLE_MS);
    this.indexTimer.unref();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v] as string);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** Queues an operation behind any running transaction. */
  private run<T>(op: () => T): Promise<T> {
    const p = this.queue.then(op);
    this.queue = p.catch(() => {});
    return p;
  }

  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T> {
    const p = this.queue.then(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(this.txRepos);
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    });
    this.queue = p.catch(() => {});
    return p;
  }

  /** Brings the query index up to date, then closes the files and the database. */
  async close(): Promise<void> {
    if (this.indexTimer) clearTimeout(this.indexTimer);
    await this.queue;
    this.catchUpIndex(Number.POSITIVE_INFINITY);
    this.segments.close();
    this.db.close();
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}
