/**
 * Reading the audit log for people and other systems: one-line summaries, the
 * per-grant timeline (incident reconstruction), JSON Lines and OCSF export.
 */
import type { AuditRow } from '../storage/types.ts';
import { type AuditRecord, parseRecord } from './chain.ts';
import type { AuditEvent } from './event.ts';

/** Parses stored rows into records (seq, prev, hash, event). */
export function toRecords(rows: readonly AuditRow[]): AuditRecord[] {
  return rows.map((r) => parseRecord(r));
}

function who(e: AuditEvent): string {
  const p = e.principal;
  if (!p) return '-';
  const chain = p.actors && p.actors.length > 0 ? ` via ${p.actors.join(' > ')}` : '';
  return `${p.agent}${p.user ? ` for ${p.user}` : ''}${chain}`;
}

/** One human-readable line per event (what `audit query` prints). */
export function formatLine(r: AuditRecord): string {
  const e = r.event;
  const parts = [`#${r.seq}`, new Date(e.time).toISOString(), e.type, who(e)];
  if (e.server || e.tool) parts.push(`${e.server ?? '?'}/${e.tool ?? '-'}`);
  if (e.grantId) parts.push(`grant=${e.grantId}`);
  if (e.principal?.jti) parts.push(`jti=${e.principal.jti}`);
  if (e.decision) parts.push(`decision=${e.decision.effect}[${e.decision.policies.join(',')}]`);
  if (e.approval?.approver) parts.push(`approver=${e.approval.approver}`);
  if (e.lease) parts.push(`lease=${e.lease.id}`);
  if (e.outcome)
    parts.push(`outcome=${e.outcome.status}${e.outcome.errorCode ? `(${e.outcome.errorCode})` : ''}`);
  return parts.join('  ');
}

/**
 * The readable timeline of one grant: every event in order with time offsets
 * from the first, deciding policies, approvers, leases, outcomes and findings.
 */
export function formatTimeline(grantId: string, records: readonly AuditRecord[]): string {
  const first = records[0];
  if (!first) return `grant ${grantId}: no audit events\n`;
  const t0 = first.event.time;
  const lines = [
    `grant ${grantId}: ${records.length} events, ${new Date(t0).toISOString()} .. ${new Date(
      records[records.length - 1]?.event.time ?? t0,
    ).toISOString()}`,
  ];
  for (const r of records) {
    const e = r.event;
    const offset = `+${((e.time - t0) / 1000).toFixed(3)}s`.padStart(10);
    let line = `${offset}  #${r.seq}  ${e.type.padEnd(18)} ${who(e)}`;
    if (e.tool) line += `  ${e.server ?? '?'}/${e.tool}`;
    if (e.principal?.jti) line += `  jti=${e.principal.jti}`;
    lines.push(line);
    const sub: string[] = [];
    if (e.arguments)
      sub.push(
        `arguments sha256=${e.arguments.digest}${e.arguments.truncated ? ' (too large to keep)' : ''}`,
      );
    if (e.decision) {
      sub.push(
        `decision ${e.decision.effect} by ${e.decision.policies.length ? e.decision.policies.join(', ') : 'no policy'}${
          e.decision.reason ? `: ${e.decision.reason}` : ''
        }`,
      );
    }
    if (e.approval) {
      sub.push(
        `approval ${e.approval.id ?? ''} approver=${e.approval.approver ?? '-'}${e.approval.reason ? `: ${e.approval.reason}` : ''}`.replace(
          '  ',
          ' ',
        ),
      );
    }
    if (e.lease)
      sub.push(`credential lease ${e.lease.id}${e.lease.credential ? ` (${e.lease.credential})` : ''}`);
    if (e.outcome) {
      const o = e.outcome;
      sub.push(
        `outcome ${o.status}${o.errorCode ? ` ${o.errorCode}` : ''}${o.latencyMs !== undefined ? ` ${o.latencyMs} ms` : ''}${
          o.responseBytes !== undefined ? ` ${o.responseBytes} B` : ''
        }`,
      );
    }
    for (const f of e.findings ?? [])
      sub.push(`finding ${f.severity} ${f.rule}${f.action ? ` (${f.action})` : ''}`);
    for (const s of sub) lines.push(`              ${s}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A record as one JSON Lines line (no trailing newline). */
export function toJsonLine(r: AuditRecord): string {
  return JSON.stringify({ seq: r.seq, prev: r.prev, hash: r.hash, event: r.event });
}

/** OCSF schema version the mapping targets. */
export const OCSF_VERSION = '1.3.0';

// OCSF API Activity activity_id: 1 Create, 2 Read, 3 Update, 4 Delete, 99 Other.
const ACTIVITY: Partial<Record<AuditEvent['type'], number>> = {
  'grant.created': 1,
  'approval.requested': 1,
  'lease.issued': 1,
  list: 2,
  'grant.ended': 4,
  'lease.revoked': 4,
  'definition.changed': 3,
  'definition.pinned': 3,
  'grant.tainted': 3,
  'config.reloaded': 3,
};

const SEVERITY: Record<string, number> = { info: 1, low: 2, medium: 3, high: 4, critical: 5 };

function status(e: AuditEvent): { status_id: number; status: string } {
  const failed =
    e.type === 'authn.failure' ||
    e.type === 'authn.failure.summary' ||
    e.type === 'approval.denied' ||
    e.decision?.effect === 'deny' ||
    (e.outcome !== undefined && e.outcome.status !== 'ok');
  if (failed) return { status_id: 2, status: 'Failure' };
  if (e.outcome?.status === 'ok' || e.type === 'authn.success' || e.decision?.effect === 'allow') {
    return { status_id: 1, status: 'Success' };
  }
  return { status_id: 0, status: 'Unknown' };
}

/**
 * Maps a record to an OCSF API Activity event (class_uid 6003). Fields OCSF has
 * no place for stay under `unmapped` (see the table in docs/audit.md).
 */
export function toOcsf(r: AuditRecord, productVersion = '0.1.0'): Record<string, unknown> {
  const e = r.event;
  const activityId = ACTIVITY[e.type] ?? 99;
  const sev = Math.max(1, ...(e.findings ?? []).map((f) => SEVERITY[f.severity] ?? 1));
  const p = e.principal;
  const out: Record<string, unknown> = {
    class_uid: 6003,
    class_name: 'API Activity',
    category_uid: 6,
    category_name: 'Application Activity',
    activity_id: activityId,
    activity_name: activityId === 99 ? e.type : undefined,
    type_uid: 600300 + activityId,
    time: e.time,
    severity_id: sev,
    ...status(e),
    status_code: e.outcome?.errorCode,
    message: e.type,
    metadata: {
      version: OCSF_VERSION,
      uid: e.id,
      correlation_uid: e.requestId,
      sequence: r.seq,
      log_name: 'gatehouse-audit',
      product: { name: 'Gatehouse', vendor_name: 'Gatehouse', version: productVersion },
    },
    actor: p
      ? {
          user: p.user !== undefined ? { uid: p.user, name: p.user } : undefined,
          app_uid: p.agent,
          app_name: p.agent,
          session: {
            uid: e.sessionId,
            issuer: p.issuer,
          },
          authorizations: e.decision
            ? [
                {
                  decision: e.decision.effect,
                  policy: { uid: e.decision.policies.join(','), desc: e.decision.reason },
                },
              ]
            : undefined,
        }
      : undefined,
    api: {
      operation: e.method ?? e.type,
      service: e.server !== undefined ? { name: e.server } : undefined,
      request: { uid: e.requestId ?? e.id },
      response: e.outcome
        ? { code: undefined, error: e.outcome.errorCode, length: e.outcome.responseBytes }
        : undefined,
    },
    resources:
      e.tool !== undefined
        ? [{ name: e.tool, type: 'mcp_tool', uid: `${e.server ?? ''}/${e.tool}` }]
        : undefined,
    duration: e.outcome?.latencyMs,
    unmapped: {
      gatehouse_schema: e.v,
      seq: r.seq,
      hash: r.hash,
      prev_hash: r.prev,
      event_type: e.type,
      instance: e.instance,
      grant_id: e.grantId,
      owner: e.owner,
      tenant: p?.tenant,
      subject: p?.subject,
      delegation_chain: p?.actors,
      jti: p?.jti,
      auth_method: p?.authMethod,
      arguments: e.arguments,
      approval: e.approval,
      lease: e.lease,
      outcome: e.outcome,
      findings: e.findings,
      detail: e.detail,
    },
  };
  // JSON.stringify drops the undefined members, which OCSF consumers expect absent.
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}
