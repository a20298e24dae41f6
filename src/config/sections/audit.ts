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
          'fdatasync-ed, once per group of records (survives power loss; slower). Both fsync before each checkpoint.',
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
