/** `audit`: the tamper-evident audit log. */
import { z } from 'zod';

export const auditSection = z
  .object({
    failClosedForReads: z
      .boolean()
      .default(false)
      .describe(
        'When the audit store cannot write, refuse reads too (resources/read, prompts/get, completion). ' +
          'Tool calls are always refused (fail closed); lists are served either way.',
      ),
    synchronous: z
      .enum(['normal', 'full'])
      .default('normal')
      .describe(
        'When a record counts as written. normal: handed to the OS with write() before the call is ' +
          'forwarded (survives a gateway crash or kill -9, not power loss or an OS crash); full: also ' +
          'fdatasync-ed, once per group of records (survives power loss; slower). Both fsync before each checkpoint. ' +
          'On PostgreSQL (storage.kind postgres) it sets synchronous_commit for the store: normal: off (a commit ' +
          'survives a crash of any gateway process, the last ones can be lost if the database server itself ' +
          'crashes); full: on (every commit waits for the WAL flush).',
      ),
    segmentBytes: z
      .number()
      .int()
      .min(1)
      .default(16 * 1024 * 1024)
      .describe('Start a new audit segment file (data-dir/audit/) once the open one is this large.'),
    checkpointEvery: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Write a signed checkpoint at least every N records.'),
    checkpointIntervalSec: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe('... and at least this often while records arrive (0 disables the timer).'),
    anonymousFailures: z
      .object({
        windowSec: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(60)
          .describe('Length of a counting window in seconds.'),
        samples: z
          .number()
          .int()
          .min(0)
          .max(100)
          .default(5)
          .describe(
            'Requests sampled per window and reason: address, User-Agent (cut to 128 characters), ' +
              "hashes of the token's unverified iss and kid (never the token).",
          ),
      })
      .strict()
      .prefault({})
      .describe(
        'Refusals without a principal (401 no or invalid token, 503 keys unavailable) are not one audit ' +
          'record each (anyone can send them at any rate): they are counted per window and reason and ' +
          'written as one authn.failure.summary record per reason and window. Authenticated refusals ' +
          '(insufficient_scope) keep their own authn.failure records.',
      ),
    retention: z
      .object({
        maxAgeDays: z.number().positive().optional().describe('Delete records older than this many days.'),
        maxRecords: z.number().int().positive().optional().describe('Keep at most this many records.'),
      })
      .strict()
      .prefault({})
      .describe('Pruning, hourly: a signed checkpoint is written first, so what remains still verifies.'),
  })
  .strict()
  .prefault({})
  .describe('The tamper-evident audit log (docs/audit.md).');
