/**
 * Audit events as OpenTelemetry log records over OTLP/HTTP with JSON encoding
 * (`POST <endpoint>/v1/logs`, `ExportLogsServiceRequest`, OTLP 1.x). Written by
 * hand rather than with `@opentelemetry/exporter-logs-otlp-http`: its current
 * releases need Node >= 22.15, the last Node 20 line pulls in the protobuf
 * transformer with the trace and metrics SDKs, and its batch processor drops
 * the newest records on overflow where an audit stream wants the oldest gone.
 *
 * `export()` never blocks and never throws: events go into a bounded queue
 * (oldest dropped and counted when full) and are sent in batches by one sender
 * that retries retryable failures (network errors, 429, 502, 503, 504) with
 * capped exponential backoff and jitter, honouring `Retry-After`.
 */
import { RawJson } from '../audit/canonical.ts';
import type { AuditEvent } from '../audit/index.ts';

/** Options of {@link createOtlpAuditExporter}. */
export interface OtlpExporterOptions {
  /** Collector base URL, e.g. `http://otel-collector:4318`; `/v1/logs` is appended unless present. */
  endpoint: string;
  /** Extra request headers (e.g. an API key for a hosted collector). */
  headers?: Record<string, string>;
  /** Most records per request (default 512). */
  batchSize?: number;
  /** Longest a queued record waits before a send is started, ms (default 1000). */
  flushIntervalMs?: number;
  /** Most records queued; past it the oldest are dropped (default 10000). */
  maxQueue?: number;
  /** Per-request timeout, ms (default 10000). */
  timeoutMs?: number;
  /** First retry delay, ms (default 500); doubles per failed attempt. */
  retryInitialMs?: number;
  /** Retry delay cap, ms (default 30000). */
  retryMaxMs?: number;
  /** `service.name` resource attribute (default `gatehouse`). */
  serviceName?: string;
  /** `service.version` resource attribute, when set. */
  serviceVersion?: string;
  /** Called once when exports start failing, and once more when they recover; for logging. */
  onStatus?: (status: { ok: boolean; message: string }) => void;
}

/** Counters of an exporter, for tests and health output. */
export interface OtlpExporterStats {
  /** Records waiting (including a batch in flight). */
  queued: number;
  /** Records the collector accepted. */
  sent: number;
  /** Records dropped because the queue was full (oldest first) or the exporter was shut down. */
  dropped: number;
  /** Records lost to a non-retryable answer (e.g. 400) or rejected in a partial success. */
  failed: number;
  /** Failed attempts that were retried. */
  retries: number;
}

/** An OTLP audit exporter; create with {@link createOtlpAuditExporter}. */
export interface OtlpAuditExporter {
  /** Queues events for export; returns at once, never throws. */
  export(events: readonly AuditEvent[]): void;
  /**
   * Sends what is queued now, one attempt per batch, ignoring a pending
   * backoff; resolves when the queue is empty or an attempt failed (records
   * then stay queued for the retry loop). Never rejects.
   */
  flush(): Promise<void>;
  /** Stops the timers, makes a last flush; later exports are dropped (counted). Never rejects. */
  shutdown(): Promise<void>;
  /** Current counters. */
  stats(): OtlpExporterStats;
}

/** One OTLP `AnyValue` in JSON encoding. */
export type OtlpAnyValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: OtlpAnyValue[] } }
  | { kvlistValue: { values: OtlpKeyValue[] } };

/** One OTLP `KeyValue` in JSON encoding. */
export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

/** One OTLP `LogRecord` in JSON encoding (the fields Gatehouse sets). */
export interface OtlpLogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: OtlpAnyValue;
  eventName: string;
  attributes: OtlpKeyValue[];
}

const SEVERITY_INFO = 9;
const SEVERITY_WARN = 13;
const SCOPE_NAME = 'gatehouse.audit';
const MAX_DEPTH = 16;

/** Converts a JSON-like value to an OTLP AnyValue (integers as int64 strings, as OTLP/JSON wants). */
export function toAnyValue(v: unknown, depth = 0): OtlpAnyValue {
  // Arguments are kept as canonical text by the audit writer (serialised once).
  if (v instanceof RawJson) return toAnyValue(JSON.parse(v.json), depth);
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  }
  if (depth >= MAX_DEPTH) return { stringValue: '[too deep]' };
  if (Array.isArray(v)) return { arrayValue: { values: v.map((x) => toAnyValue(x, depth + 1)) } };
  if (v !== null && typeof v === 'object') {
    const values: OtlpKeyValue[] = [];
    for (const [key, x] of Object.entries(v)) {
      if (x !== undefined) values.push({ key, value: toAnyValue(x, depth + 1) });
    }
    return { kvlistValue: { values } };
  }
  // null and anything JSON cannot hold: an empty AnyValue is legal OTLP but not in this union.
  return { stringValue: '' };
}

function attr(out: OtlpKeyValue[], key: string, v: unknown): void {
  if (v !== undefined) out.push({ key, value: toAnyValue(v) });
}

function severityOf(e: AuditEvent): number {
  if (e.type === 'authn.failure' || e.type === 'authn.failure.summary' || e.type === 'approval.denied')
    return SEVERITY_WARN;
  if (e.decision?.effect === 'deny') return SEVERITY_WARN;
  if (e.outcome && e.outcome.status !== 'ok') return SEVERITY_WARN;
  if (e.findings?.some((f) => f.severity === 'high' || f.severity === 'critical')) return SEVERITY_WARN;
  return SEVERITY_INFO;
}

/**
 * Maps one audit event to an OTLP log record: body = event type, event name
 * `gatehouse.<type>`, Gatehouse fields as attributes (docs/audit.md).
 */
export function toLogRecord(e: AuditEvent, observedMs: number): OtlpLogRecord {
  const a: OtlpKeyValue[] = [];
  attr(a, 'gatehouse.event.id', e.id);
  attr(a, 'gatehouse.event.type', e.type);
  attr(a, 'gatehouse.schema', e.v);
  attr(a, 'gatehouse.instance', e.instance);
  attr(a, 'gatehouse.request', e.requestId);
  attr(a, 'gatehouse.grant', e.grantId);
  attr(a, 'gatehouse.session', e.sessionId);
  const p = e.principal;
  if (p) {
    attr(a, 'gatehouse.agent', p.agent);
    attr(a, 'gatehouse.user', p.user);
    attr(a, 'gatehouse.subject', p.subject);
    attr(a, 'gatehouse.tenant', p.tenant);
    attr(a, 'gatehouse.actors', p.actors);
    attr(a, 'gatehouse.jti', p.jti);
    attr(a, 'gatehouse.issuer', p.issuer);
    attr(a, 'gatehouse.auth_method', p.authMethod);
  }
  attr(a, 'gatehouse.owner', e.owner);
  attr(a, 'mcp.server', e.server);
  attr(a, 'mcp.method', e.method);
  attr(a, 'mcp.tool', e.tool);
  if (e.arguments) {
    attr(a, 'gatehouse.arguments.digest', e.arguments.digest);
    attr(a, 'gatehouse.arguments.redacted', e.arguments.redacted);
    attr(a, 'gatehouse.arguments.truncated', e.arguments.truncated);
  }
  if (e.decision) {
    attr(a, 'gatehouse.decision', e.decision.effect);
    attr(a, 'gatehouse.decision.policies', e.decision.policies);
    attr(a, 'gatehouse.decision.reason', e.decision.reason);
  }
  if (e.approval) {
    attr(a, 'gatehouse.approval.id', e.approval.id);
    attr(a, 'gatehouse.approval.approver', e.approval.approver);
    attr(a, 'gatehouse.approval.reason', e.approval.reason);
  }
  if (e.lease) {
    attr(a, 'gatehouse.lease.id', e.lease.id);
    attr(a, 'gatehouse.lease.credential', e.lease.credential);
    attr(a, 'gatehouse.lease.expires_at', e.lease.expiresAt);
  }
  if (e.outcome) {
    attr(a, 'gatehouse.outcome', e.outcome.status);
    attr(a, 'error.type', e.outcome.errorCode);
    attr(a, 'gatehouse.request_bytes', e.outcome.requestBytes);
    attr(a, 'gatehouse.response_bytes', e.outcome.responseBytes);
    if (e.outcome.latencyMs !== undefined) {
      a.push({ key: 'gatehouse.latency_ms', value: { doubleValue: e.outcome.latencyMs } });
    }
  }
  attr(a, 'gatehouse.findings', e.findings);
  attr(a, 'gatehouse.detail', e.detail);
  const severity = severityOf(e);
  return {
    timeUnixNano: msToNanos(e.time),
    observedTimeUnixNano: msToNanos(observedMs),
    severityNumber: severity,
    severityText: severity === SEVERITY_WARN ? 'WARN' : 'INFO',
    body: { stringValue: e.type },
    eventName: `gatehouse.${e.type}`,
    attributes: a,
  };
}

function msToNanos(ms: number): string {
  return (BigInt(Math.trunc(ms)) * 1_000_000n).toString();
}

/** A ring buffer: O(1) push, shift and put-back at the front. */
class Deque<T> {
  private buf: (T | undefined)[];
  private head = 0;
  length = 0;
  constructor(capacity: number) {
    this.buf = new Array<T | undefined>(capacity);
  }
  /** Appends; returns the dropped oldest item when full. */
  push(x: T): boolean {
    let dropped = false;
    if (this.length === this.buf.length) {
      this.shift();
      dropped = true;
    }
    this.buf[(this.head + this.length) % this.buf.length] = x;
    this.length++;
    return dropped;
  }
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const x = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.length--;
    return x;
  }
  /** Puts items back at the front in order; returns how many did not fit (the oldest of them). */
  unshiftAll(items: readonly T[]): number {
    const room = this.buf.length - this.length;
    const keep = Math.min(room, items.length);
    for (let i = items.length - 1; i >= items.length - keep; i--) {
      this.head = (this.head - 1 + this.buf.length) % this.buf.length;
      this.buf[this.head] = items[i];
      this.length++;
    }
    return items.length - keep;
  }
  take(n: number): T[] {
    const out: T[] = [];
    while (out.length < n && this.length > 0) {
      const x = this.shift();
      if (x !== undefined) out.push(x);
    }
    return out;
  }
}

type SendResult =
  | { ok: true; rejected: number }
  | { ok: false; retry: boolean; after?: number; message: string };

/**
 * Creates an exporter of audit events to an OTLP/HTTP collector (JSON). Throws
 * when the endpoint is not an http(s) URL or a size option is not a positive integer.
 */
export function createOtlpAuditExporter(opts: OtlpExporterOptions): OtlpAuditExporter {
  const url = logsUrl(opts.endpoint);
  const batchSize = positiveInt(opts.batchSize ?? 512, 'batchSize');
  const maxQueue = positiveInt(opts.maxQueue ?? 10_000, 'maxQueue');
  const flushIntervalMs = positiveInt(opts.flushIntervalMs ?? 1000, 'flushIntervalMs');
  const timeoutMs = positiveInt(opts.timeoutMs ?? 10_000, 'timeoutMs');
  const retryInitialMs = positiveInt(opts.retryInitialMs ?? 500, 'retryInitialMs');
  const retryMaxMs = positiveInt(opts.retryMaxMs ?? 30_000, 'retryMaxMs');
  const headers: Record<string, string> = { ...opts.headers, 'content-type': 'application/json' };
  const resource: OtlpKeyValue[] = [
    { key: 'service.name', value: { stringValue: opts.serviceName ?? 'gatehouse' } },
  ];
  if (opts.serviceVersion !== undefined) {
    resource.push({ key: 'service.version', value: { stringValue: opts.serviceVersion } });
  }

  // Records are converted on export so a caller mutating its event later changes nothing.
  const queue = new Deque<{ instance: string; record: OtlpLogRecord }>(maxQueue);
  const stats = { sent: 0, dropped: 0, failed: 0, retries: 0 };
  let inFlight = 0;
  let sending: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let backoffMs = 0;
  let healthy = true;
  let closed = false;

  const status = (ok: boolean, message: string): void => {
    if (ok === healthy) return;
    healthy = ok;
    try {
      opts.onStatus?.({ ok, message });
    } catch {
      // a logging hook must not break the exporter
    }
  };

  const schedule = (delayMs: number): void => {
    if (closed || timer !== undefined || sending !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void run(false);
    }, delayMs);
    // An exporter must not keep a stopping process alive; shutdown() makes the last flush.
    timer.unref();
  };

  const body = (batch: readonly { instance: string; record: OtlpLogRecord }[]): string => {
    const byInstance = new Map<string, OtlpLogRecord[]>();
    for (const { instance, record } of batch) {
      const list = byInstance.get(instance);
      if (list) list.push(record);
      else byInstance.set(instance, [record]);
    }
    const resourceLogs = [...byInstance].map(([instance, logRecords]) => ({
      resource: {
        attributes: [...resource, { key: 'service.instance.id', value: { stringValue: instance } }],
      },
      scopeLogs: [{ scope: { name: SCOPE_NAME }, logRecords }],
    }));
    return JSON.stringify({ resourceLogs });
  };

  const send = async (payload: string): Promise<SendResult> => {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers,
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return { ok: false, retry: true, message: `otlp export failed: ${String(err)}${cause}` };
    }
    let text = '';
    try {
      text = await res.text();
    } catch {
      // the status decides; a broken body only loses the partial-success detail
    }
    if (res.ok) return { ok: true, rejected: partialRejected(text) };
    const retry = res.status === 429 || res.status === 502 || res.status === 503 || res.status === 504;
    const after = retryAfterMs(res.headers.get('retry-after'));
    return {
      ok: false,
      retry,
      ...(after === undefined ? {} : { after }),
      message: `otlp export failed: http ${res.status}`,
    };
  };

  /** Sends batches until the queue is empty or an attempt fails. */
  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.take(batchSize);
      inFlight = batch.length;
      const r = await send(body(batch));
      inFlight = 0;
      if (r.ok) {
        const rejected = Math.min(r.rejected, batch.length);
        stats.sent += batch.length - rejected;
        stats.failed += rejected;
        backoffMs = 0;
        status(true, 'otlp export recovered');
        continue;
      }
      status(false, r.message);
      if (!r.retry) {
        stats.failed += batch.length;
        continue;
      }
      stats.retries++;
      stats.dropped += queue.unshiftAll(batch);
      backoffMs = Math.min(retryMaxMs, backoffMs === 0 ? retryInitialMs : backoffMs * 2);
      const jittered = backoffMs / 2 + Math.random() * (backoffMs / 2);
      const wait = r.after === undefined ? jittered : Math.min(retryMaxMs, Math.max(r.after, jittered));
      throw new RetryLater(wait);
    }
  };

  const run = async (now: boolean): Promise<void> => {
    if (sending !== undefined) {
      // One sender at a time: a timer run leaves the work to the running drain; a flush waits its turn.
      if (!now) return;
      while (sending !== undefined) await sending;
    }
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    let retryIn: number | undefined;
    sending = drain().catch((err: unknown) => {
      if (err instanceof RetryLater) retryIn = err.ms;
    });
    await sending;
    sending = undefined;
    if (retryIn !== undefined) schedule(retryIn);
    else if (queue.length > 0) schedule(flushIntervalMs);
  };

  return {
    export(events) {
      if (closed) {
        stats.dropped += events.length;
        return;
      }
      const observed = Date.now();
      for (const e of events) {
        let record: OtlpLogRecord;
        try {
          record = toLogRecord(e, observed);
        } catch {
          stats.failed++;
          continue;
        }
        if (queue.push({ instance: e.instance, record })) stats.dropped++;
      }
      if (queue.length >= batchSize && backoffMs === 0 && sending === undefined) {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        // Off the caller's stack: export() returns before any serialisation or I/O.
        setImmediate(() => void run(false)).unref();
      } else {
        schedule(backoffMs > 0 ? backoffMs : flushIntervalMs);
      }
    },
    flush: () => run(true),
    async shutdown() {
      if (closed) return;
      await run(true);
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      stats.dropped += queue.length;
      queue.take(queue.length);
    },
    stats: () => ({ ...stats, queued: queue.length + inFlight }),
  };
}

class RetryLater extends Error {
  constructor(readonly ms: number) {
    super('retry later');
  }
}

function logsUrl(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new Error(`otlp endpoint is not a url: ${endpoint}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new Error(`otlp endpoint must be http or https: ${endpoint}`);
  }
  const path = u.pathname.replace(/\/+$/, '');
  u.pathname = path.endsWith('/v1/logs') ? path : `${path}/v1/logs`;
  return u.toString();
}

/** `partialSuccess.rejectedLogRecords` of a 200 answer (an int64 string or number in JSON), else 0. */
function partialRejected(text: string): number {
  if (text === '') return 0;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object') return 0;
    const partial: unknown = (parsed as { partialSuccess?: unknown }).partialSuccess;
    if (partial === null || typeof partial !== 'object') return 0;
    const n = Number((partial as { rejectedLogRecords?: unknown }).rejectedLogRecords ?? 0);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** `Retry-After` as delay-seconds or an HTTP date, in ms. */
function retryAfterMs(h: string | null): number | undefined {
  if (h === null) return undefined;
  const secs = Number(h);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}
