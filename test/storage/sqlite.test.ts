/** The storage contract against SQLite: a database file (WAL) reopened by every case, and `:memory:`. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { storageContract } from './contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sqlite-'));
storageContract(
  'sqlite (file, WAL)',
  async () => new SqliteStorage(join(dir, 'contract.db')),
  async () => rmSync(dir, { recursive: true, force: true }),
);
storageContract('sqlite (memory)', async () => new SqliteStorage(':memory:'));
