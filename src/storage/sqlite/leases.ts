/** Credential leases and kill switches on SQLite (tables `leases` and `credential_blocks`). */
import { type LeaseRow, leaseValues, toLiveLease } from '../rows.ts';
import type { CredentialBlock, LeaseRecord, LeaseRepo, LeaseSelector } from '../types.ts';
import { sqliteRepo } from './database.ts';
import { prepareEnd } from './ending.ts';

const Base = sqliteRepo((db) => ({
  insert: db.prepare(
    `INSERT INTO leases (id, grant_id, service, credential, kind, agent, user, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ),
  end: prepareEnd(db, 'leases', {
    id: 'id',
    grant: 'grant_id',
    service: 'service',
    agent: 'agent',
    user: 'user',
    secret: 'credential',
  }),
  endedSince: db.prepare<[number], { id: string; endReason: string }>(
    'SELECT id, end_reason AS endReason FROM leases WHERE ended_at >= ? ORDER BY ended_at',
  ),
  listLive: db.prepare<[number], LeaseRow>(
    'SELECT * FROM leases WHERE ended_at IS NULL AND expires_at > ? ORDER BY created_at',
  ),
  block: db.prepare(
    'INSERT OR REPLACE INTO credential_blocks (kind, name, reason, created_at) VALUES (?, ?, ?, ?)',
  ),
  unblock: db.prepare('DELETE FROM credential_blocks WHERE kind = ? AND name = ?'),
  blocks: db.prepare<[], CredentialBlock>(
    'SELECT kind, name, reason, created_at AS createdAt FROM credential_blocks ORDER BY created_at',
  ),
}));

/** {@link LeaseRepo} on the `leases` and `credential_blocks` tables. */
export class SqliteLeaseRepo extends Base implements LeaseRepo {
  insert(l: LeaseRecord): Promise<void> {
    return this.run(() => void this.sql.insert.run(...leaseValues(l)));
  }

  end(selector: LeaseSelector, reason: string, at: number): Promise<string[]> {
    return this.run(() => this.sql.end(selector, reason, at));
  }

  endedSince(at: number): Promise<{ id: string; endReason: string }[]> {
    return this.run(() => this.sql.endedSince.all(at));
  }

  listLive(now: number): Promise<LeaseRecord[]> {
    return this.run(() => this.sql.listLive.all(now).map(toLiveLease));
  }

  block(b: CredentialBlock): Promise<void> {
    return this.run(() => void this.sql.block.run(b.kind, b.name, b.reason, b.createdAt));
  }

  unblock(kind: CredentialBlock['kind'], name: string): Promise<boolean> {
    return this.run(() => this.sql.unblock.run(kind, name).changes > 0);
  }

  blocks(): Promise<CredentialBlock[]> {
    return this.run(() =>
      this.sql.blocks.all().map(({ kind, name, reason, createdAt }) => ({ kind, name, reason, createdAt })),
    );
  }
}
