/**
 * `gatehouse migrate [--status]`: brings the configured store's schema up to this build's version.
 * PostgreSQL (`storage.kind: postgres`): applies the missing migrations under the advisory lock the
 * gateway's start-up takes too, so it is safe while replicas run or start; forward only. SQLite
 * migrates whenever it opens: the verb opens it.
 */
import { openConfiguredStorage } from '../storage/open.ts';
import { PostgresStorage } from '../storage/postgres/index.ts';
import { MIGRATIONS } from '../storage/postgres/migrations.ts';
import { type CliIo, configFor, openDataDir, PROCESS_IO, parseCli, STATE_OPTIONS } from './shared.ts';

export const MIGRATE_USAGE = `  migrate [--status] [--config FILE] [--data-dir DIR]
        apply the store's missing schema migrations (PostgreSQL: under an advisory lock, safe while
        replicas run; forward only); --status only prints the schema version
`;

/** Runs `gatehouse migrate`; returns the exit code. */
export async function migrateCommand(argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  const { values } = parseCli(argv, { ...STATE_OPTIONS, status: { type: 'boolean', default: false } });
  const config = configFor(values.config);
  if (config.storage.kind === 'sqlite') {
    openDataDir(values['data-dir'], io.stderr, { create: true });
    // Opening a SQLite store applies its migrations.
    await openConfiguredStorage(config, values['data-dir']).close();
    io.stdout.write('sqlite: schema up to date (SQLite migrates whenever it opens)\n');
    return 0;
  }
  const storage = openConfiguredStorage(config, values['data-dir'], { onPoolError: () => {} });
  if (!(storage instanceof PostgresStorage)) throw new Error('unexpected store kind');
  try {
    if (values.status) {
      const v = await storage.schemaVersion();
      io.stdout.write(
        `postgres schema ${storage.schema}: version ${v}, this build needs ${MIGRATIONS.length}${
          v < MIGRATIONS.length ? ' (run gatehouse migrate)' : ''
        }\n`,
      );
      return v < MIGRATIONS.length ? 1 : 0;
    }
    const r = await storage.migrate();
    io.stdout.write(
      r.applied.length === 0
        ? `postgres schema ${storage.schema}: up to date at version ${r.to}\n`
        : `postgres schema ${storage.schema}: applied ${r.applied.join(', ')} (version ${r.from} -> ${r.to})\n`,
    );
    return 0;
  } finally {
    await storage.close();
  }
}
