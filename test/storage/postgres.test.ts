/**
 * The storage contract against PostgreSQL (the server on 127.0.0.1:5432, or GATEHOUSE_TEST_PG_URL):
 * every run uses a schema of its own, random, dropped at the end, so parallel runs never collide.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStorage } from '../../src/storage/postgres/index.ts';
import { storageContract } from './contract.ts';

export const PG_URL = process.env['GATEHOUSE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const schema = `gh_test_${randomBytes(6).toString('hex')}`;
storageContract(
  'postgres',
  async () => {
    const s = new PostgresStorage({ url: PG_URL, schema, poolMax: 4 });
    await s.ready();
    return s;
  },
  async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await c.end();
  },
);
