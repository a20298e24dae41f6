/**
 * The storage contract against PostgreSQL (see test/helpers/postgres.ts): one random schema for
 * the run, dropped at the end, so parallel runs never collide.
 */
import { PostgresStorage } from '../../src/storage/postgres/index.ts';
import { dropSchemas, PG_URL, randomSchema } from '../helpers/postgres.ts';
import { storageContract } from './contract.ts';

const schema = randomSchema();
storageContract(
  'postgres',
  async () => {
    const s = new PostgresStorage({ url: PG_URL, schema, poolMax: 4 });
    await s.ready();
    return s;
  },
  () => dropSchemas(schema),
);
