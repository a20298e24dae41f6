/**
 * The one storage interface for state that outlives a request. Backend-neutral
 * and async so that PostgreSQL can implement it for clusters; SQLite is the
 * embedded default. Every backend must pass test/storage/contract.ts.
 */

/** A session as recorded for operators (the live session is in memory). */
export interface SessionRecord {
  id: string;
  protocolVersion: string;
  clientName: string | undefined;
  clientVersion: string | undefined;
  createdAt: number;
  closedAt: number | undefined;
  closeReason: string | undefined;
}

export interface SessionRepo {
  insert(rec: SessionRecord): Promise<void>;
  get(id: string): Promise<SessionRecord | undefined>;
  close(id: string, reason: string, at: number): Promise<void>;
  /** Sessions not closed, oldest first. */
  listOpen(): Promise<SessionRecord[]>;
  /** Marks every open session closed (used at start-up after an unclean stop). */
  closeAllOpen(reason: string, at: number): Promise<number>;
}

/**
 * A generic model store for the embedded OAuth authorization server (one row per
 * oidc-provider model instance: sessions, interactions, codes, grants, refresh
 * tokens, dynamically registered clients, ...). Payloads are opaque JSON objects.
 * Rows past `expiresAt` are never returned and are removed by `purgeExpired`.
 */
export interface OAuthRepo {
  /** Inserts or replaces `model`/`id`. `expiresAt` is epoch milliseconds, undefined for no expiry. */
  upsert(
    model: string,
    id: string,
    payload: Record<string, unknown>,
    expiresAt: number | undefined,
    grantId?: string,
    userCode?: string,
    uid?: string,
  ): Promise<void>;
  /** The payload, with `consumed` (epoch seconds) set once consumed; undefined when missing or expired. */
  find(model: string, id: string): Promise<Record<string, unknown> | undefined>;
  findByUid(model: string, uid: string): Promise<Record<string, unknown> | undefined>;
  findByUserCode(model: string, userCode: string): Promise<Record<string, unknown> | undefined>;
  /** Marks the row consumed (single use); `at` is epoch seconds. The first consumption wins. */
  consume(model: string, id: string, at: number): Promise<void>;
  destroy(model: string, id: string): Promise<void>;
  /** Deletes every row of every model that belongs to the grant; returns how many. */
  revokeByGrantId(grantId: string): Promise<number>;
  /** Deletes rows whose expiry is at or before `now` (epoch ms); returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/** A local user of the embedded authorization server. */
export interface UserRecord {
  username: string;
  /** Self-describing password hash: `scrypt$N$r$p$<salt b64url>$<hash b64url>`. */
  passwordHash: string;
  createdAt: number;
}

export interface UserRepo {
  /** Adds a user; rejects when the username exists. */
  add(rec: UserRecord): Promise<void>;
  get(username: string): Promise<UserRecord | undefined>;
  /** Every user, by username. */
  list(): Promise<UserRecord[]>;
  /** Removes a user; resolves to false when there was none. */
  remove(username: string): Promise<boolean>;
}

/** The repositories, as seen inside a transaction. */
export interface Repos {
  readonly sessions: SessionRepo;
  readonly oauth: OAuthRepo;
  readonly users: UserRepo;
}

export interface Storage extends Repos {
  /** Runs `fn` atomically: all of its writes or none. */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
