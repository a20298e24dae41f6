/**
 * Deciding an approval request, for every channel (the CLI today, the admin console later): who may
 * decide (config `approvals.approvers`, users or `role:<name>` of policy.roles.users), separation of
 * duties (the requester's own user or agent may not, unless `approvals.allowSelfApproval`), and the
 * atomic first-decision-wins write to the store. The gateway that holds the call notices the decision
 * in the store, writes the audit event with the approver, channel and reason, and releases the call.
 */
import type { GatehouseConfig } from '../config/schema.ts';
import type { ApprovalRecord, ApprovalRepo } from '../storage/types.ts';

/** Why a decision was not recorded. */
export type DecideRefusal =
  | 'no_approvers'
  | 'not_an_approver'
  | 'self_approval'
  | 'not_found'
  | 'not_pending'
  | 'expired';

/** What {@link decideApproval} did. */
export type DecideResult =
  | { ok: true; record: ApprovalRecord }
  | { ok: false; refusal: DecideRefusal; message: string };

/**
 * Whether `approver` is named in `approvals.approvers`, directly, through a role of policy.roles.users, or
 * (`group:<name>`) through a group of its console login's claims.
 */
export function isApprover(
  config: GatehouseConfig,
  approver: string,
  groups: readonly string[] = [],
): boolean {
  for (const a of config.approvals.approvers) {
    if (a.startsWith('group:')) {
      if (groups.includes(a.slice('group:'.length))) return true;
      continue;
    }
    if (!a.startsWith('role:')) {
      if (a === approver) return true;
      continue;
    }
    const role = a.slice('role:'.length);
    const members = Object.hasOwn(config.policy.roles.users, role)
      ? config.policy.roles.users[role]
      : undefined;
    if (members?.includes(approver)) return true;
  }
  return false;
}

/** Separation of duties: the approver is the requester (its user, or the agent itself). */
export function isSelf(rec: Pick<ApprovalRecord, 'user' | 'agent'>, approver: string): boolean {
  return approver === rec.user || approver === rec.agent;
}

/** Approves or denies request `id` as `approver` through `channel`; the first decision wins. */
export async function decideApproval(
  repo: ApprovalRepo,
  config: GatehouseConfig,
  d: {
    id: string;
    approver: string;
    /** Groups of the approver's login (console); `group:<name>` entries match them. */
    groups?: readonly string[];
    state: 'approved' | 'denied';
    reason: string | undefined;
    channel: string;
    now: number;
  },
): Promise<DecideResult> {
  const refuse = (refusal: DecideRefusal, message: string): DecideResult => ({ ok: false, refusal, message });
  if (config.approvals.approvers.length === 0)
    return refuse('no_approvers', 'no approvers are configured (approvals.approvers)');
  if (!isApprover(config, d.approver, d.groups))
    return refuse('not_an_approver', `\`${d.approver}\` is not an approver (approvals.approvers)`);
  const rec = await repo.get(d.id);
  if (rec === undefined) return refuse('not_found', `no approval request \`${d.id}\``);
  // INVARIANT: separation of duties is checked for denials too: a requester who cannot approve cannot
  // close their own request either (it would hide it from the approvers).
  if (!config.approvals.allowSelfApproval && isSelf(rec, d.approver))
    return refuse(
      'self_approval',
      `\`${d.approver}\` made this request and cannot decide it (approvals.allowSelfApproval is false)`,
    );
  const res = await repo.decide(d.id, {
    state: d.state,
    by: d.approver,
    reason: d.reason,
    channel: d.channel,
    at: d.now,
  });
  switch (res) {
    case 'decided': {
      const after = await repo.get(d.id);
      return after ? { ok: true, record: after } : refuse('not_found', `no approval request \`${d.id}\``);
    }
    case 'not_found':
      return refuse('not_found', `no approval request \`${d.id}\``);
    case 'expired':
      return refuse('expired', `approval request \`${d.id}\` has expired`);
    case 'not_pending': {
      const now = (await repo.get(d.id)) ?? rec;
      return refuse('not_pending', `approval request \`${d.id}\` was already ${now.decision ?? now.state}`);
    }
  }
}
