/** `grants`: lifetime, idle timeout and ownership of grants. */
import { z } from 'zod';

export const grantsSection = z
  .object({
    maxLifetimeSec: z
      .number()
      .int()
      .positive()
      .default(8 * 3600)
      .describe('Longest a grant lives; a task grant also ends when its task token expires.'),
    idleTimeoutSec: z
      .number()
      .int()
      .positive()
      .default(30 * 60)
      .describe(
        'A grant with no traffic for this long ends (its sessions close, its upstream processes stop).',
      ),
    requireOwner: z
      .boolean()
      .default(false)
      .describe(
        'Refuse grants for agents without an owner (set true in production): every agent identity has a ' +
          'named person or team responsible for it.',
      ),
    owners: z
      .record(z.string(), z.string().min(1))
      .default({})
      .describe(
        'Owner per agent (OAuth client id), for agents registered elsewhere; pre-registered clients may set owner instead.',
      ),
  })
  .strict()
  .prefault({})
  .describe('Grants: the unit of privilege, one per session or task token (docs/policy.md).');
