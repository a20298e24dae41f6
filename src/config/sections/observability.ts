/** `observability` (traces, OTLP export of audit events) and `logging`. */
import { z } from 'zod';

export const observabilitySection = z
  .object({
    tracing: z
      .boolean()
      .default(false)
      .describe(
        'Emit OpenTelemetry spans (one per call, a child per audited stage) through @opentelemetry/api; ' +
          'register an SDK yourself (node --import). Off: no span work at all.',
      ),
    otlpLogsEndpoint: z
      .url()
      .optional()
      .describe(
        'Export every written audit event as an OpenTelemetry log record over OTLP/HTTP (JSON) to this collector URL.',
      ),
    otlpHeaders: z
      .record(z.string(), z.string())
      .optional()
      .describe('Extra headers of the OTLP export requests (e.g. an API key).'),
  })
  .strict()
  .prefault({})
  .describe('Traces and OTLP export of audit events (docs/audit.md). Metrics are always at /metrics.');

export const loggingSection = z
  .object({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Minimum log level (JSON logs on stderr).'),
  })
  .strict()
  .prefault({})
  .describe('Structured logging.');
