/**
 * `limits`: every size, time and count limit in one place (T30, T31). Each is enforced once, at the
 * edge, before the value reaches policy, audit, logging or an upstream; docs/config.md lists them.
 */
import { z } from 'zod';

export const limitsSection = z
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
    initializeTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe('Time an upstream has to answer initialize (a cold stdio process may need seconds).'),
    maxCallMs: z
      .number()
      .int()
      .positive()
      .default(10 * 60_000)
      .describe(
        'Longest a call may run in total, however much progress it reports (an endless stream is cut).',
      ),
    sessionIdleTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(30 * 60_000)
      .describe(
        'A session with no client traffic for this long is closed and its upstream processes stopped.',
      ),
    maxJsonDepth: z
      .number()
      .int()
      .min(8)
      .max(1000)
      .default(64)
      .describe(
        'Deepest nesting of arrays and objects accepted in a JSON-RPC message (deeper: invalid_request, before anything else reads it).',
      ),
    maxStringLength: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024)
      .describe('Longest string value (in UTF-16 code units) accepted anywhere in a JSON-RPC message.'),
    maxNameLength: z
      .number()
      .int()
      .min(64)
      .default(1024)
      .describe(
        'Longest identifier accepted from a client: object keys, request ids, method, tool and prompt names, resource URIs, progress tokens, cursors.',
      ),
    maxCollectionSize: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe('Most elements in one JSON array or members in one JSON object of a message.'),
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .default(16 * 1024)
      .describe('Largest request head (request line and headers) in bytes; larger: HTTP 431.'),
    headersTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe(
        'Time a client has to send the complete request head, on every route (slow headers: the connection is closed with HTTP 408).',
      ),
    bodyTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe(
        'Time a client has to send a complete request, body included, on every route (/mcp, the authorization server, /connect): HTTP 408. Streaming responses are not limited by it.',
      ),
    keepAliveTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(65_000)
      .describe('An idle keep-alive connection is closed after this long.'),
    maxConnectionsPerAddress: z
      .number()
      .int()
      .positive()
      .default(1024)
      .describe(
        'Open TCP connections per client address; more are answered 503 and closed. Behind a reverse proxy every client shares its address.',
      ),
    maxCallsInFlightPerGrant: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe(
        'Requests one grant may have in flight at once, across its sessions; more: capacity_exceeded.',
      ),
    maxSessions: z.number().int().positive().default(1000).describe('Maximum concurrent sessions.'),
    maxSessionsPerUpstream: z
      .number()
      .int()
      .positive()
      .default(1000)
      .describe(
        'Maximum sessions one upstream serves at a time (each holds an upstream MCP session; on an HTTP upstream that may push messages, also one long-lived GET stream; on a stdio upstream, also a process, capped further by pool.max). Beyond it, initialize leaves that upstream out of the new session, and answers capacity_exceeded when no upstream has room.',
      ),
    drainTimeoutMs: z
      .number()
      .int()
      .nonnegative()
      .default(10_000)
      .describe('On SIGTERM, how long in-flight calls may take to finish before they are cancelled.'),
  })
  .strict()
  .superRefine((l, ctx) => {
    // Node refuses a head timeout longer than the whole-request timeout.
    if (l.headersTimeoutMs > l.bodyTimeoutMs)
      ctx.addIssue({
        code: 'custom',
        path: ['headersTimeoutMs'],
        message: `must not exceed limits.bodyTimeoutMs (${l.bodyTimeoutMs})`,
      });
  })
  .prefault({})
  .describe('Size and time limits.');
