/**
 * Console roles. `admin` (config admin.admins): grants, leases, blocks, the audit timeline, and their
 * revocations. `approver` (config approvals.approvers, the same list the CLI checks): the approval
 * queue and its decisions. Entries name a user, `role:<name>` (policy.roles.users, as for approvers) or
 * `group:<name>` (the login's groups claim).
 */
import { isApprover } from '../approvals/decide.ts';
import type { GatehouseConfig } from '../config/schema.ts';

export type AdminRole = 'admin' | 'approver';

/** Whether `user` (with login `groups`) matches one entry of `list`. */
export function listed(
  config: GatehouseConfig,
  list: readonly string[],
  user: string,
  groups: readonly string[],
): boolean {
  for (const e of list) {
    if (e.startsWith('group:')) {
      if (groups.includes(e.slice('group:'.length))) return true;
    } else if (e.startsWith('role:')) {
      const role = e.slice('role:'.length);
      const members = Object.hasOwn(config.policy.roles.users, role)
        ? config.policy.roles.users[role]
        : undefined;
      if (members?.includes(user)) return true;
    } else if (e === user) return true;
  }
  return false;
}

/** The console roles of a login. */
export function rolesOf(config: GatehouseConfig, user: string, groups: readonly string[]): Set<AdminRole> {
  const roles = new Set<AdminRole>();
  if (listed(config, config.admin.admins, user, groups)) roles.add('admin');
  if (isApprover(config, user, groups)) roles.add('approver');
  return roles;
}
