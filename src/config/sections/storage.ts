/** `storage`: where state that outlives a request is kept. */
import { z } from 'zod';

export const storageSection = z
  .object({
    sqlite: z
      .object({
        path: z.string().optional().describe('SQLite database file; defaults to <data-dir>/gatehouse.db.'),
      })
      .strict()
      .prefault({})
      .describe('Embedded SQLite storage (the default).'),
  })
  .strict()
  .prefault({})
  .describe('Where state that outlives a request is kept.');
