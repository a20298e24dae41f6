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
  /** Closes an open session; a closed or unknown one is left as it is. */
  close(id: string, reason: string, at: number): Promise<void>;
  /** Sessions not closed, oldest first. */
  listOpen(): Promise<SessionRecord[]>;
  /** Marks every open session closed (used at start-up after an unclean stop); resolves to how many. */
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

/** Who a user is at the upstream identity provider, and what it said about them at the last login. */
export interface ExternalIdentity {
  /** The provider's issuer (the ID token's `iss`). */
  issuer: string;
  /** The provider's stable subject (`sub`): the username stays bound to it. */
  subject: string;
  tenant?: string | undefined;
  groups?: string[] | undefined;
  /** Epoch milliseconds of the last login through the provider. */
  updatedAt: number;
}

/** A user of the embedded authorization server: local (a password) or from the upstream IdP (`external`). */
export interface UserRecord {
  username: string;
  /**
   * Self-describing password hash: `scrypt$N$r$p$<salt b64url>$<hash b64url>`; empty for users of the
   * upstream identity provider, who have no local password.
   */
  passwordHash: string;
  createdAt: number;
  /** Set for users who log in through the upstream identity provider (no local password). */
  external?: ExternalIdentity | undefined;
}

/** What {@link UserRepo.putExternal} did. */
export type PutExternalResult = 'created' | 'updated' | 'conflict';

export interface UserRepo {
  /** Adds a user; rejects when the username exists. */
  add(rec: UserRecord): Promise<void>;
  get(username: string): Promise<UserRecord | undefined>;
  /** Every user, by username. */
  list(): Promise<UserRecord[]>;
  /** Removes a user; resolves to false when there was none. */
  remove(username: string): Promise<boolean>;
  /**
   * Creates a user of the upstream identity provider, or updates its tenant and groups, atomically.
   * `conflict` (nothing written) when the name belongs to a local user or to another `(issuer, subject)`:
   * a name is never taken over by a different identity.
   */
  putExternal(username: string, identity: ExternalIdentity, now: number): Promise<PutExternalResult>;
}

/**
 * One record of the tamper-evident audit log (src/audit/). `body` is the
 * canonical JSON of `{ v, seq, prev, event }` and `hash` its SHA-256, so the
 * chain is verifiable from `body` alone; the other columns are copies of event
 * fields for queries and are checked against `body` by verification.
 */
export interface AuditRow {
  /** 1, 2, 3, ... without gaps (retention removes a prefix only). */
  seq: number;
  /** Hex SHA-256 of the previous record's body; 64 zeros for seq 1. */
  prevHash: string;
  hash: string;
  body: string;
  eventId: string;
  /** Epoch milliseconds. */
  time: number;
  type: string;
  requestId: string | undefined;
  grantId: string | undefined;
  sessionId: string | undefined;
  agent: string | undefined;
  user: string | undefined;
  jti: string | undefined;
  server: string | undefined;
  tool: string | undefined;
  decision: string | undefined;
}

/** A signed statement "the chain had head `hash` at `seq`" (Ed25519 over `payload`). */
export interface AuditCheckpointRow {
  /** The head sequence number the checkpoint covers. */
  seq: number;
  hash: string;
  /** Canonical JSON that was signed (includes seq, hash, floor and time). */
  payload: string;
  /** Base64url Ed25519 signature of `payload`. */
  signature: string;
  keyId: string;
  time: number;
}

/** Bytes after a segment's last complete line: a write cut short (crash, power loss, disk full). */
export interface AuditTornTail {
  /** Segment file name, e.g. `0000000000000001.log`. */
  segment: string;
  /** Byte offset where the torn line starts (the end of the last complete line). */
  offset: number;
  /** Length of the torn line in bytes. */
  bytes: number;
}

/** Filters of an audit query; every given field must match (AND). */
export interface AuditFilter {
  agent?: string;
  user?: string;
  grantId?: string;
  sessionId?: string;
  requestId?: string;
  /** The name the agent called (`server__tool`) or the upstream's plain name (on any server). */
  tool?: string;
  server?: string;
  decision?: string;
  jti?: string;
  type?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  /** Only rows with a greater seq (paging). */
  afterSeq?: number;
  /** Maximum rows, oldest first (default: no limit). */
  limit?: number;
}

/**
 * The audit log store. Appends happen in batches, each atomically with its
 * optional checkpoint; `appendBatch` resolves only after the commit.
 */
export interface AuditRepo {
  /** Inserts the rows (contiguous, continuing the head) and the checkpoint, all or none. */
  appendBatch(rows: readonly AuditRow[], checkpoint?: AuditCheckpointRow): Promise<void>;
  /** The newest record's seq and hash, undefined when the log is empty. */
  head(): Promise<{ seq: number; hash: string } | undefined>;
  /** Lowest and highest retained seq and the number of rows. */
  bounds(): Promise<{ first: number; last: number; count: number } | undefined>;
  /** Rows with `from <= seq <= to`, ascending, at most `limit`. */
  range(from: number, to: number, limit: number): Promise<AuditRow[]>;
  /** Rows matching every filter, by seq. */
  query(filter: AuditFilter): Promise<AuditRow[]>;
  /** Stores a checkpoint; a later one at the same seq replaces it. */
  addCheckpoint(checkpoint: AuditCheckpointRow): Promise<void>;
  /** Every checkpoint, by seq. */
  checkpoints(): Promise<AuditCheckpointRow[]>;
  /** The lowest seq whose time is at or after `time`, undefined when none. */
  firstSeqAtOrAfter(time: number): Promise<number | undefined>;
  /**
   * Writes `checkpoint`, then deletes records with seq < `floor` and checkpoints
   * with seq < `floor`, atomically; returns the number of records deleted.
   */
  prune(floor: number, checkpoint: AuditCheckpointRow): Promise<number>;
  /** Torn lines the durable log holds (a backend that cannot have them leaves this out). */
  tornTails?(): Promise<AuditTornTail[]>;
  /** Cuts torn lines off before the first append; returns what was cut (SHA-256 of the bytes). */
  repairTornTails?(): Promise<(AuditTornTail & { sha256: string })[]>;
}

/** A grant as stored: the unit of privilege (src/grants/). */
export interface GrantRecord {
  id: string;
  /** session: implicit, one per MCP session; task: minted with a task token. */
  kind: 'session' | 'task';
  agent: string;
  user: string | undefined;
  tenant: string | undefined;
  issuer: string;
  /** Delegation chain, current actor first. */
  actors: string[];
  /** Binds the grant to one principal (issuer, agent, user, tenant). */
  principalKey: string;
  owner: string | undefined;
  /** Exposed tool names the grant is limited to; undefined: whatever policy allows the principal. */
  tools: string[] | undefined;
  /** Argument constraints per tool: argument name → allowed values (strings; other values as JSON text). */
  constraints: Record<string, Record<string, string[]>>;
  /** Epoch ms. */
  createdAt: number;
  expiresAt: number;
  idleTimeoutMs: number;
  /** What created it, e.g. `session:<id>` or `token-exchange:<client>`. */
  createdBy: string;
  /** `jti` of the token that created it. */
  tokenId: string | undefined;
  endedAt: number | undefined;
  endReason: string | undefined;
}

/** Who a bulk revocation targets. */
export type GrantSelector = { id: string } | { agent: string } | { user: string };

export interface GrantRepo {
  insert(rec: GrantRecord): Promise<void>;
  get(id: string): Promise<GrantRecord | undefined>;
  /** Ends the live grants matching `selector`; resolves to their ids. */
  end(selector: GrantSelector, reason: string, at: number): Promise<string[]>;
  /** Grants ended at or after `at` (epoch ms), by end time, for a gateway to notice revocations made elsewhere. */
  endedSince(at: number): Promise<{ id: string; endedAt: number; endReason: string }[]>;
  /** Grants not ended and not expired (`expiresAt > now`), oldest first. */
  listLive(now: number): Promise<GrantRecord[]>;
}

/** A credential lease as stored: the permission to use one service's credential under one grant (src/credentials/). */
export interface LeaseRecord {
  id: string;
  grantId: string;
  /** Service name: a `credentials` key, or the upstream name for an inline `{ secret }`. */
  service: string;
  /** Credential name, never a value: the secret (static, subject token) or the connection. */
  credential: string;
  kind: 'static' | 'minted' | 'user';
  agent: string;
  user: string | undefined;
  createdAt: number;
  /** Never later than the grant's expiry. */
  expiresAt: number;
  endedAt: number | undefined;
  endReason: string | undefined;
}

/** Which leases a revocation targets. `secret` matches the credential name. */
export type LeaseSelector =
  | { id: string }
  | { grant: string }
  | { service: string }
  | { agent: string }
  | { user: string }
  | { secret: string };

/** An operator's kill switch: no lease for this secret or service is issued until it is lifted. */
export interface CredentialBlock {
  kind: 'secret' | 'service';
  name: string;
  reason: string;
  createdAt: number;
}

export interface LeaseRepo {
  insert(rec: LeaseRecord): Promise<void>;
  /** Ends the live leases matching `selector`; resolves to their ids. */
  end(selector: LeaseSelector, reason: string, at: number): Promise<string[]>;
  /** Leases ended at or after `at`, by end time (revocations made by another process). */
  endedSince(at: number): Promise<{ id: string; endReason: string }[]>;
  /** Leases not ended and not expired (`expiresAt > now`), oldest first. */
  listLive(now: number): Promise<LeaseRecord[]>;
  /** Sets a block, replacing one of the same kind and name. */
  block(b: CredentialBlock): Promise<void>;
  /** Lifts a block; false when there was none. */
  unblock(kind: CredentialBlock['kind'], name: string): Promise<boolean>;
  /** Every block, oldest first. */
  blocks(): Promise<CredentialBlock[]>;
}

/** What a token revocation entry names (src/auth/revocation.ts). */
export type RevocationKind = 'jti' | 'agent' | 'user' | 'agent+user';

/**
 * One entry of the token revocation list: access tokens that match `kind`/`value` and were issued at or
 * before `notBefore` are refused (src/auth/revocation.ts, docs/auth.md "Revocation").
 */
export interface RevocationRecord {
  kind: RevocationKind;
  /**
   * The token id (`jti`), the client id (`agent`), the user (`sub`, `user`), or for `agent+user` the JSON
   * array `[agent, user]` (user `null`: the agent's own tokens).
   */
  value: string;
  /** Epoch seconds: tokens whose `iat` is at or before this are revoked (tokens without `iat` too). */
  notBefore: number;
  /** Epoch ms: when the entry may be forgotten (every token it covers has expired by then). */
  expiresAt: number;
  /** Epoch ms: when the entry was written or last raised; gateways poll by it. */
  recordedAt: number;
  /** Why, for operators and the audit log. */
  reason: string;
}

export interface RevocationRepo {
  /**
   * Records an entry. One entry per kind and value: an existing one keeps the later `notBefore` and
   * `expiresAt` of the two and takes the new `recordedAt` and `reason`.
   */
  add(rec: RevocationRecord): Promise<void>;
  /** Entries recorded at or after `at` (epoch ms), by `recordedAt`, for a gateway to notice revocations made elsewhere. */
  recordedSince(at: number): Promise<RevocationRecord[]>;
  /** Entries with `expiresAt > now` (loaded at start-up). */
  listLive(now: number): Promise<RevocationRecord[]>;
  /** Deletes entries whose `expiresAt` is at or before `now`; resolves to how many. */
  purge(now: number): Promise<number>;
}

/** Where an approval request is in its life (docs/approvals.md). Every state but `pending` and `approved` is final. */
export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired' | 'consumed';

/**
 * A request for a human approval of one tool call (src/approvals/): who asked, under which grant, exactly
 * what would run (the full arguments and a hash of the tool's definition), why policy asked, and its fate.
 * `digest` binds it to (grant, server, tool, definition hash, canonical arguments): only a call with the
 * same digest can consume it, once.
 */
export interface ApprovalRecord {
  /** `apr_<random>`. */
  id: string;
  /** Hex SHA-256 of the canonical JSON of `{ grant, server, tool, definition, arguments }`. */
  digest: string;
  state: ApprovalState;
  grantId: string;
  sessionId: string;
  agent: string;
  user: string | undefined;
  tenant: string | undefined;
  /** Delegation chain, current actor first. */
  actors: string[];
  /** The grant's owner. */
  owner: string | undefined;
  server: string;
  /** The exposed tool name (`server__tool`). */
  tool: string;
  /** Canonical JSON of the arguments, untruncated (what the approver sees and what is bound). */
  arguments: string;
  /** Hex SHA-256 of the canonical JSON of the tool's definition when the request was made. */
  definitionHash: string;
  /** The deciding policy ids (the `@approval` forbids, then the permits that allow once approved). */
  policies: string[];
  /** The tool's attributes (risk, sideEffect, owner, trusted server, hints) as policy saw them. */
  attributes: Record<string, unknown>;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms: past it, a pending or approved request is expired. */
  expiresAt: number;
  /** What a human decided (kept when an approved request later expires or is consumed). */
  decision: 'approved' | 'denied' | undefined;
  decidedAt: number | undefined;
  /** Who approved or denied it. */
  decidedBy: string | undefined;
  reason: string | undefined;
  /** How the decision was made: `cli`, `console`, … */
  channel: string | undefined;
  consumedAt: number | undefined;
}

/** What {@link ApprovalRepo.decide} did. */
export type ApprovalDecideResult = 'decided' | 'not_found' | 'not_pending' | 'expired';

export interface ApprovalRepo {
  /** Adds a pending request. */
  insert(rec: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** The newest request with this digest, undefined when none. */
  latestByDigest(digest: string): Promise<ApprovalRecord | undefined>;
  /** Requests in these states (every state when omitted), newest first, at most `limit` (default 1000). */
  list(filter?: { states?: readonly ApprovalState[]; limit?: number }): Promise<ApprovalRecord[]>;
  /**
   * Approves or denies a pending request that has not expired at `at`, atomically (the first decision
   * wins); says why not otherwise.
   */
  decide(
    id: string,
    d: { state: 'approved' | 'denied'; by: string; reason: string | undefined; channel: string; at: number },
  ): Promise<ApprovalDecideResult>;
  /** Consumes an approved request that has not expired at `at`; true for the one caller that did (single use). */
  consume(id: string, at: number): Promise<boolean>;
  /** Marks pending and approved requests whose expiry is at or before `now` expired; resolves to their ids. */
  expire(now: number): Promise<string[]>;
  /** Requests a human decided whose decision no gateway has announced yet (audit, held calls), oldest first. */
  unannounced(): Promise<ApprovalRecord[]>;
  /** Claims the announcement of a decision (audit, waiters); true for the one caller that did. */
  announce(id: string): Promise<boolean>;
  /** How many requests are pending. */
  countPending(): Promise<number>;
}

/** What a pinned definition describes (tool-definition pinning, docs/sanitization.md). */
export type DefinitionKind = 'tool' | 'prompt' | 'resource-template' | 'instructions';

/** One version of one definition: the upstream, kind, name and the SHA-256 of its canonical form. */
export interface DefinitionKey {
  readonly server: string;
  readonly kind: DefinitionKind;
  readonly name: string;
  readonly hash: string;
}

/**
 * Where a definition stands: `pinned` (the one approved definition of its server, kind and name),
 * `pending` (seen, not approved: quarantined), `rejected` (an admin refused it: stays quarantined),
 * `superseded` (a pin replaced by an approval; kept as history).
 */
export type DefinitionStatus = 'pinned' | 'pending' | 'rejected' | 'superseded';

/** One scanner finding on a definition (the `gatehouse scan --kind definition` line format). */
export interface DefinitionFinding {
  type: string;
  start: number;
  end: number;
  detail: string;
}

/** One version of one upstream definition, identified by its SHA-256. */
export interface DefinitionRecord {
  server: string;
  kind: DefinitionKind;
  /** The name as the upstream knows it (not namespaced). */
  name: string;
  /** Lower-case hex SHA-256 of `definition`. */
  hash: string;
  /** Canonical JSON of the pinned fields (name, title, description, inputSchema, outputSchema, annotations). */
  definition: string;
  status: DefinitionStatus;
  /** Scanner findings when it was first seen. */
  findings: DefinitionFinding[];
  /** Epoch ms: first seen. */
  firstSeen: number;
  /** Epoch ms: last change of status; gateways poll by it. */
  updatedAt: number;
  /** Who approved or rejected it (`undefined`: the gateway, on first use). */
  decidedBy: string | undefined;
}

export interface DefinitionRepo {
  /**
   * Records a definition trusted on first use as `pinned`, only when its server, kind and name have no
   * pin and this hash has no row yet; resolves to whether it was recorded.
   */
  pin(rec: DefinitionRecord): Promise<boolean>;
  /**
   * Records a quarantined definition as `pending`, replacing any earlier pending one of its server, kind
   * and name (only the newest waits for review). A hash that already has a row is left as it is (false),
   * except a `superseded` one (a former pin offered again), which becomes `pending` again.
   */
  propose(rec: DefinitionRecord): Promise<boolean>;
  /**
   * Makes the pending (or rejected) definition with `hash` the pin; the earlier pin becomes
   * `superseded`. False when there is no such definition.
   */
  approve(key: DefinitionKey, by: string, at: number): Promise<boolean>;
  /** Marks the pending definition with `hash` rejected; false when there is no such pending one. */
  reject(key: DefinitionKey, by: string, at: number): Promise<boolean>;
  /** Pinned, pending and rejected definitions (not superseded), by server, kind, name and `updatedAt`. */
  list(filter?: { server?: string; status?: DefinitionStatus }): Promise<DefinitionRecord[]>;
  /** Every row updated at or after `at` (epoch ms), superseded ones too, by `updatedAt`. */
  changedSince(at: number): Promise<DefinitionRecord[]>;
}

/** The repositories, as seen inside a transaction. */
export interface Repos {
  readonly sessions: SessionRepo;
  readonly grants: GrantRepo;
  readonly leases: LeaseRepo;
  readonly revocations: RevocationRepo;
  readonly oauth: OAuthRepo;
  readonly users: UserRepo;
  readonly audit: AuditRepo;
  readonly approvals: ApprovalRepo;
  readonly definitions: DefinitionRepo;
}

export interface Storage extends Repos {
  /** Runs `fn` atomically: all of its writes or none. */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
