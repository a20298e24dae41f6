/**
 * Metrics, trace spans and OTLP export of audit events (docs/audit.md,
 * "Metrics, traces and OTLP export").
 */
export {
  CALL_BUCKETS,
  type CallDecision,
  type CallDoneInput,
  type CallOutcome,
  createMetrics,
  type GatewayMetrics,
  type MetricsOptions,
  STAGE_BUCKETS,
  secondsSince,
} from './metrics.ts';
export {
  createOtlpAuditExporter,
  type OtlpAnyValue,
  type OtlpAuditExporter,
  type OtlpExporterOptions,
  type OtlpExporterStats,
  type OtlpKeyValue,
  type OtlpLogRecord,
  toAnyValue,
  toLogRecord,
} from './otlp.ts';
export {
  type CallSpanAttributes,
  type CallSpanOptions,
  endSpan,
  gatehouseTracer,
  type SpanOutcome,
  stageSpan,
  startCallSpan,
  TRACER_NAME,
} from './tracing.ts';
