/** Tool-definition pins on SQLite (table `definitions`, migration 9). */
import { type DefinitionRow, definitionValues, toDefinitions } from '../rows.ts';
import type { DefinitionKey, DefinitionRecord, DefinitionRepo, DefinitionStatus } from '../types.ts';
import { sqliteRepo } from './database.ts';

type Key = [server: string, kind: string, name: string];
type HashKey = [server: string, kind: string, name: string, hash: string];

const Base = sqliteRepo((db) => {
  const insert = db.prepare(
    `INSERT INTO definitions (server, kind, name, hash, definition, status, findings, first_seen, updated_at, decided_by)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const exists = db.prepare<HashKey, { n: number }>(
    'SELECT 1 AS n FROM definitions WHERE server = ? AND kind = ? AND name = ? AND hash = ?',
  );
  const hasPin = db.prepare<Key, { n: number }>(
    `SELECT 1 AS n FROM definitions WHERE server = ? AND kind = ? AND name = ? AND status = 'pinned'`,
  );
  const dropPending = db.prepare<Key>(
    `DELETE FROM definitions WHERE server = ? AND kind = ? AND name = ? AND status = 'pending'`,
  );
  const statusOf = db.prepare<HashKey, { status: string }>(
    'SELECT status FROM definitions WHERE server = ? AND kind = ? AND name = ? AND hash = ?',
  );
  const supersede = db.prepare<[number, ...Key]>(
    `UPDATE definitions SET status = 'superseded', updated_at = ?
     WHERE server = ? AND kind = ? AND name = ? AND status = 'pinned'`,
  );
  const decide = db.prepare<[string, number, string | null, ...HashKey]>(
    `UPDATE definitions SET status = ?, updated_at = ?, decided_by = ?
     WHERE server = ? AND kind = ? AND name = ? AND hash = ?`,
  );
  const write = (r: DefinitionRecord): void => void insert.run(...definitionValues(r));
  return {
    pin: db.transaction((r: DefinitionRecord): boolean => {
      if (hasPin.get(r.server, r.kind, r.name) || exists.get(r.server, r.kind, r.name, r.hash)) return false;
      write({ ...r, status: 'pinned' });
      return true;
    }),
    propose: db.transaction((r: DefinitionRecord): boolean => {
      const was = statusOf.get(r.server, r.kind, r.name, r.hash)?.status;
      // A pin replaced earlier that is offered again waits for review like any other definition.
      if (was !== undefined && was !== 'superseded') return false;
      dropPending.run(r.server, r.kind, r.name);
      if (was === 'superseded') decide.run('pending', r.updatedAt, null, r.server, r.kind, r.name, r.hash);
      else write({ ...r, status: 'pending' });
      return true;
    }),
    approve: db.transaction((k: HashKey, by: string, at: number): boolean => {
      const s = statusOf.get(...k)?.status;
      if (s !== 'pending' && s !== 'rejected') return false;
      supersede.run(at, k[0], k[1], k[2]);
      decide.run('pinned', at, by, ...k);
      return true;
    }),
    reject: db.transaction((k: HashKey, by: string, at: number): boolean => {
      if (statusOf.get(...k)?.status !== 'pending') return false;
      decide.run('rejected', at, by, ...k);
      return true;
    }),
    list: db.prepare<[string | null, string | null, string | null, string | null], DefinitionRow>(
      `SELECT * FROM definitions WHERE status != 'superseded'
       AND (? IS NULL OR server = ?) AND (? IS NULL OR status = ?)
       ORDER BY server, kind, name, updated_at`,
    ),
    changedSince: db.prepare<[number], DefinitionRow>(
      'SELECT * FROM definitions WHERE updated_at >= ? ORDER BY updated_at',
    ),
  };
});

/** {@link DefinitionRepo} on the `definitions` table. */
export class SqliteDefinitionRepo extends Base implements DefinitionRepo {
  pin(rec: DefinitionRecord): Promise<boolean> {
    return this.run(() => this.sql.pin(rec));
  }

  propose(rec: DefinitionRecord): Promise<boolean> {
    return this.run(() => this.sql.propose(rec));
  }

  approve({ server, kind, name, hash }: DefinitionKey, by: string, at: number): Promise<boolean> {
    return this.run(() => this.sql.approve([server, kind, name, hash], by, at));
  }

  reject({ server, kind, name, hash }: DefinitionKey, by: string, at: number): Promise<boolean> {
    return this.run(() => this.sql.reject([server, kind, name, hash], by, at));
  }

  list(filter: { server?: string; status?: DefinitionStatus } = {}): Promise<DefinitionRecord[]> {
    const server = filter.server ?? null;
    const status = filter.status ?? null;
    return this.run(() => toDefinitions(this.sql.list.all(server, server, status, status)));
  }

  changedSince(at: number): Promise<DefinitionRecord[]> {
    return this.run(() => toDefinitions(this.sql.changedSince.all(at)));
  }
}
