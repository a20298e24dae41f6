/** Retention right after a clean restart: the prune checkpoint lands on the head the close checkpoint already covers. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAuditWriter } from '../../src/audit/index.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';

test('prune after a clean close and reopen (checkpoint at the same head) keeps the chain verifiable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-prune-'));
  try {
    const storage = new SqliteStorage(join(dir, 'gatehouse.db'));
    const first = await createAuditWriter({ repo: storage.audit, dataDir: dir, instance: 'a' });
    for (let i = 0; i < 20; i++) await first.append({ type: 'admin.action', detail: { i } });
    await first.close(); // writes a checkpoint at the head
    const second = await createAuditWriter({ repo: storage.audit, dataDir: dir, instance: 'b' });
    const deleted = await second.prune({ maxCount: 5 }); // checkpoint again at the same head
    assert.ok(deleted > 0);
    const result = await second.verify();
    assert.equal(result.ok, true, JSON.stringify(result.breaks));
    await second.close();
    await storage.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
