/**
 * Trace spans over `@opentelemetry/api` only. Gatehouse registers no SDK, so
 * these helpers are no-ops (non-recording spans, no attribute work) unless an
 * operator registers a tracer provider, e.g. with `node --import` of their own
 * OpenTelemetry setup. See docs/audit.md, "Metrics, traces and OTLP export".
 */
import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';

/** The instrumentation scope name of Gatehouse spans. */
export const TRACER_NAME = 'gatehouse';

/** Correlation fields of a call span; all optional, undefined ones are left out. */
export interface CallSpanAttributes {
  /** OAuth client id of the agent (`gatehouse.agent`). */
  agent?: string | undefined;
  /** End user (`gatehouse.user`). */
  user?: string | undefined;
  /** Tenant (`gatehouse.tenant`). */
  tenant?: string | undefined;
  /** Gateway session id (`gatehouse.session`). */
  session?: string | undefined;
  /** Grant id (`gatehouse.grant`). */
  grant?: string | undefined;
  /** JSON-RPC method, e.g. `tools/call` (`mcp.method`). */
  method?: string | undefined;
  /** Tool name as the upstream knows it (`mcp.tool`). */
  tool?: string | undefined;
  /** Upstream name (`mcp.server`). */
  server?: string | undefined;
}

/** Options of {@link startCallSpan}. */
export interface CallSpanOptions {
  /** Parent context; defaults to the active context. */
  parent?: Context;
  /** Span kind; defaults to SERVER (the gateway serves the agent's request). */
  kind?: SpanKind;
  /** Start time, epoch ms (default now). */
  startTime?: number;
}

/** How a span ended: `rejected` is a refusal by the gateway (not an error status). */
export type SpanOutcome = 'ok' | 'error' | 'rejected';

/** Returned when nothing records, so disabled tracing allocates no spans. */
const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

let cachedProvider: TracerProvider | undefined;
let cachedTracer: Tracer | undefined;

/**
 * The Gatehouse tracer of the current global provider. The proxy provider of
 * the API stays the same object when an SDK registers later, and its tracer
 * picks the SDK up, so this caches per provider object.
 */
export function gatehouseTracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (provider !== cachedProvider || cachedTracer === undefined) {
    cachedProvider = provider;
    cachedTracer = provider.getTracer(TRACER_NAME);
  }
  return cachedTracer;
}

const ATTRIBUTE_KEYS: readonly (readonly [keyof CallSpanAttributes, string])[] = [
  ['agent', 'gatehouse.agent'],
  ['user', 'gatehouse.user'],
  ['tenant', 'gatehouse.tenant'],
  ['session', 'gatehouse.session'],
  ['grant', 'gatehouse.grant'],
  ['method', 'mcp.method'],
  ['tool', 'mcp.tool'],
  ['server', 'mcp.server'],
];

/**
 * Starts the span of one call (one JSON-RPC request) named `name` (keep it low
 * in cardinality, e.g. the method) with the Gatehouse correlation attributes.
 * Returns a non-recording span when no SDK is registered.
 */
export function startCallSpan(name: string, attrs: CallSpanAttributes, opts: CallSpanOptions = {}): Span {
  const tracer = gatehouseTracer();
  const span = tracer.startSpan(
    name,
    {
      kind: opts.kind ?? SpanKind.SERVER,
      ...(opts.startTime !== undefined ? { startTime: opts.startTime } : {}),
    },
    opts.parent ?? context.active(),
  );
  if (!span.isRecording()) return span;
  const attributes: Attributes = {};
  for (const [field, key] of ATTRIBUTE_KEYS) {
    const v = attrs[field];
    if (v !== undefined) attributes[key] = v;
  }
  span.setAttributes(attributes);
  return span;
}

/** A finished child span of `parent` for a stage that already ran (times in epoch ms). */
export function pastStageSpan(parent: Span, stage: string, start: number, end: number): void {
  if (!parent.isRecording()) return;
  gatehouseTracer()
    .startSpan(
      `stage ${stage}`,
      { kind: SpanKind.INTERNAL, attributes: { 'gatehouse.stage': stage }, startTime: start },
      trace.setSpan(context.active(), parent),
    )
    .end(end);
}

/**
 * Starts a child span of `parent` for one pipeline stage (`gatehouse.stage`
 * attribute). When `parent` does not record, returns a shared no-op span.
 */
export function stageSpan(parent: Span, stage: string): Span {
  if (!parent.isRecording()) return NOOP_SPAN;
  return gatehouseTracer().startSpan(
    `stage ${stage}`,
    { kind: SpanKind.INTERNAL, attributes: { 'gatehouse.stage': stage } },
    trace.setSpan(context.active(), parent),
  );
}

/**
 * Ends `span` with `gatehouse.outcome`; `error` also sets an ERROR status
 * (with `errorCode` as its message and `error.type`), `rejected` sets
 * `error.type` only: a refusal is the gateway working, not failing.
 */
export function endSpan(span: Span, outcome: SpanOutcome, errorCode?: string): void {
  if (span.isRecording()) {
    span.setAttribute('gatehouse.outcome', outcome);
    if (errorCode !== undefined) span.setAttribute('error.type', errorCode);
    if (outcome === 'error') {
      span.setStatus(
        errorCode === undefined
          ? { code: SpanStatusCode.ERROR }
          : { code: SpanStatusCode.ERROR, message: errorCode },
      );
    }
  }
  span.end();
}
