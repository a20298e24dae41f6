/** `storage`: where state that outlives a request is kept. */
import { z } from 'zod';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export const storageSection = z
  .object({
    kind: z
      .enum(['sqlite', 'postgres'])
      .default('sqlite')
      .describe(
        'Which store: `sqlite` (embedded, one process; the default) or `postgres` (shared by several gateway processes: cluster mode, docs/storage.md).',
      ),
    sqlite: z
      .object({
        path: z.string().optional().describe('SQLite database file; defaults to <data-dir>/gatehouse.db.'),
      })
      .strict()
      .prefault({})
      .describe('Embedded SQLite storage (the default).'),
    postgres: z
      .object({
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection URL')
          .optional()
          .describe(
            'Connection URL, e.g. `postgres://gatehouse@db.internal:5432/gatehouse?sslmode=verify-full`. Leave the password out and set PGPASSWORD in the environment (libpq variables PGHOST, PGUSER, PGPASSWORD, … fill what the URL omits). Required when kind is postgres.',
          ),
        schema: z
          .string()
          .regex(
            SCHEMA_NAME,
            'must be a lower-case SQL identifier (a-z, 0-9, _; 1-63 chars; not starting with a digit)',
          )
          .default('gatehouse')
          .describe('Schema holding the tables (created by the first migration).'),
        pool: z
          .object({
            max: z.number().int().min(1).max(1000).default(10).describe('Connections per gateway process.'),
            idleTimeoutMs: z
              .number()
              .int()
              .min(0)
              .default(30_000)
              .describe('An idle connection is closed after this long (0: never).'),
            connectTimeoutMs: z
              .number()
              .int()
              .min(1)
              .default(5_000)
              .describe('A connection attempt fails after this long.'),
          })
          .strict()
          .prefault({})
          .describe('The connection pool (node-postgres Pool).'),
        migrate: z
          .enum(['auto', 'manual'])
          .default('auto')
          .describe(
            '`auto`: apply missing migrations at start-up (under an advisory lock: replicas starting at once do not race); `manual`: refuse to start on a schema that lacks any (run `gatehouse migrate`).',
          ),
      })
      .strict()
      .prefault({})
      .describe('PostgreSQL storage (kind: postgres).'),
  })
  .strict()
  .prefault({})
  .superRefine((s, ctx) => {
    if (s.kind === 'postgres' && s.postgres.url === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['postgres', 'url'],
        message: 'required when storage.kind is postgres',
      });
    }
  })
  .describe('Where state that outlives a request is kept.');
