/**
 * The rows both store backends (sqlite/, postgres/) read and write, and their mapping to and from
 * the records of ./types.ts. The SQL stays in each backend's repository; what a row looks like and
 * how it becomes a record lives here once. Columns are the SQLite names: PostgreSQL spells `user`
 * (reserved there) `user_name`, and its SELECTs alias it back (`user_name AS "user"`).
 */
import type {
  ApprovalRecord,
  ApprovalState,
  AuditCheckpointRow,
  DefinitionFinding,
  DefinitionKind,
  DefinitionRecord,
  DefinitionStatus,
  ExternalIdentity,
  GrantRecord,
  LeaseRecord,
  RevocationKind,
  RevocationRecord,
  SessionRecord,
  UserRecord,
} from './types.ts';

// ---- approvals ----

export interface ApprovalRow {
  id: string;
  digest: string;
  state: string;
  grant_id: string;
  session_id: string;
  agent: string;
  user: string | null;
  tenant: string | null;
  actors: string;
  owner: string | null;
  server: string;
  tool: string;
  arguments: string;
  definition_hash: string;
  policies: string;
  attributes: string;
  created_at: number;
  expires_at: number;
  decision: string | null;
  decided_at: number | null;
  decided_by: string | null;
  reason: string | null;
  channel: string | null;
  consumed_at: number | null;
}

const APPROVAL_STATES: ReadonlySet<string> = new Set<ApprovalState>([
  'pending',
  'approved',
  'denied',
  'expired',
  'consumed',
]);

function isApprovalState(s: string): s is ApprovalState {
  return APPROVAL_STATES.has(s);
}

/** A row of a state this version does not know (written by a newer one) is skipped, never misread. */
export function toApproval(r: ApprovalRow | undefined): ApprovalRecord | undefined {
  if (r === undefined || !isApprovalState(r.state)) return undefined;
  return {
    id: r.id,
    digest: r.digest,
    state: r.state,
    grantId: r.grant_id,
    sessionId: r.session_id,
    agent: r.agent,
    user: r.user ?? undefined,
    tenant: r.tenant ?? undefined,
    actors: JSON.parse(r.actors) as string[],
    owner: r.owner ?? undefined,
    server: r.server,
    tool: r.tool,
    arguments: r.arguments,
    definitionHash: r.definition_hash,
    policies: JSON.parse(r.policies) as string[],
    attributes: JSON.parse(r.attributes) as Record<string, unknown>,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    decision: r.decision === 'approved' || r.decision === 'denied' ? r.decision : undefined,
    decidedAt: r.decided_at ?? undefined,
    decidedBy: r.decided_by ?? undefined,
    reason: r.reason ?? undefined,
    channel: r.channel ?? undefined,
    consumedAt: r.consumed_at ?? undefined,
  };
}

export function toApprovals(rows: readonly ApprovalRow[]): ApprovalRecord[] {
  const out: ApprovalRecord[] = [];
  for (const r of rows) {
    const rec = toApproval(r);
    if (rec) out.push(rec);
  }
  return out;
}

/**
 * The values of a new approval row, in the order of both backends' INSERT: id, digest, grant_id,
 * session_id, agent, user, tenant, actors, owner, server, tool, arguments, definition_hash,
 * policies, attributes, created_at, expires_at (the state is the literal 'pending').
 */
export function approvalValues(r: ApprovalRecord): unknown[] {
  return [
    r.id,
    r.digest,
    r.grantId,
    r.sessionId,
    r.agent,
    r.user ?? null,
    r.tenant ?? null,
    JSON.stringify(r.actors),
    r.owner ?? null,
    r.server,
    r.tool,
    r.arguments,
    r.definitionHash,
    JSON.stringify(r.policies),
    JSON.stringify(r.attributes),
    r.createdAt,
    r.expiresAt,
  ];
}

// ---- definitions ----

export interface DefinitionRow {
  server: string;
  kind: string;
  name: string;
  hash: string;
  definition: string;
  status: string;
  findings: string;
  first_seen: number;
  updated_at: number;
  decided_by: string | null;
}

const DEFINITION_KINDS: ReadonlySet<string> = new Set<DefinitionKind>([
  'tool',
  'prompt',
  'resource-template',
  'instructions',
]);
const DEFINITION_STATUSES: ReadonlySet<string> = new Set<DefinitionStatus>([
  'pinned',
  'pending',
  'rejected',
  'superseded',
]);

function parseFindings(text: string): DefinitionFinding[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? (v as DefinitionFinding[]) : [];
  } catch {
    return [];
  }
}

/** Rows of a kind or status this version does not know (written by a newer one) are skipped, never misread. */
export function toDefinitions(rows: readonly DefinitionRow[]): DefinitionRecord[] {
  const out: DefinitionRecord[] = [];
  for (const r of rows) {
    if (!DEFINITION_KINDS.has(r.kind) || !DEFINITION_STATUSES.has(r.status)) continue;
    out.push({
      server: r.server,
      kind: r.kind as DefinitionKind,
      name: r.name,
      hash: r.hash,
      definition: r.definition,
      status: r.status as DefinitionStatus,
      findings: parseFindings(r.findings),
      firstSeen: r.first_seen,
      updatedAt: r.updated_at,
      decidedBy: r.decided_by ?? undefined,
    });
  }
  return out;
}

/**
 * The values of a new definition row, in the order of both backends' INSERT: server, kind, name,
 * hash, definition, status, findings, first_seen, updated_at, decided_by.
 */
export function definitionValues(r: DefinitionRecord): unknown[] {
  return [
    r.server,
    r.kind,
    r.name,
    r.hash,
    r.definition,
    r.status,
    JSON.stringify(r.findings),
    r.firstSeen,
    r.updatedAt,
    r.decidedBy ?? null,
  ];
}

// ---- grants ----

export interface GrantRow {
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

export function toGrant(r: GrantRow): GrantRecord {
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

/**
 * The values of a new grant row, in the order of both backends' INSERT: id, kind, agent, user,
 * tenant, issuer, actors, principal_key, owner, tools, constraints, created_at, expires_at,
 * idle_timeout_ms, created_by, token_id.
 */
export function grantValues(g: GrantRecord): unknown[] {
  return [
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
  ];
}

// ---- leases ----

export interface LeaseRow {
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

/** A live lease (listLive reads no other). */
export function toLiveLease(r: LeaseRow): LeaseRecord {
  return {
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
  };
}

/**
 * The values of a new lease row, in the order of both backends' INSERT: id, grant_id, service,
 * credential, kind, agent, user, created_at, expires_at.
 */
export function leaseValues(l: LeaseRecord): unknown[] {
  return [
    l.id,
    l.grantId,
    l.service,
    l.credential,
    l.kind,
    l.agent,
    l.user ?? null,
    l.createdAt,
    l.expiresAt,
  ];
}

// ---- revocations ----

export interface RevocationRow {
  kind: string;
  value: string;
  not_before: number;
  expires_at: number;
  recorded_at: number;
  reason: string;
}

const REVOCATION_KINDS: ReadonlySet<string> = new Set<RevocationKind>(['jti', 'agent', 'user', 'agent+user']);

function isRevocationKind(k: string): k is RevocationKind {
  return REVOCATION_KINDS.has(k);
}

/** Rows of a kind this version does not know (written by a newer one) are skipped, never misread. */
export function toRevocations(rows: readonly RevocationRow[]): RevocationRecord[] {
  const out: RevocationRecord[] = [];
  for (const r of rows) {
    if (!isRevocationKind(r.kind)) continue;
    out.push({
      kind: r.kind,
      value: r.value,
      notBefore: r.not_before,
      expiresAt: r.expires_at,
      recordedAt: r.recorded_at,
      reason: r.reason,
    });
  }
  return out;
}

// ---- sessions ----

export interface SessionRow {
  id: string;
  protocol_version: string;
  client_name: string | null;
  client_version: string | null;
  created_at: number;
  closed_at: number | null;
  close_reason: string | null;
}

export function toSession(r: SessionRow): SessionRecord {
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

// ---- oauth ----

/** What the model store reads of an `oauth` row. */
export interface OAuthRow {
  payload: string;
  consumed_at: number | null;
}

export function toOAuthPayload(r: OAuthRow | undefined): Record<string, unknown> | undefined {
  if (!r) return undefined;
  const payload = JSON.parse(r.payload) as Record<string, unknown>;
  if (r.consumed_at !== null) payload['consumed'] = r.consumed_at;
  return payload;
}

// ---- users ----

export interface UserRow {
  username: string;
  password_hash: string;
  created_at: number;
  external: string | null;
}

export function toUser(r: UserRow): UserRecord {
  const u: UserRecord = { username: r.username, passwordHash: r.password_hash, createdAt: r.created_at };
  if (r.external !== null) u.external = JSON.parse(r.external) as ExternalIdentity;
  return u;
}

/** A signed audit checkpoint (table `audit_checkpoints`). */
export interface CheckpointRow {
  seq: number;
  hash: string;
  payload: string;
  signature: string;
  key_id: string;
  time: number;
}

export function toCheckpoint(r: CheckpointRow): AuditCheckpointRow {
  return {
    seq: r.seq,
    hash: r.hash,
    payload: r.payload,
    signature: r.signature,
    keyId: r.key_id,
    time: r.time,
  };
}
