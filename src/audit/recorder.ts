/**
 * The gateway's side of the audit log: turns pipeline facts (a session began,
 * a token was refused, a call is about to be forwarded, a call finished) into
 * audit events. Write-ahead where it matters: `intent()` resolves only when the
 * record that a call was allowed is durable; outcomes are appended after and
 * never delay the answer.
 */
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { ApprovalRecord, AuditTornTail, GrantRecord, RevocationRecord } from '../storage/types.ts';
import { sha256 } from '../util/hash.ts';
import {
  AnonymousFailures,
  type AnonymousFailuresOptions,
  type AuthFailureSource,
} from './authn-failures.ts';
import { toAuditValue } from './canonical.ts';
import type { AuditEvent, AuditEventInput } from './event.ts';
import type { AuditWriter } from './writer.ts';

export type { AuthFailureSource } from './authn-failures.ts';

type AuditPrincipal = NonNullable<AuditEvent['principal']>;

/** Longest id or name a record keeps (the schema's bound for ids). */
const MAX_TEXT = 512;

/**
 * A string a client or token chose (JSON-RPC id, tool name, method, claims), bounded: a megabyte
 * tool name used to become a megabyte record (and index row) per request. A longer value keeps
 * its start and ends in `…[N chars, sha256:<16 hex>]`: deterministic (an attempt and its outcome
 * still pair up by requestId) and still distinct for distinct values. The digest is over the
 * value's JSON text, so it is faithful for lone surrogates too; the cut never splits a pair.
 */
export function clipText(s: string, max = MAX_TEXT): string {
  if (s.length <= max) return s;
  const digest = sha256(JSON.stringify(s)).slice(0, 16);
  const suffix = `…[${s.length} chars, sha256:${digest}]`;
  let end = Math.max(0, max - suffix.length);
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return s.slice(0, end) + suffix;
}

/** A client-chosen value as bounded text (clientInfo fields may be any JSON). */
function clientText(v: unknown, max = 256): string | undefined {
  if (v === undefined) return undefined;
  return clipText(typeof v === 'string' ? v : (JSON.stringify(toAuditValue(v).value) ?? 'null'), max);
}

/** Severity of a result sanitiser finding, by family. */
const SANITISER_SEVERITY = new Map<string, 'info' | 'low' | 'medium' | 'high' | 'critical'>([
  ['secret', 'high'],
  ['injection', 'high'],
  ['invisible-unicode', 'high'],
  ['control-chars', 'medium'],
  ['definition', 'medium'],
  ['pii', 'medium'],
  ['structure', 'low'],
]);

/** The audit form of a principal: who, for whom, through which token (never the token). */
export function auditPrincipal(p: Principal): AuditPrincipal {
  const known = principals.get(p);
  if (known !== undefined) return known;
  // Members in canonical (sorted) order: the audit writer then serialises the event natively.
  const out: AuditPrincipal =
    p.actors.length > 0 ? { actors: p.actors.map((a) => clipText(a)), agent: '' } : { agent: '' };
  out.agent = clipText(p.agent);
  out.authMethod = p.authMethod;
  if (p.authMethod !== 'none') out.issuer = clipText(p.issuer);
  if (p.tokenId !== undefined) out.jti = clipText(p.tokenId);
  if (p.subject !== p.agent) out.subject = clipText(p.subject);
  if (p.tenant !== undefined) out.tenant = clipText(p.tenant);
  if (p.user !== undefined) out.user = clipText(p.user);
  // A verified token's principal is one object for every call it makes (the token cache): computed once.
  Object.freeze(out);
  principals.set(p, out);
  return out;
}

/** The audit form of each principal object, computed once (a Principal is immutable). */
const principals = new WeakMap<Principal, AuditPrincipal>();

/** What the gateway knows about a call when it decides to forward it. */
export interface CallFacts {
  requestId: string;
  sessionId: string;
  grantId: string;
  /** The grant's owner. */
  owner: string | undefined;
  principal: Principal;
  method: string;
  server: string;
  tool: string | undefined;
  args: unknown;
  requestBytes: number | undefined;
  /** The credential leases the call uses (ids and names, never values). */
  leases?: readonly { id: string; credential: string; expiresAt: number }[] | undefined;
}

export type CallOutcome = NonNullable<AuditEvent['outcome']>;

/** The authorize stage's verdict on a call; `reference` is what a refused client was told. */
export interface CallDecision {
  effect: 'allow' | 'deny' | 'approval_required';
  policies: readonly string[];
  reference?: string | undefined;
  /** The approval the call consumed (a call released by a human): its id and who approved it. */
  approval?: { id: string; approver: string | undefined; reason: string | undefined } | undefined;
}

function decisionOf(d: CallDecision): NonNullable<AuditEvent['decision']> {
  return {
    effect: d.effect,
    policies: [...d.policies],
    ...(d.reference !== undefined ? { reason: `reference ${d.reference}` } : {}),
  };
}

/** The `approval` member of an event about an approval request. */
function approvalOf(r: ApprovalRecord): NonNullable<AuditEvent['approval']> {
  return {
    id: r.id,
    ...(r.decidedBy !== undefined ? { approver: clipText(r.decidedBy) } : {}),
    ...(r.reason !== undefined ? { reason: r.reason.slice(0, 4096) } : {}),
  };
}

/** An event about an approval request, from its record (the call may be long gone). */
function approvalEvent(type: AuditEventInput['type'], r: ApprovalRecord): AuditEventInput {
  const principal: AuditPrincipal = { agent: r.agent };
  if (r.user !== undefined) principal.user = r.user;
  if (r.tenant !== undefined) principal.tenant = r.tenant;
  if (r.actors.length > 0) principal.actors = [...r.actors];
  const event: AuditEventInput = {
    type,
    grantId: r.grantId,
    sessionId: r.sessionId,
    principal,
    method: 'tools/call',
    server: r.server,
    tool: r.tool,
    approval: approvalOf(r),
  };
  if (r.owner !== undefined) event.owner = r.owner;
  return event;
}

/** The fields every event about one call carries (client-chosen ones bounded by {@link clipText}). */
function callEvent(type: AuditEventInput['type'], f: CallFacts): AuditEventInput {
  const event: AuditEventInput = {
    type,
    requestId: clipText(f.requestId),
    sessionId: f.sessionId,
    grantId: f.grantId,
    principal: auditPrincipal(f.principal),
    method: clipText(f.method),
    server: f.server,
  };
  if (f.owner !== undefined) event.owner = clipText(f.owner);
  if (f.tool !== undefined) event.tool = clipText(f.tool);
  const lease = f.leases?.[0];
  if (lease) event.lease = { ...lease };
  return event;
}

/** The audit form of a grant's principal. */
function grantPrincipal(g: GrantRecord): AuditPrincipal {
  const out: AuditPrincipal = { agent: g.agent, issuer: g.issuer };
  if (g.user !== undefined) out.user = g.user;
  if (g.tenant !== undefined) out.tenant = g.tenant;
  if (g.actors.length > 0) out.actors = [...g.actors];
  if (g.tokenId !== undefined) out.jti = g.tokenId;
  return out;
}

/** Marker event written at a clean stop; recovery looks for calls without an outcome after the last one. */
const STOP_ACTION = 'gateway.stopped';

/** `detail.action` of the `admin.action` event of a token revocation. */
export const TOKENS_REVOKED_ACTION = 'tokens.revoked';

/** Whether a stored record is the clean-stop marker (its `detail.action`, not any text in it). */
function isStopMarker(body: string): boolean {
  try {
    const e = (JSON.parse(body) as { event?: { detail?: { action?: unknown } } }).event;
    return e?.detail?.action === STOP_ACTION;
  } catch {
    return false;
  }
}

/** Options of {@link AuditRecorder} (from config `audit`). */
export interface AuditRecorderOptions {
  /** Counting of failures without a principal (`audit.anonymousFailures`); default 60 s windows, 5 samples. */
  anonymousFailures?: AnonymousFailuresOptions | undefined;
}

/** What start-up recovery needs of the audit store (`storage.audit`). */
export interface RecoveryRepo {
  query(f: {
    type?: string;
    afterSeq?: number;
    limit?: number;
  }): Promise<{ seq: number; requestId: string | undefined; body: string }[]>;
  repairTornTails?(): Promise<(AuditTornTail & { sha256: string })[]>;
}

/** The gateway's producer of audit events; see the module comment. */
export class AuditRecorder {
  private failures = 0;
  private readonly anonymous: AnonymousFailures;

  constructor(
    private readonly writer: AuditWriter,
    private readonly log: Logger,
    private readonly metrics: GatewayMetrics,
    opts: AuditRecorderOptions = {},
  ) {
    this.anonymous = new AnonymousFailures(opts.anonymousFailures ?? { windowSec: 60, samples: 5 }, (e) =>
      this.append(e).catch(() => {}),
    );
  }

  /** Appends failures since start (metrics and /readyz can read it). */
  get writeFailures(): number {
    return this.failures;
  }

  /** Durable append; rejects when the store cannot write (callers decide to fail closed). */
  append(event: AuditEventInput): Promise<void> {
    return this.writer.appendTrusted(event).then(
      () => this.metrics.auditEvent(event.type),
      (err: unknown) => {
        this.failed(event, err);
        throw err;
      },
    );
  }

  /** Best-effort append for facts that must not delay or fail the request (the failure is logged and counted). */
  record(event: AuditEventInput): void {
    // One promise, not append's two: every call's outcome is recorded here.
    this.writer.appendTrusted(event).then(
      () => {
        // Nothing may escape into an unhandled rejection: the record is written, a metric is only a metric.
        try {
          this.metrics.auditEvent(event.type);
        } catch {}
      },
      (err: unknown) => this.failed(event, err),
    );
  }

  private failed(event: AuditEventInput, err: unknown): void {
    this.failures++;
    this.metrics.auditWriteFailure();
    this.log.error(
      { err: err instanceof Error ? err.message : String(err), type: event.type },
      'audit write failed',
    );
  }

  /** A session began under a grant: the token was accepted. */
  sessionStarted(
    sessionId: string,
    grantId: string,
    principal: Principal,
    client: Record<string, unknown>,
  ): void {
    this.record({
      type: 'authn.success',
      sessionId,
      grantId,
      principal: auditPrincipal(principal),
      // clientInfo is the client's to choose (any JSON, any size): kept as bounded text.
      detail: { client: { name: clientText(client.name), version: clientText(client.version) } },
    });
  }

  /** A grant was made (implicit for a session, or a task grant behind a task token). */
  grantCreated(g: GrantRecord): void {
    const event: AuditEventInput = {
      type: 'grant.created',
      grantId: g.id,
      principal: grantPrincipal(g),
      detail: {
        kind: g.kind,
        tools: g.tools ?? 'policy',
        constraints: g.constraints,
        expiresAt: g.expiresAt,
        idleTimeoutMs: g.idleTimeoutMs,
        createdBy: g.createdBy,
      },
    };
    if (g.owner !== undefined) event.owner = g.owner;
    this.record(event);
  }

  grantEnded(g: GrantRecord): void {
    const event: AuditEventInput = {
      type: 'grant.ended',
      grantId: g.id,
      principal: grantPrincipal(g),
      detail: { kind: g.kind, reason: g.endReason ?? 'ended' },
    };
    if (g.owner !== undefined) event.owner = g.owner;
    this.record(event);
  }

  /**
   * An entry of the token revocation list took effect here: made in this process (RFC 7009, a revoked
   * authorization-server grant, a client removed from the configuration) or read from the store (the
   * CLI, another gateway).
   */
  tokensRevoked(r: RevocationRecord, source: 'local' | 'store'): void {
    const event: AuditEventInput = {
      type: 'admin.action',
      detail: {
        action: TOKENS_REVOKED_ACTION,
        kind: r.kind,
        value: r.value,
        notBefore: r.notBefore,
        reason: r.reason,
        source,
      },
    };
    if (r.kind === 'agent') event.principal = { agent: r.value };
    this.record(event);
  }

  /**
   * A call refused by the authorize stage: the decision, its policies and the reference the client
   * will get. Durable like an intent: resolves once the record is written, rejects when it cannot
   * be, so the refusal quotes a reference only when its record exists (authorize.ts `deny`).
   */
  refused(f: CallFacts, decision: CallDecision): Promise<void> {
    const event = callEvent('decision', f);
    event.args = f.args;
    event.decision = decisionOf(decision);
    event.outcome = {
      status: 'denied',
      errorCode: decision.effect === 'deny' ? 'tool_not_permitted' : 'approval_required',
    };
    return this.append(event);
  }

  /**
   * A call held for a human approval: the request (id, binding digest, definition hash, expiry) with the
   * call's principal, arguments and deciding policies. Durable before the call waits: a request nobody
   * can find in the audit log is never made.
   */
  approvalRequested(f: CallFacts, r: ApprovalRecord): Promise<void> {
    const event = callEvent('approval.requested', f);
    event.args = f.args;
    event.decision = { effect: 'approval_required', policies: [...r.policies] };
    event.approval = { id: r.id };
    event.detail = {
      digest: r.digest,
      definitionHash: r.definitionHash,
      expiresAt: r.expiresAt,
      attributes: r.attributes,
    };
    return this.append(event);
  }

  /** A human approved or denied a request (in this gateway, the CLI or another gateway): who, how, why. */
  approvalDecided(r: ApprovalRecord): Promise<void> {
    const event = approvalEvent(r.decision === 'approved' ? 'approval.granted' : 'approval.denied', r);
    event.detail = { channel: r.channel ?? 'unknown', decidedAt: r.decidedAt, digest: r.digest };
    return this.append(event);
  }

  /** A request expired before it was decided, or an approval before it was used. */
  approvalExpired(r: ApprovalRecord): void {
    const event = approvalEvent('approval.expired', r);
    event.detail = { expiresAt: r.expiresAt, decision: r.decision ?? 'none' };
    this.record(event);
  }

  /** The held call (or its retry) used the approval: single use, durable before the call goes on. */
  approvalConsumed(f: CallFacts, r: ApprovalRecord): Promise<void> {
    const event = callEvent('approval.consumed', f);
    event.args = f.args;
    event.approval = approvalOf(r);
    event.detail = { digest: r.digest };
    return this.append(event);
  }

  /** A call refused because its upstream credential is revoked, blocked, missing or cannot be minted. */
  credentialRefused(f: CallFacts, code: string, service: unknown): void {
    const event = callEvent('decision', f);
    event.args = f.args;
    event.outcome = { status: 'denied', errorCode: code };
    if (typeof service === 'string') event.detail = { service };
    this.record(event);
  }

  /** The leak guard removed stored secrets or tokens from a message to the agent (labels and forms, never values). */
  redacted(
    sessionId: string,
    grantId: string,
    principal: Principal,
    findings: readonly { label: string; form: string }[],
  ): void {
    this.record({
      type: 'sanitiser.finding',
      sessionId,
      grantId,
      principal: auditPrincipal(principal),
      findings: findings.map((f) => ({
        rule: 'leak-guard',
        severity: 'high',
        action: 'redacted',
        location: `${f.label} (${f.form})`,
      })),
    });
  }

  /**
   * The result sanitisers found something in a message to the agent (stage sanitize-result): one
   * event per message, with each finding's family/rule, severity, what was done and where (JSON
   * pointer and span). Decoded tag-character text is kept (THREATS T22: "decode tag payloads into the
   * audit log"); secret values never are (findings name the rule, not the match).
   */
  sanitised(
    sessionId: string,
    grantId: string,
    principal: Principal,
    origin: { server: string; method: string; target: string | undefined },
    findings: readonly {
      type: string;
      rule: string;
      path: string;
      start: number;
      end: number;
      detail: string;
    }[],
    action: string,
  ): void {
    const done =
      action === 'block' ? 'blocked' : action === 'redact' || action === 'wrap' ? 'redacted' : 'flagged';
    const event: AuditEventInput = {
      type: 'sanitiser.finding',
      sessionId,
      grantId,
      principal: auditPrincipal(principal),
      server: origin.server,
      method: origin.method,
      findings: findings.slice(0, 100).map((f) => ({
        rule: `${f.type}/${f.rule}`.slice(0, 512),
        severity: SANITISER_SEVERITY.get(f.type) ?? 'medium',
        action: done,
        location: `${f.path} [${f.start},${f.end}) ${f.detail}`.slice(0, 1024),
      })),
    };
    if (origin.target !== undefined) event.tool = origin.target.slice(0, 512);
    this.record(event);
  }

  /**
   * A grant received untrusted content (taint, docs/sanitization.md): the read labels it gained
   * (`detail.labels`), which policy sees from now on as `context.read`, and the message's origin.
   */
  tainted(
    sessionId: string,
    grantId: string,
    principal: Principal,
    origin: { server: string; method: string; target: string | undefined },
    labels: readonly string[],
  ): void {
    const event: AuditEventInput = {
      type: 'grant.tainted',
      sessionId,
      grantId,
      principal: auditPrincipal(principal),
      server: origin.server,
      method: origin.method,
      detail: { labels: labels.map((l) => l.slice(0, 512)) },
    };
    if (origin.target !== undefined) event.tool = origin.target.slice(0, 512);
    this.record(event);
  }

  /**
   * A request refused at the boundary (401/403/503 from authenticate or check-scope). With a
   * principal (an authenticated refusal, e.g. insufficient_scope) it is its own `authn.failure`
   * record; without one (no token, a bad token, keys unavailable) anyone can send it at any rate,
   * so it is counted into the window's `authn.failure.summary` (authn-failures.ts).
   */
  authFailed(
    requestId: string,
    code: string,
    reason: string | undefined,
    principal: Principal | undefined,
    source?: AuthFailureSource,
  ): void {
    if (!principal) {
      this.anonymous.add(requestId, code, reason, source);
      return;
    }
    const event: AuditEventInput = {
      type: 'authn.failure',
      requestId,
      principal: auditPrincipal(principal),
      detail: { code, ...(reason ? { reason: clipText(reason) } : {}) },
    };
    this.record(event);
  }

  /**
   * A failed login at the embedded authorization server (password form, upstream identity provider,
   * client secret) or in the connect flow. `username` is what was typed (cut to 64 characters) or
   * what the provider named: never whether such a user exists.
   */
  loginFailed(f: {
    kind: string;
    reason: string;
    client: string | undefined;
    username: string | undefined;
    address: string;
    detail?: string | undefined;
  }): void {
    const event: AuditEventInput = {
      type: 'authn.failure',
      detail: {
        stage: 'login',
        kind: f.kind,
        reason: f.reason,
        address: f.address,
        ...(f.username !== undefined ? { username: f.username } : {}),
        ...(f.detail !== undefined ? { check: f.detail.slice(0, 256) } : {}),
      },
    };
    if (f.client !== undefined && f.client !== '') event.principal = { agent: f.client };
    this.record(event);
  }

  /** A merged list was served. */
  listed(requestId: string, sessionId: string, grantId: string, principal: Principal, method: string): void {
    this.record({
      type: 'list',
      requestId,
      sessionId,
      grantId,
      principal: auditPrincipal(principal),
      method,
    });
  }

  /** Write-ahead: the record that this call was allowed (and by which policies), durable before the call is forwarded. */
  intent(f: CallFacts, decision: CallDecision): Promise<void> {
    const event = callEvent('call.attempted', f);
    event.args = f.args;
    event.decision = decisionOf(decision);
    if (decision.approval !== undefined) {
      event.approval = { id: decision.approval.id };
      if (decision.approval.approver !== undefined)
        event.approval.approver = clipText(decision.approval.approver);
      if (decision.approval.reason !== undefined)
        event.approval.reason = decision.approval.reason.slice(0, 4096);
    }
    if (f.requestBytes !== undefined) event.detail = { requestBytes: f.requestBytes };
    return this.append(event);
  }

  /** The outcome of a call whose intent was recorded. */
  completed(f: CallFacts, outcome: CallOutcome): void {
    const event = callEvent('call.completed', f);
    event.outcome = outcome;
    // The code can come from the upstream's error data (`data.gatehouse`): any JSON, any size.
    if (outcome.errorCode !== undefined)
      event.outcome = { ...outcome, errorCode: clipText(String(outcome.errorCode), 128) };
    this.record(event);
  }

  /**
   * Start-up recovery, before serving: torn lines are cut off (logged and recorded, see
   * {@link repairTornTails}), then calls cut off by an unclean stop get their outcome-unknown record.
   */
  async recover(repo: RecoveryRepo): Promise<void> {
    await this.repairTornTails(repo);
    await this.recoverUnknownOutcomes(repo);
  }

  /**
   * Cuts torn lines (a write cut short by a crash, power loss or a full disk) off the segment
   * files, and says so: a warning in the log naming segment, offset and size, and an
   * `admin.action` record `audit.torn_tail_removed` with the SHA-256 of the bytes removed. The
   * cut used to happen silently on the first append. Returns what was cut.
   */
  async repairTornTails(repo: RecoveryRepo): Promise<(AuditTornTail & { sha256: string })[]> {
    const cut = (await repo.repairTornTails?.()) ?? [];
    for (const t of cut) {
      this.log.warn(
        { segment: t.segment, offset: t.offset, bytes: t.bytes, sha256: t.sha256 },
        'audit log: torn last line removed',
      );
      await this.append({
        type: 'admin.action',
        detail: {
          action: 'audit.torn_tail_removed',
          segment: t.segment,
          offset: t.offset,
          bytes: t.bytes,
          sha256: t.sha256,
        },
      });
    }
    return cut;
  }

  /**
   * After an unclean stop: every call recorded as attempted since the last
   * clean stop that has no outcome gets an "outcome unknown" record, so the log
   * says plainly that the gateway does not know whether the call took effect.
   */
  async recoverUnknownOutcomes(repo: RecoveryRepo): Promise<number> {
    const stops = await repo.query({ type: 'admin.action' });
    let after = 0;
    // Parsed, not searched: other admin actions carry operator text (a user revoked by name).
    for (const r of stops) if (isStopMarker(r.body)) after = r.seq;
    const attempted = await repo.query({ type: 'call.attempted', afterSeq: after });
    if (attempted.length === 0) return 0;
    const completed = new Set(
      (await repo.query({ type: 'call.completed', afterSeq: after })).map((r) => r.requestId),
    );
    let n = 0;
    for (const row of attempted) {
      if (!row.requestId || completed.has(row.requestId)) continue;
      const e = (JSON.parse(row.body) as { event: AuditEvent }).event;
      const event: AuditEventInput = {
        type: 'call.completed',
        requestId: row.requestId,
        outcome: { status: 'unknown' },
        detail: { reason: 'gateway stopped before the outcome was recorded', attemptedSeq: row.seq },
      };
      if (e.sessionId) event.sessionId = e.sessionId;
      if (e.grantId) event.grantId = e.grantId;
      if (e.principal) event.principal = e.principal;
      if (e.method) event.method = e.method;
      if (e.server) event.server = e.server;
      if (e.tool) event.tool = e.tool;
      await this.append(event);
      n++;
    }
    if (n > 0)
      this.log.warn(
        { calls: n },
        'calls without a recorded outcome after an unclean stop were marked outcome unknown',
      );
    return n;
  }

  /** Applies retention limits now (the writer checkpoints before pruning). */
  async prune(limits: { maxAgeDays?: number | undefined; maxRecords?: number | undefined }): Promise<number> {
    if (limits.maxAgeDays === undefined && limits.maxRecords === undefined) return 0;
    const n = await this.writer.prune({
      ...(limits.maxAgeDays !== undefined ? { maxAgeMs: limits.maxAgeDays * 86_400_000 } : {}),
      ...(limits.maxRecords !== undefined ? { maxCount: limits.maxRecords } : {}),
    });
    if (n > 0) this.log.info({ records: n }, 'audit records pruned by retention');
    return n;
  }

  /** Writes the current window's anonymous-failure summaries now (a clean stop does this too). */
  flushAnonymousFailures(): Promise<void> {
    return this.anonymous.flush();
  }

  /** Clean stop: the window's failure counts, the marker recovery starts from, then a final checkpoint. */
  async stop(): Promise<void> {
    await this.anonymous.flush();
    await this.append({ type: 'admin.action', detail: { action: STOP_ACTION } }).catch(() => {});
    await this.writer.close();
  }
}
