/**
 * The audit event schema, version 1 (documented in docs/audit.md). One event is
 * one thing the gateway did or decided; the pipeline stages that produce them
 * come later, so everything beyond the envelope is optional. Adding an optional
 * field is compatible; anything else bumps `v`.
 */
import { z } from 'zod';

/** Every event type of schema version 1. */
export const AUDIT_EVENT_TYPES = [
  'authn.success',
  'authn.failure',
  'authn.failure.summary',
  'grant.created',
  'grant.ended',
  'list',
  'call.attempted',
  'call.completed',
  'decision',
  'approval.requested',
  'approval.granted',
  'approval.denied',
  'approval.expired',
  'approval.consumed',
  'lease.issued',
  'lease.revoked',
  'sanitiser.finding',
  'definition.changed',
  'config.reloaded',
  'admin.action',
  'definition.pinned',
  'grant.tainted',
] as const;

/** What happened (see docs/audit.md for when each is written). */
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** The schema version this module writes. */
export const AUDIT_SCHEMA_VERSION = 1;

const id = z.string().min(1).max(512);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lower-case hex sha-256');

const principalSchema = z
  .object({
    agent: id.describe('OAuth client id of the agent'),
    user: id.optional(),
    subject: id.optional(),
    tenant: id.optional(),
    actors: z.array(id).optional().describe('delegation chain, current actor first'),
    jti: id.optional(),
    issuer: id.optional(),
    authMethod: z.enum(['jwt', 'introspection', 'none']).optional(),
  })
  .strict();

const findingSchema = z
  .object({
    rule: id,
    severity: z.enum(['info', 'low', 'medium', 'high', 'critical']),
    action: z.enum(['flagged', 'redacted', 'blocked']).optional(),
    location: z.string().max(1024).optional(),
  })
  .strict();

/** The zod schema of a complete (stored) event; exported for tools that read exports. */
export const auditEventSchema = z
  .object({
    v: z.literal(AUDIT_SCHEMA_VERSION),
    id: id.describe('event id (uuid)'),
    time: z.number().int().nonnegative().describe('epoch milliseconds'),
    type: z.enum(AUDIT_EVENT_TYPES),
    instance: id.describe('gateway instance id'),
    requestId: id.optional(),
    grantId: id.optional(),
    sessionId: id.optional(),
    principal: principalSchema.optional(),
    owner: id.optional().describe('the user or team that owns the grant'),
    server: id.optional(),
    method: id.optional().describe('JSON-RPC method, e.g. tools/call'),
    tool: id.optional(),
    arguments: z
      .object({
        digest: sha256Hex.describe('sha-256 of the canonical json of the original arguments'),
        redacted: z
          .unknown()
          .optional()
          .describe('arguments after the redaction hook; absent when too large'),
        truncated: z.boolean().optional(),
        normalised: z
          .boolean()
          .optional()
          .describe('true when values json cannot carry were replaced (docs/audit.md, canonical json)'),
      })
      .strict()
      .optional(),
    decision: z
      .object({
        effect: z.enum(['allow', 'deny', 'approval_required']),
        policies: z.array(id),
        reason: z.string().max(4096).optional(),
      })
      .strict()
      .optional(),
    approval: z
      .object({
        id: id.optional(),
        approver: id.optional(),
        reason: z.string().max(4096).optional(),
      })
      .strict()
      .optional(),
    lease: z
      .object({
        id,
        credential: id.optional().describe('credential name, never its value'),
        expiresAt: z.number().int().optional(),
      })
      .strict()
      .optional(),
    outcome: z
      .object({
        status: z.enum(['ok', 'error', 'denied', 'timeout', 'cancelled', 'unknown']),
        errorCode: id.optional(),
        requestBytes: z.number().int().nonnegative().optional(),
        responseBytes: z.number().int().nonnegative().optional(),
        latencyMs: z.number().nonnegative().optional(),
      })
      .strict()
      .optional(),
    findings: z.array(findingSchema).optional(),
    detail: z.record(z.string(), z.unknown()).optional().describe('type-specific extras'),
  })
  .strict();

/** The members of an event in canonical (sorted) order. */
export const AUDIT_EVENT_KEYS: readonly string[] = Object.keys(auditEventSchema.shape).sort();

/** A complete audit event as stored and exported. */
export type AuditEvent = z.infer<typeof auditEventSchema>;

/**
 * What a producer passes to `append`: the envelope fields are filled in by the
 * writer when absent, and `args` (the raw tool arguments) is turned into
 * `arguments` (digest + redacted copy) so callers never hash by hand.
 */
export type AuditEventInput = Omit<AuditEvent, 'v' | 'id' | 'time' | 'instance'> & {
  id?: string;
  time?: number;
  instance?: string;
  /** Raw arguments of the call; digested, redacted and size-capped by the writer. */
  args?: unknown;
};

/** Validates a complete event; throws an Error naming the first bad field. */
export function validateAuditEvent(value: unknown): AuditEvent {
  const r = auditEventSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.join('.') : 'event';
  throw new Error(`invalid audit event: ${where}: ${issue?.message ?? 'invalid'}`);
}
