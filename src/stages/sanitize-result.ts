import { GatehouseError } from '../errors.ts';
import type { JsonRpcMessage } from '../protocol/jsonrpc.ts';
import { isListMethod } from '../protocol/lists.ts';
import { type MessageFinding, scanMessage } from '../sanitize/index.ts';
import type { ResponseContext } from '../session/session.ts';

/** Findings listed in `_meta` (the audit event keeps up to 100; metrics count all). */
const META_FINDINGS = 50;
/** Where a flagged message carries its findings. */
export const FINDINGS_META_KEY = 'gatehouse/findings';

function metaFinding(f: MessageFinding): Record<string, unknown> {
  return { type: f.type, rule: f.rule, path: f.path, start: f.start, end: f.end, detail: f.detail };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `obj` with `_meta[FINDINGS_META_KEY]` set (copied; other `_meta` keys kept). */
function withFindings(
  obj: Record<string, unknown>,
  findings: readonly MessageFinding[],
): Record<string, unknown> {
  const meta = isRecord(obj._meta) ? obj._meta : {};
  return {
    ...obj,
    _meta: { ...meta, [FINDINGS_META_KEY]: findings.slice(0, META_FINDINGS).map(metaFinding) },
  };
}

/**
 * T18–T24: runs the result sanitisers (src/sanitize/) over every text of an upstream message to the
 * client (tool results, resource and prompt contents, errors, sampling requests, log messages) with the
 * profile configured for the tool (config `sanitize`, per server/tool globs), then applies the
 * strongest action among the findings: `flag` leaves the text and lists the findings in `_meta`
 * (`gatehouse/findings`; an error response carries them in `error.data`); `redact` also strips control
 * and invisible characters and replaces secrets and PII; `wrap` marks instruction-like text as quoted
 * data; `block` answers a response with `result_blocked` and drops any other message. Every finding is
 * counted (`gatehouse_sanitizer_findings_total{kind}`) and audited (`sanitiser.finding`).
 *
 * Taint (docs/sanitization.md "Taint"): a message from a source marked as external content
 * (`sanitize.taint.sources`), or one that reaches the client with a finding of a tainting family
 * (`sanitize.taint.findings`), adds read labels to the grant (`untrusted`, `untrusted:<server>`,
 * `finding:<family>`), which policy sees as `context.read`.
 *
 * Not scanned: the gateway's own messages, `initialize`, and list results (tool definitions are the
 * definition checks' concern). Cost: clean plain-ASCII strings under 6 characters are skipped; other
 * strings pay each enabled detector once (docs/sanitization.md gives µs per KiB).
 */
export function sanitizeResult(ctx: ResponseContext): void {
  const origin = ctx.origin;
  if (origin === undefined) return;
  if (origin.method === 'initialize' || isListMethod(origin.method)) return;
  // Taint by source (T18): results of tools marked as external content taint the grant, findings or
  // not: detection misses well-written injections, so policy must be able to assume the worst.
  if (ctx.onTaint !== undefined && ctx.sanitizer.externalSource(origin.target)) {
    ctx.onTaint(['untrusted', `untrusted:${origin.server}`], origin);
  }
  if (!ctx.sanitizer.enabled) return;
  const profile = ctx.sanitizer.profileFor(origin.target);
  const msg = ctx.msg;
  const isResponse = !('method' in msg);
  const scan = scanMessage(msg, profile, {
    ...(isResponse && origin.method === 'tools/call' && origin.tool?.outputSchema !== undefined
      ? { outputSchema: origin.tool.outputSchema }
      : {}),
    caps: ctx.sanitizer.caps,
  });
  if (scan.findings.length === 0) return;
  ctx.onFindings?.(scan.findings, scan.action, origin);
  // Taint by finding: what reaches the agent with a finding of a tainting family (a blocked message
  // never reaches it).
  if (ctx.onTaint !== undefined && scan.action !== 'block') {
    let labels: string[] | undefined;
    for (const f of scan.findings) {
      if (!ctx.sanitizer.taints(f.type)) continue;
      labels ??= ['untrusted', `untrusted:${origin.server}`];
      const l = `finding:${f.type}`;
      if (!labels.includes(l)) labels.push(l);
    }
    if (labels !== undefined) ctx.onTaint(labels, origin);
  }
  ctx.log.warn(
    {
      server: origin.server,
      method: origin.method,
      target: origin.target,
      action: scan.action,
      findings: [...new Set(scan.findings.map((f) => `${f.type}/${f.rule}`))],
    },
    'result sanitiser findings',
  );
  if (scan.action === 'block') {
    const id = 'id' in msg && isResponse ? (msg.id ?? null) : null;
    if (id === null) {
      ctx.json = ''; // a notification or server-to-client request is dropped
      return;
    }
    const err = new GatehouseError('result_blocked', undefined, {
      data: { findings: [...new Set(scan.findings.map((f) => f.type))] },
    });
    ctx.msg = { jsonrpc: '2.0', id, error: err.toJsonRpcError() } as JsonRpcMessage;
    ctx.json = JSON.stringify(ctx.msg);
    return;
  }
  const out: Record<string, unknown> = { ...(scan.message as unknown as Record<string, unknown>) };
  if (isRecord(out.result)) out.result = withFindings(out.result, scan.findings);
  else if (isRecord(out.error)) {
    const data = isRecord(out.error.data) ? out.error.data : {};
    out.error = {
      ...out.error,
      data: { ...data, [FINDINGS_META_KEY]: scan.findings.slice(0, META_FINDINGS).map(metaFinding) },
    };
  } else if (isRecord(out.params)) out.params = withFindings(out.params, scan.findings);
  ctx.msg = out as unknown as JsonRpcMessage;
  ctx.json = JSON.stringify(out);
}
