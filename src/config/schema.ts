/**
 * The one configuration schema. Every key is documented here with
 * `.describe()`; `docs/config.md` is generated from this file
 * (`npm run docs`) and a test fails when it drifts. Objects are strict:
 * unknown keys are errors, so a typo never silently falls back to a default.
 */
import { z } from 'zod';

/** Upstream server names become tool-name prefixes (`<name>__<tool>`), so they use a narrow charset. */
export const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;

const namespaceKey = z
  .boolean()
  .default(true)
  .describe(
    'Prefix the names of this server\'s tools, prompts, resources and resource templates with "<name>__". ' +
      'At most one upstream may set false; its names are exposed unchanged.',
  );

const timeoutKey = z
  .number()
  .int()
  .positive()
  .optional()
  .describe('Per-call timeout for this upstream in milliseconds; defaults to limits.callTimeoutMs.');

const stdioUpstream = z
  .object({
    type: z
      .literal('stdio')
      .describe('Spawn a local MCP server speaking newline-delimited JSON-RPC on stdin/stdout.'),
    command: z.string().min(1).describe('Executable to run (resolved on PATH).'),
    args: z.array(z.string()).default([]).describe('Arguments passed to the command.'),
    env: z
      .record(z.string(), z.string())
      .default({})
      .describe(
        "Extra environment variables for the process. The gateway's own environment is not inherited, except PATH, HOME, LOGNAME, USER, SHELL, TERM, LANG and TMPDIR.",
      ),
    cwd: z
      .string()
      .optional()
      .describe('Working directory of the process; defaults to the gateway working directory.'),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
    pool: z
      .object({
        warm: z
          .number()
          .int()
          .min(0)
          .max(16)
          .default(1)
          .describe(
            'Processes spawned ahead of time, not yet assigned to a session, so a new session does not wait for a cold start.',
          ),
        max: z
          .number()
          .int()
          .min(1)
          .default(64)
          .describe(
            'Maximum live processes for this upstream (assigned plus warm). Sessions beyond it are refused with capacity_exceeded.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Process pool. A process is never shared between sessions.'),
  })
  .strict();

const httpUpstream = z
  .object({
    type: z.literal('http').describe('Connect to an MCP server over Streamable HTTP.'),
    url: z.url({ protocol: /^https?$/ }).describe('The upstream MCP endpoint URL (http or https).'),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe(
        "Static headers sent with every upstream request. The client's Authorization header is never forwarded.",
      ),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
  })
  .strict();

const sseUpstream = z
  .object({
    type: z
      .literal('sse')
      .describe('Connect to an MCP server over the legacy HTTP+SSE transport (protocol 2024-11-05).'),
    url: z.url({ protocol: /^https?$/ }).describe('The upstream SSE endpoint URL.'),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('Static headers sent with every upstream request.'),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
  })
  .strict();

export const upstreamSchema = z.discriminatedUnion('type', [stdioUpstream, httpUpstream, sseUpstream]);

export const configSchema = z
  .object({
    server: z
      .object({
        host: z
          .string()
          .default('127.0.0.1')
          .describe(
            'Address to bind. Loopback by default; binding elsewhere exposes the gateway to the network.',
          ),
        port: z.number().int().min(0).max(65535).default(8080).describe('TCP port; 0 picks a free port.'),
        publicUrl: z
          .url({ protocol: /^https?$/ })
          .optional()
          .describe(
            'External base URL when the gateway sits behind a proxy (e.g. https://mcp.example.com). Its host is allowed in Host and its origin in Origin.',
          ),
        allowedOrigins: z
          .array(z.string())
          .default([])
          .describe(
            'Extra browser origins allowed to call /mcp (exact match, e.g. https://app.example.com). Requests without Origin are allowed.',
          ),
        allowedHosts: z
          .array(z.string())
          .default([])
          .describe(
            'Extra Host header values accepted (DNS-rebinding protection). Loopback names and the bind address are always accepted.',
          ),
      })
      .strict()
      .prefault({})
      .describe('The front HTTP listener.'),
    limits: z
      .object({
        maxRequestBytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024)
          .describe('Largest accepted request body in bytes.'),
        maxResultBytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1024 * 1024)
          .describe(
            'Largest upstream message (result or notification) in bytes; larger results become result_too_large.',
          ),
        callTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(60_000)
          .describe('Time an upstream has to answer a request; progress notifications restart the clock.'),
        sessionIdleTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(30 * 60_000)
          .describe(
            'A session with no client traffic for this long is closed and its upstream processes stopped.',
          ),
        maxSessions: z.number().int().positive().default(1000).describe('Maximum concurrent sessions.'),
        drainTimeoutMs: z
          .number()
          .int()
          .nonnegative()
          .default(10_000)
          .describe('On SIGTERM, how long in-flight calls may take to finish before they are cancelled.'),
      })
      .strict()
      .prefault({})
      .describe('Size and time limits.'),
    upstreams: z
      .record(
        z.string().regex(UPSTREAM_NAME, 'upstream names use letters, digits and "-" (1-32 chars)'),
        upstreamSchema,
      )
      .refine((u) => Object.keys(u).length > 0, 'at least one upstream is required')
      .refine(
        (u) => Object.values(u).filter((x) => !x.namespace).length <= 1,
        'at most one upstream may set namespace: false',
      )
      .describe('MCP servers behind the gateway, keyed by name.'),
    storage: z
      .object({
        sqlite: z
          .object({
            path: z
              .string()
              .optional()
              .describe('SQLite database file; defaults to <data-dir>/gatehouse.db.'),
          })
          .strict()
          .prefault({})
          .describe('Embedded SQLite storage (the default).'),
      })
      .strict()
      .prefault({})
      .describe('Where state that outlives a request is kept.'),
    logging: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .describe('Minimum log level (JSON logs on stderr).'),
      })
      .strict()
      .prefault({})
      .describe('Structured logging.'),
  })
  .strict();

/** Validated configuration with every default applied. */
export type GatehouseConfig = z.output<typeof configSchema>;
/** Configuration as written by a user (defaults optional). */
export type GatehouseConfigInput = z.input<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type StdioUpstreamConfig = Extract<UpstreamConfig, { type: 'stdio' }>;
export type HttpUpstreamConfig = Extract<UpstreamConfig, { type: 'http' }>;
export type SseUpstreamConfig = Extract<UpstreamConfig, { type: 'sse' }>;
