/**
 * What an approval is bound to (THREATS T25: "bound to a hash of (tool, args, def), single-use and
 * expiring"): the grant, the server and exposed tool, the SHA-256 of the tool's definition as the
 * gateway last listed it, and the canonical JSON of the arguments (src/audit/canonical.ts, the same
 * byte form the audit log digests). A call whose digest differs in anything needs a new approval.
 */
import { randomBytes } from 'node:crypto';
import { canonicalDigest, canonicalJson, toAuditValue } from '../audit/canonical.ts';

/** What one held call is, for binding and for the approver to see. */
export interface ApprovalSubject {
  readonly grantId: string;
  readonly server: string;
  /** The exposed name, `server__tool`. */
  readonly tool: string;
  /** The tool's definition as last listed (undefined: the upstream never listed it). */
  readonly definition: unknown;
  readonly args: unknown;
}

/** The binding of a subject: its digest, the definition hash and the canonical arguments. */
export interface ApprovalBinding {
  readonly digest: string;
  readonly definitionHash: string;
  /** Canonical JSON of the arguments, untruncated. */
  readonly arguments: string;
}

/**
 * The binding of a call. Total: values canonical JSON cannot carry are first mapped to their one
 * documented form (toAuditValue), so the same call always binds the same way and no client can
 * make binding fail.
 */
export function bindApproval(s: ApprovalSubject): ApprovalBinding {
  const definitionHash = canonicalDigest(toAuditValue(s.definition ?? null).value);
  const args = canonicalJson(toAuditValue(s.args ?? {}).value);
  const digest = canonicalDigest({
    v: 1,
    grant: s.grantId,
    server: s.server,
    tool: s.tool,
    definition: definitionHash,
    arguments: args,
  });
  return { digest, definitionHash, arguments: args };
}

/** The decision fields of a request nobody has decided or used yet. */
export const UNDECIDED = Object.freeze({
  decision: undefined,
  decidedAt: undefined,
  decidedBy: undefined,
  reason: undefined,
  channel: undefined,
  consumedAt: undefined,
});

/** A new approval id: `apr_` and 128 random bits (unguessable; an id alone never releases anything). */
export function newApprovalId(): string {
  return `apr_${randomBytes(16).toString('base64url')}`;
}
