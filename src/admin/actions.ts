/**
 * What the console can read and do, over the same code as the CLI: approval decisions through
 * src/approvals/decide.ts (who may decide, separation of duties, first decision wins), grant revocation
 * as `gatehouse grants revoke ID` (the grant ends and the token that opened it is revoked, in one store
 * transaction), lease revocation and unblocking as `gatehouse credentials`. Every action is audited as
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
import type {
  ApprovalRecord,
  AuditFilter,
  AuditRow,
  CredentialBlock,
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
