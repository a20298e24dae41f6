/** `pinning`: tool-definition pinning (docs/sanitization.md, "Tool-definition pinning"; THREATS T13, T14). */
import { z } from 'zod';

const newTools = z
  .enum(['trust', 'quarantine'])
  .describe(
    'A tool (or server instructions) never seen before: trust (pin it on first use) or quarantine (a ' +
      'tool is hidden and refused, instructions are withheld, until `gatehouse tools approve`).',
  );

export const pinningSection = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'Pin every upstream tool definition (SHA-256 of its canonical JSON) and quarantine changed ones ' +
          'until an admin approves them. Off: definitions are neither recorded nor checked.',
      ),
    newTools: newTools
      .default('quarantine')
      .describe(
        'For every upstream without its own setting: quarantine (default: a never-seen tool waits for ' +
          '`gatehouse tools approve`) or trust (pin a never-seen tool on first use; a later change is still ' +
          'quarantined; the demo config of `gatehouse start` uses it).',
      ),
    upstreams: z
      .record(z.string(), z.object({ newTools }).strict())
      .default({})
      .describe('Per upstream (by name): newTools overrides the global setting.'),
    scan: z
      .boolean()
      .default(true)
      .describe(
        'Scan definitions when first seen or changed (the detectors of `gatehouse scan --kind definition`); ' +
          'findings are stored with the pending entry and audited.',
      ),
  })
  .strict()
  .prefault({})
  .describe(
    'Tool-definition pinning: rug pulls (a definition changed after it was trusted) are hidden and refused until approved.',
  );
