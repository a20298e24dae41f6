/**
 * Opening the store a config names (`storage.kind`): the embedded SQLite store or the PostgreSQL
 * store of cluster mode. The one place that picks a backend; the gateway and the CLI verbs use it.
 */
import { join } from 'node:path';
import type { GatehouseConfig } from '../config/schema.ts';
import { PostgresStorage } from './postgres/index.ts';
import { type SqliteOptions, SqliteStorage } from './sqlite/index.ts';
import type { Storage } from './types.ts';

/** What opening a store may add to the config: SQLite's file options, PostgreSQL's pool error sink and chain. */
export interface OpenStorageOptions {
  sqlite?: SqliteOptions;
  /** Errors of idle PostgreSQL connections (logged by the caller). */
  onPoolError?: (err: Error) => void;
  /** The audit chain a PostgreSQL store appends to (default `main`). */
  auditChain?: string;
}

/** The SQLite database file for this config and data dir. */
export function sqlitePath(config: GatehouseConfig, dataDir: string): string {
  return config.storage.sqlite.path ?? join(dataDir, 'gatehouse.db');
}

/** Opens the configured store. A PostgreSQL store connects on first use: await {@link storageReady} before serving. */
export function openConfiguredStorage(
  config: GatehouseConfig,
  dataDir: string,
  opts: OpenStorageOptions = {},
): Storage {
  const s = config.storage;
  if (s.kind === 'postgres') {
    const pg = s.postgres;
    // The schema refused a postgres store without a url; this guards the type only.
    if (pg.url === undefined)
      throw new Error('storage.postgres.url is required when storage.kind is postgres');
    return new PostgresStorage({
      url: pg.url,
      schema: pg.schema,
      poolMax: pg.pool.max,
      idleTimeoutMs: pg.pool.idleTimeoutMs,
      connectTimeoutMs: pg.pool.connectTimeoutMs,
      migrate: pg.migrate,
      // The durability the operator chose for the audit log, as SQLite applies it to every commit.
      synchronousCommit: config.audit.synchronous === 'full' ? 'on' : 'off',
      ...(opts.onPoolError ? { onPoolError: opts.onPoolError } : {}),
      ...(opts.auditChain !== undefined ? { auditChain: opts.auditChain } : {}),
    });
  }
  return new SqliteStorage(sqlitePath(config, dataDir), opts.sqlite ?? {});
}

/** Resolves once the store can serve (PostgreSQL: connected, schema migrated or checked); throws StoreError otherwise. */
export async function storageReady(storage: Storage): Promise<void> {
  if (storage instanceof PostgresStorage) await storage.ready();
}

/** What /readyz and `check-config` report about the store. */
export interface StoreHealth {
  kind: 'sqlite' | 'postgres';
  ok: boolean;
  /** Why not, when not ok (the driver's message; never the URL). */
  error?: string;
}

/** A round trip to the store's server (PostgreSQL); an open SQLite store is always ready. */
export async function storageHealth(storage: Storage): Promise<StoreHealth> {
  if (!(storage instanceof PostgresStorage)) return { kind: 'sqlite', ok: true };
  try {
    await storage.ping();
    return { kind: 'postgres', ok: true };
  } catch (err) {
    return { kind: 'postgres', ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}
