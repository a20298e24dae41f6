/**
 * The audit log: a tamper-evident, write-ahead record of what the gateway did
 * (docs/audit.md). The pipeline creates one writer at start-up with
 * {@link createAuditWriter} and awaits `append` before acting on a decision.
 */
import type { AuditRepo } from '../storage/types.ts';
import { loadAuditKey } from './keys.ts';
import { type AuditWriter, type AuditWriterOptions, openAuditWriter } from './writer.ts';

export { CanonicalError, canonicalDigest, canonicalJson } from './canonical.ts';
export { type AuditRecord, GENESIS_HASH } from './chain.ts';
export {
  AUDIT_EVENT_TYPES,
  AUDIT_SCHEMA_VERSION,
  type AuditEvent,
  type AuditEventInput,
  type AuditEventType,
  auditEventSchema,
  validateAuditEvent,
} from './event.ts';
export { formatLine, formatTimeline, toJsonLine, toOcsf, toRecords } from './format.ts';
export { type AuditKey, auditKeyPath, auditPublicKeyPem, loadAuditKey } from './keys.ts';
export {
  type AuditBreak,
  type AuditBreakKind,
  type VerifyOptions,
  type VerifyResult,
  verifyAuditLog,
} from './verify.ts';
export {
  type AppendResult,
  AuditWriteError,
  AuditWriter,
  type AuditWriterOptions,
  openAuditWriter,
  type Redactor,
  type RetentionOptions,
} from './writer.ts';

/**
 * Opens the audit writer for a gateway: loads (or creates, mode 0600) the
 * checkpoint key in `dataDir` and reads the chain head from `repo`
 * (`storage.audit`). Rejects when the key file is unsafe or the store unreadable.
 */
export async function createAuditWriter(
  opts: { repo: AuditRepo; dataDir: string; instance: string } & Omit<
    AuditWriterOptions,
    'repo' | 'key' | 'instance'
  >,
): Promise<AuditWriter> {
  const { dataDir, ...rest } = opts;
  const key = loadAuditKey(dataDir, { create: true });
  if (!key) throw new Error('audit key could not be created');
  return openAuditWriter({ ...rest, key });
}
