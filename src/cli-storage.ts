/** Opening the gateway's store from an operator command (grants, audit, policy). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile, parseConfig } from './config/load.ts';
import type { GatehouseConfig } from './config/schema.ts';
import { SqliteStorage } from './storage/sqlite/index.ts';

/** The config named by --config, else the defaults (enough to find the store in --data-dir). */
export function configFor(file: string | undefined): GatehouseConfig {
  if (file) return loadConfigFile(file);
  return parseConfig({ upstreams: { demo: { type: 'http', url: 'http://127.0.0.1/unused' } } });
}

/** The existing store; opening a missing one would create it, so a typo in --data-dir is an error. */
export function openExistingStorage(config: GatehouseConfig, dataDir: string): SqliteStorage {
  const path = config.storage.sqlite.path ?? join(dataDir, 'gatehouse.db');
  if (path !== ':memory:' && !existsSync(path)) throw new Error(`no database at ${path}`);
  return new SqliteStorage(path);
}

/** Writes rows as left-aligned columns (the first row is the header). */
export function printTable(rows: string[][]): void {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
}

/** A duration for humans: 45s, 12m, 3h. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
