/** `limits`: size and time limits. */
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
  .prefault({})
  .describe('Size and time limits.');
