/**
 * PostgreSQL for tests: the server this machine runs (127.0.0.1:5432, trust auth, user postgres) or
 * GATEHOUSE_TEST_PG_URL. Every test file takes schemas of its own, random, and drops them at the end,
 * so runs in parallel never see each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A schema name no other run uses. */
export function randomSchema(): string {
  return `gh_test_${randomBytes(6).toString('hex')}`;
}

/** Runs one statement on a connection of its own. */
export async function pgQuery<R extends pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}

/** Drops the schemas (and everything in them). */
export async function dropSchemas(...schemas: string[]): Promise<void> {
  for (const s of schemas) await pgQuery(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(s)} CASCADE`);
}
