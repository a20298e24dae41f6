/**
 * What the console can read and do, over the same code as the CLI: approval decisions through
 * src/approvals/decide.ts (who may decide, separation of duties, first decision wins), grant revocation
 * as `gatehouse grants revoke ID` (the grant ends and the token that opened it is revoked, in one store
 * transaction), lease revocation and unblocking as `gatehouse credentials`, decisions on quarantined
 * tool definitions as `gatehouse tools approve|reject TOOL --hash H`. Every action is audited as
 * `admin.action` with the console user; approval decisions are audited by the approval manager with
 * the approver, channel `console` and the reason.
 */
import type { Logger } from 'pino';
import { type DecideResult, decideApproval } from '../approvals/decide.ts';
import type { ApprovalManager } from '../approvals/manager.ts';
import type { AuditRecorder } from '../audit/recorder.ts';
import { revocationLifetimes, revocationRecord, tokensOf } from '../auth/revocation.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { CredentialBroker } from '../credentials/broker.ts';
import { definitionLabel } from '../definitions/diff.ts';
import type {
  ApprovalRecord,
  AuditFilter,
  AuditRow,
  CredentialBlock,
  DefinitionRecord,
  GrantRecord,
  LeaseRecord,
  Storage,
} from '../storage/types.ts';
import type { AdminSession } from './session.ts';

export interface AdminDeps {
  config: GatehouseConfig;
  storage: Storage;
  approvals: ApprovalManager | undefined;
  broker: CredentialBroker;
  audit: AuditRecorder;
  log: Logger;
}

/** Longest reason kept (the audit keeps 4,096 characters). */
export const MAX_REASON = 1000;
/** Audit rows the timeline shows at most. */
export const TIMELINE_ROWS = 200;
/** How far back the timeline looks, in records, before filtering. */
const TIMELINE_SCAN = 20_000;

/** The audit timeline's filters (each one audit index column). */
export interface TimelineFilter {
  agent?: string;
  user?: string;
  grant?: string;
  tool?: string;
  decision?: string;
}

export type ActionResult = { ok: true; message: string } | { ok: false; message: string };

export class AdminActions {
  constructor(private readonly d: AdminDeps) {}

  approvals(all: boolean): Promise<ApprovalRecord[]> {
    return this.d.storage.approvals.list(all ? {} : { states: ['pending'] });
  }

  approval(id: string): Promise<ApprovalRecord | undefined> {
    return this.d.storage.approvals.get(id);
  }

  /** Approves or denies as the logged-in user, through the CLI's code path (channel `console`). */
  async decide(
    s: AdminSession,
    id: string,
    state: 'approved' | 'denied',
    reason: string | undefined,
  ): Promise<DecideResult> {
    const res = await decideApproval(this.d.storage.approvals, this.d.config, {
      id,
      approver: s.user,
      groups: s.groups,
      state,
      reason: reason?.slice(0, MAX_REASON) || undefined,
      channel: 'console',
      now: Date.now(),
    });
    this.d.log.info({ approval: id, approver: s.user, state, ok: res.ok }, 'console approval decision');
    // The holding gateway notices within 250 ms; this one acts now.
    if (res.ok) await this.d.approvals?.poll();
    return res;
  }

  grants(): Promise<GrantRecord[]> {
    return this.d.storage.grants.listLive(Date.now());
  }

  /** `gatehouse grants revoke ID`: the grant ends and the token that opened it is revoked. */
  async revokeGrant(s: AdminSession, id: string, reason: string | undefined): Promise<ActionResult> {
    const now = Date.now();
    const why = reason?.slice(0, MAX_REASON) || `revoked by ${s.user} (console)`;
    const lifetimes = revocationLifetimes(this.d.config);
    const { ids, token } = await this.d.storage.transaction(async (tx) => {
      const ended = await tx.grants.end({ id }, why, now);
      const target = ended.length > 0 ? await tokensOf(tx, { id }) : undefined;
      if (target) await tx.revocations.add(revocationRecord(target, { now, reason: why, lifetimes }));
      return { ids: ended, token: target };
    });
    if (ids.length === 0) return { ok: false, message: `no live grant \`${id}\`` };
    this.record(s, { action: 'grant.revoked', grant: id, reason: why, tokens: token?.kind });
    return { ok: true, message: `grant ${id} revoked` };
  }

  async credentials(): Promise<{ leases: LeaseRecord[]; blocks: CredentialBlock[] }> {
    const [leases, blocks] = await Promise.all([
      this.d.storage.leases.listLive(Date.now()),
      this.d.storage.leases.blocks(),
    ]);
    return { leases, blocks };
  }

  /** `gatehouse credentials revoke LEASE_ID`. */
  async revokeLease(s: AdminSession, id: string, reason: string | undefined): Promise<ActionResult> {
    const why = reason?.slice(0, MAX_REASON) || `revoked by ${s.user} (console)`;
    const ids = await this.d.broker.revoke({ id }, why);
    if (ids.length === 0) return { ok: false, message: `no live lease \`${id}\`` };
    this.record(s, { action: 'lease.revoked', lease: id, reason: why });
    return { ok: true, message: `lease ${id} revoked` };
  }

  /** `gatehouse credentials unblock --secret NAME | --service S`. */
  async unblock(s: AdminSession, kind: string, name: string): Promise<ActionResult> {
    if (kind !== 'secret' && kind !== 'service')
      return { ok: false, message: 'kind must be secret or service' };
    const lifted = await this.d.storage.leases.unblock(kind, name);
    if (!lifted) return { ok: false, message: `${kind} \`${name}\` was not blocked` };
    this.record(s, { action: 'credential.unblocked', kind, name });
    return { ok: true, message: `${kind} ${name} unblocked` };
  }

  /**
   * Quarantined definitions (pending, and rejected ones that may still be approved), each with the pin
   * it would replace: what `gatehouse tools pending` lists.
   */
  async definitions(): Promise<Array<{ waiting: DefinitionRecord; pin: DefinitionRecord | undefined }>> {
    const all = await this.d.storage.definitions.list({});
    return all
      .filter((r) => r.status === 'pending' || r.status === 'rejected')
      .map((waiting) => ({
        waiting,
        pin: all.find(
          (p) =>
            p.status === 'pinned' &&
            p.server === waiting.server &&
            p.kind === waiting.kind &&
            p.name === waiting.name,
        ),
      }));
  }

  /**
   * `gatehouse tools approve|reject TOOL --hash H`: bound to the exact definition that was shown (its
   * hash); a running gateway applies the decision within 250 ms and audits it.
   */
  async decideDefinition(
    s: AdminSession,
    target: { server: string; kind: string; name: string; hash: string },
    decision: 'approve' | 'reject',
  ): Promise<ActionResult> {
    const all = await this.d.storage.definitions.list({ server: target.server });
    const row = all.find(
      (r) =>
        r.kind === target.kind &&
        r.name === target.name &&
        r.hash === target.hash &&
        (r.status === 'pending' || (r.status === 'rejected' && decision === 'approve')),
    );
    const label = definitionLabel(target);
    if (row === undefined) return { ok: false, message: `no such definition waits for a decision` };
    const by = `console:${s.user}`;
    const now = Date.now();
    const repo = this.d.storage.definitions;
    const done = decision === 'approve' ? await repo.approve(row, by, now) : await repo.reject(row, by, now);
    if (!done) return { ok: false, message: `${label} changed meanwhile; look again` };
    this.record(s, {
      action: decision === 'approve' ? 'definition.approved' : 'definition.rejected',
      server: row.server,
      kind: row.kind,
      name: row.name,
      hash: row.hash,
    });
    return {
      ok: true,
      message:
        decision === 'approve'
          ? `approved ${label}: ${row.hash.slice(0, 12)} is the pin`
          : `rejected ${label} ${row.hash.slice(0, 12)}: it stays quarantined`,
    };
  }

  /** The newest audit records matching every filter, newest first. */
  async timeline(f: TimelineFilter): Promise<AuditRow[]> {
    const bounds = await this.d.storage.audit.bounds();
    if (bounds === undefined) return [];
    const filter: AuditFilter = { afterSeq: Math.max(0, bounds.last - TIMELINE_SCAN) };
    if (f.agent) filter.agent = f.agent;
    if (f.user) filter.user = f.user;
    if (f.grant) filter.grantId = f.grant;
    if (f.tool) filter.tool = f.tool;
    if (f.decision) filter.decision = f.decision;
    const rows = await this.d.storage.audit.query(filter);
    return rows.slice(-TIMELINE_ROWS).reverse();
  }

  private record(s: AdminSession, detail: Record<string, unknown>): void {
    this.d.audit.record({
      type: 'admin.action',
      principal: { agent: 'gatehouse-admin', user: s.user },
      detail: { ...detail, by: s.user, channel: 'console' },
    });
  }
}
