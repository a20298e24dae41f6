/**
 * Per-input oracles: what the gateway's answer to one probe must satisfy. Run-level oracles (crash,
 * RSS and heap, log lines, audit verify, references, audit amplification) live in run.ts.
 */
import { ERRORS } from '../../src/errors.ts';
import type { Probe } from './core.ts';
import { DEFAULT_LIMITS } from './gateway.ts';
import { header, type WireResponse, type WireResult } from './wire.ts';

/** Every oracle, in the order the summary lists them. */
export const ORACLES = {
  crash: 'the gateway process exited during the run (or not with 0 on SIGTERM)',
  hang: 'no answer (and no close) within the configured timeout + slack',
  stall: 'a partial request was held open longer than the stall bound',
  'http-5xx': 'an HTTP 5xx that docs/errors.md does not document for the situation',
  internal: "a JSON-RPC error with data.gatehouse 'internal' or code -32603",
  'audit-unavailable': 'audit_unavailable although the audit store is healthy',
  undocumented: 'an /mcp error whose code, HTTP status or JSON-RPC code is not the one in src/errors.ts',
  unanswered: 'a JSON-RPC request that got no answer (missing id, 202, or connection dropped)',
  'spurious-upstream-error': 'upstream_timeout/failed/unavailable for a request the upstream answers at once',
  'log-line': 'a gateway log line longer than the bound (client strings copied in full)',
  rss: 'gateway RSS above the bound, or grown by more than the bound',
  heap: 'gateway heap after GC grown by more than the bound (memory retained per input)',
  'audit-verify': 'gatehouse audit verify did not exit 0',
  'unwritten-reference': 'a denial quoted a data.reference that is not in the audit log',
  'audit-amplification': 'unauthenticated requests write more audit bytes than the bound',
  health: 'after the run, a well-behaved client is not served (initialize, tools/call)',
} as const;

/** An oracle's name. */
export type OracleName = keyof typeof ORACLES;

/** One oracle failure of one input. */
export interface Violation {
  oracle: OracleName;
  /** Short, stable text (deduplication key with family, label and oracle). */
  what: string;
  /** Details for the repro file. */
  detail?: string;
  /** Root cause shared by many inputs (findings are grouped on it instead of the input's shape). */
  cause?: string;
}

/** Facts collected across inputs for the run-level oracles. */
export interface Observed {
  references: { reference: string; family: string; index: number; label?: string; instance?: number }[];
  unauthenticated401: number;
}

/** Gatehouse error codes that may come with a 5xx in any situation the fuzzer creates. */
const ALWAYS_OK_5XX = new Set(['capacity_exceeded', 'starting', 'shutting_down']);
const UPSTREAM_ERRORS = new Set(['upstream_timeout', 'upstream_failed', 'upstream_unavailable']);
const OWN_ORACLE = new Set(['internal', 'audit_unavailable']);

interface RpcError {
  code: unknown;
  message: unknown;
  data?: { gatehouse?: unknown; reference?: unknown } | undefined;
}

interface RpcMessage {
  id?: unknown;
  error?: RpcError;
  result?: unknown;
  method?: unknown;
}

/** The JSON-RPC messages of a response body: JSON (one or a batch) or SSE `data:` events. */
export function messagesOf(res: WireResponse): { messages: RpcMessage[]; parsed: boolean } {
  const type = header(res, 'content-type') ?? '';
  const text = res.body.toString('utf8');
  const out: RpcMessage[] = [];
  if (type.startsWith('text/event-stream')) {
    for (const block of text.split(/\r?\n\r?\n/)) {
      const data = block
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data.trim() === '') continue;
      try {
        const v = JSON.parse(data) as unknown;
        if (typeof v === 'object' && v !== null) out.push(v as RpcMessage);
      } catch {
        return { messages: out, parsed: false };
      }
    }
    return { messages: out, parsed: true };
  }
  if (text.trim() === '') return { messages: out, parsed: true };
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v)) for (const m of v) out.push(m as RpcMessage);
    else if (typeof v === 'object' && v !== null) out.push(v as RpcMessage);
    return { messages: out, parsed: true };
  } catch {
    return { messages: out, parsed: false };
  }
}

/** Same id as JSON-RPC means it: `1` and `"1"` differ. */
function idKey(v: unknown): string {
  return `${typeof v}:${typeof v === 'string' ? v : JSON.stringify(v)}`;
}

/** Whether a response was written by Node's HTTP parser (a request it could not parse), not by the gateway. */
function fromNodeParser(res: WireResponse): boolean {
  return (
    (res.status === 400 || res.status === 431 || res.status === 505 || res.status === 501) &&
    header(res, 'content-type') === undefined &&
    res.body.length === 0
  );
}

/**
 * The gateway answers a body declared over limits.maxRequestBytes with 413 and closes the connection at
 * once (no lingering close): a client still writing that body can meet the reset (EPIPE, ECONNRESET)
 * before it reads the 413. That is the documented refusal seen from the wrong side of TCP, not a
 * request left unanswered (replaying the input shows the 413).
 */
function resetWhileOversized(probe: Probe, result: WireResult): boolean {
  const head = probe.wire.chunks[0]?.data.toString('latin1') ?? '';
  const declared = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
  return (
    declared > DEFAULT_LIMITS.maxRequestBytes &&
    result.closedByServer === true &&
    /EPIPE|ECONNRESET/.test(result.error ?? '')
  );
}

/** The method an input label starts with (labels are `<method> [mutations]`). */
function methodOf(label: string): string {
  return label.split(' ')[0] ?? label;
}

/** The oracles of one probe's answer. */
export function check(
  probe: Probe,
  result: WireResult,
  observed: Observed,
  family: string,
  index: number,
): Violation[] {
  const v: Violation[] = [];
  const ex = { ...probe.expect };
  // Node refuses request heads over 16 KiB (431) before the gateway sees them.
  const first = probe.wire.chunks[0]?.data;
  if (first) {
    const end = first.indexOf('\r\n\r\n');
    if (end < 0 || end > 16 * 1024 - 64) ex.wellFormed = false;
  }
  const expected = probe.wire.methods.length;
  if (result.timedOut) {
    const got = result.responses.filter((r) => r.complete).length;
    v.push({
      oracle: 'hang',
      what: `no complete answer within ${ex.deadlineMs} ms (${got}/${expected} responses, connection still open)`,
    });
  } else if (ex.wellFormed && result.responses.length === 0 && !resetWhileOversized(probe, result)) {
    v.push({
      oracle: 'unanswered',
      what: `connection closed without any answer after ${result.ms} ms${result.error ? ` (${result.error})` : ''}`,
    });
  }
  for (const res of result.responses) {
    if (!res.complete && !res.streaming) {
      if (ex.wellFormed && !result.timedOut) {
        v.push({
          oracle: 'unanswered',
          what: `HTTP ${res.status} answer cut short (connection closed mid-body)`,
        });
      }
      continue;
    }
    if (res.status === 401) {
      if (ex.unauthenticated) observed.unauthenticated401++;
      if (ex.mcp && !/^Bearer .*resource_metadata=/i.test(header(res, 'www-authenticate') ?? '')) {
        v.push({ oracle: 'undocumented', what: '401 without WWW-Authenticate: Bearer … resource_metadata' });
      }
    }
    if (fromNodeParser(res)) {
      if (ex.wellFormed) {
        v.push({
          oracle: 'undocumented',
          what: `HTTP ${res.status} from Node's parser for a well-formed request`,
        });
      }
      continue;
    }
    const { messages, parsed } = ex.mcp ? messagesOf(res) : { messages: [], parsed: true };
    let code5xx: string | undefined;
    if (ex.mcp) {
      if (!parsed) {
        v.push({ oracle: 'undocumented', what: `HTTP ${res.status} body is not JSON-RPC` });
      } else if (res.status >= 400) {
        const first = messages[0];
        const g = first?.error?.data?.gatehouse;
        if (messages.length !== 1 || typeof g !== 'string') {
          v.push({
            oracle: 'undocumented',
            what: `HTTP ${res.status} without a JSON-RPC error carrying data.gatehouse`,
          });
        } else {
          code5xx = g;
          const spec = (ERRORS as Record<string, { http: number; jsonrpc: number }>)[g];
          if (spec && spec.http !== res.status) {
            v.push({
              oracle: 'undocumented',
              what: `${g} answered with HTTP ${res.status}, errors.ts says ${spec.http}`,
            });
          }
        }
      }
      for (const m of messages) {
        const e = m.error;
        if (!e || typeof e !== 'object') continue;
        const g = e.data?.gatehouse;
        if (typeof e.data?.reference === 'string') {
          observed.references.push({ reference: e.data.reference, family, index });
        }
        // An upstream's own -32603 passes through unchanged (the gateway is message-level: it does not
        // rewrite what an upstream answers): not the gateway's `internal`, which always names itself.
        if (g === 'internal' || (e.code === -32603 && typeof g === 'string' && g !== 'auth_unavailable')) {
          const message = String(e.message).split('\n')[0]?.slice(0, 80) ?? '';
          v.push({
            oracle: 'internal',
            what:
              typeof g === 'string'
                ? `JSON-RPC ${String(e.code)} ${g}`
                : `upstream's -32603 passed through unchanged (no data.gatehouse): ${message}`,
            detail: `message: ${String(e.message).slice(0, 1000)}`,
            ...(typeof g === 'string'
              ? {}
              : { cause: `upstream -32603 passed through for ${methodOf(probe.label)}` }),
          });
          continue;
        }
        if (g === 'audit_unavailable') {
          v.push({ oracle: 'audit-unavailable', what: 'audit_unavailable with a healthy audit store' });
          continue;
        }
        if (typeof g === 'string') {
          const spec = (ERRORS as Record<string, { http: number; jsonrpc: number }>)[g];
          if (!spec) v.push({ oracle: 'undocumented', what: `unknown data.gatehouse code \`${g}\`` });
          else if (spec.jsonrpc !== e.code) {
            v.push({
              oracle: 'undocumented',
              what: `${g} with JSON-RPC code ${String(e.code)}, errors.ts says ${spec.jsonrpc}`,
            });
          }
          if (UPSTREAM_ERRORS.has(g) && !ex.upstreamErrorsOk) {
            v.push({
              oracle: 'spurious-upstream-error',
              what: `${g} for a request the upstream answers at once`,
              cause: `${g} for ${methodOf(probe.label)}`,
            });
          }
        }
      }
    }
    if (res.status >= 500) {
      const ok =
        code5xx !== undefined &&
        (ALWAYS_OK_5XX.has(code5xx) ||
          (ex.allow5xx ?? []).includes(code5xx) ||
          (ex.upstreamErrorsOk === true && UPSTREAM_ERRORS.has(code5xx)));
      // internal, audit_unavailable and upstream errors have their own oracle above.
      const ownOracle = code5xx !== undefined && (UPSTREAM_ERRORS.has(code5xx) || OWN_ORACLE.has(code5xx));
      if (!ok && !ownOracle) {
        v.push({ oracle: 'http-5xx', what: `HTTP ${res.status}${code5xx ? ` ${code5xx}` : ''}` });
      }
    }
    if (ex.mcp && res.status === 200 && ex.requestIds && ex.requestIds.length > 0 && parsed) {
      const answered = new Set(messages.filter((m) => 'result' in m || 'error' in m).map((m) => idKey(m.id)));
      const missing = ex.requestIds.filter((id) => !answered.has(idKey(id)));
      if (missing.length > 0 && !res.streaming) {
        v.push({
          oracle: 'unanswered',
          what: `${missing.length}/${ex.requestIds.length} request id(s) not answered`,
          detail: `missing ids: ${missing.map((m) => JSON.stringify(m)?.slice(0, 80)).join(', ')}`,
        });
      }
    }
    if (ex.mcp && res.status === 202 && ex.requestIds && ex.requestIds.length > 0) {
      v.push({ oracle: 'unanswered', what: '202 Accepted for a body that holds requests' });
    }
  }
  return v;
}

/** The request ids of a JSON-RPC body as the gateway would see them (requests only), or undefined. */
export function requestIdsOf(body: Buffer): { ids: unknown[]; notificationsOnly: boolean } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const list = Array.isArray(v) ? v : [v];
  const ids: unknown[] = [];
  for (const m of list) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return undefined;
    const r = m as Record<string, unknown>;
    if (typeof r.method === 'string' && r.id !== undefined) {
      if (typeof r.id === 'string' || (typeof r.id === 'number' && Number.isFinite(r.id))) ids.push(r.id);
    }
  }
  return { ids, notificationsOnly: ids.length === 0 };
}
