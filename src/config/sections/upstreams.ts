/** `upstreams`: the MCP servers behind the gateway (stdio, http, sse). */
import { z } from 'zod';
import { configValue } from './shared.ts';

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

const trustedKey = z
  .boolean()
  .default(false)
  .describe(
    "Believe this server's tool annotations (readOnlyHint, destructiveHint) in policy decisions. " +
      'Untrusted servers get the pessimistic MCP defaults whatever they claim.',
  );

/** How many sessions one stdio process serves (docs/architecture.md, "Upstream process model"). */
export const ISOLATION_MODES = ['session', 'principal', 'shared'] as const;

/**
 * The trade-off of a non-default isolation, in one line (`gatehouse check-config` prints it; undefined
 * for `session`).
 */
export function isolationNote(mode: (typeof ISOLATION_MODES)[number]): string | undefined {
  if (mode === 'session') return undefined;
  const who = mode === 'shared' ? 'every session' : 'the sessions of one agent+user';
  return (
    `one process serves ${who} (faster at many sessions; what the server keeps in memory is theirs in common): the server's ` +
    'sampling, elicitation and roots requests are refused and its log messages dropped; isolation ' +
    'session keeps a process per session (docs/architecture.md, "Upstream process model")'
  );
}

const isolationKey = z
  .enum(ISOLATION_MODES)
  .default('session')
  .describe(
    'Which sessions share one process. session (default): one process per session, the server sees one ' +
      'client, as if it ran alone (required for parity with the MCP conformance suite). principal: one ' +
      'process per agent+user (issuer, agent, user, tenant) and protocol revision, shared by that ' +
      "principal's sessions. shared: one process per protocol revision for every session (fastest at many " +
      'sessions). In principal and shared the gateway multiplexes the process: it allocates the wire ids and ' +
      "progress tokens and maps them back, so no session sees another's results, progress or cancellations; " +
      'the process is initialized once with no client capabilities (no sampling, elicitation or roots: the ' +
      "server's requests other than ping are refused with -32601), its log messages are dropped, " +
      'resources/updated reaches the sessions subscribed to the URI and list changes every session on the ' +
      'process; logging/setLevel is not forwarded. Every call is still authorized per session. Only ' +
      'upstreams without credentials or with static ones (the same value for every grant) may share ' +
      'a process. Sharing gives up 5 of the 32 MCP conformance scenarios: elicitation-sep1034-defaults, ' +
      'elicitation-sep1330-enums, tools-call-elicitation, tools-call-sampling and tools-call-with-logging ' +
      '(docs/architecture.md, "Upstream process model").',
  );

const stdioUpstream = z
  .object({
    type: z
      .literal('stdio')
      .describe('Spawn a local MCP server speaking newline-delimited JSON-RPC on stdin/stdout.'),
    command: z.string().min(1).describe('Executable to run (resolved on PATH).'),
    args: z.array(z.string()).default([]).describe('Arguments passed to the command.'),
    env: z
      .record(z.string(), configValue)
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
    trusted: trustedKey,
    isolation: isolationKey,
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
      .describe(
        'Process pool. With isolation session a process is never shared between sessions; with principal ' +
          'or shared, pool.max counts the shared processes (one per principal, or one).',
      ),
  })
  .strict();

const httpUpstream = z
  .object({
    type: z.literal('http').describe('Connect to an MCP server over Streamable HTTP.'),
    url: z.url({ protocol: /^https?$/ }).describe('The upstream MCP endpoint URL (http or https).'),
    headers: z
      .record(z.string(), configValue)
      .default({})
      .describe(
        "Headers sent with every upstream request: literal, { secret, format } or { credential, format }. The client's Authorization header is never forwarded.",
      ),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
    trusted: trustedKey,
  })
  .strict();

const sseUpstream = z
  .object({
    type: z
      .literal('sse')
      .describe('Connect to an MCP server over the legacy HTTP+SSE transport (protocol 2024-11-05).'),
    url: z.url({ protocol: /^https?$/ }).describe('The upstream SSE endpoint URL.'),
    headers: z
      .record(z.string(), configValue)
      .default({})
      .describe(
        'Headers sent with every upstream request: literal, { secret, format } or { credential, format }.',
      ),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
    trusted: trustedKey,
  })
  .strict();

export const upstreamSchema = z.discriminatedUnion('type', [stdioUpstream, httpUpstream, sseUpstream]);

export const upstreamsSection = z
  .record(
    z.string().regex(UPSTREAM_NAME, 'upstream names use letters, digits and "-" (1-32 chars)'),
    upstreamSchema,
  )
  .refine((u) => Object.keys(u).length > 0, 'at least one upstream is required')
  .refine(
    (u) => Object.values(u).filter((x) => !x.namespace).length <= 1,
    'at most one upstream may set namespace: false',
  )
  .describe('MCP servers behind the gateway, keyed by name.');
