/**
 * Durability across a process crash: a child appends in a loop and reports every
 * resolved seq; we SIGKILL it mid-run, reopen the database and require every
 * reported record to be there and the chain to verify.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadAuditKey, verifyAuditLog } from '../../src/audit/index.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));

async function crashRun(mode: 'normal' | 'full', minReported: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-crash-'));
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const reported: number[] = [];
  let buf = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  await new Promise<void>((resolve, reject) => {
    child.once('exit', () => reject(new Error(`child exited early after ${reported.length} records`)));
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) if (/^\d+$/.test(line)) reported.push(Number(line));
      if (reported.length >= minReported) resolve();
    });
  });
  // Mid-run: the child is appending at full speed with batches in flight.
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  const storage = new SqliteStorage(join(dir, 'gatehouse.db'));
  try {
    const bounds = await storage.audit.bounds();
    assert.ok(bounds);
    const max = Math.max(...reported);
    assert.ok(bounds.last >= max, `last committed ${bounds.last} < reported ${max}`);
    const present = new Set((await storage.audit.range(1, bounds.last, bounds.last + 1)).map((r) => r.seq));
    const missing = reported.filter((s) => !present.has(s));
    assert.deepEqual(missing, [], 'every reported record survived the kill');
    const v = await verifyAuditLog(storage.audit, { key: loadAuditKey(dir, { create: false }) });
    assert.ok(v.ok, JSON.stringify(v.breaks.slice(0, 5)));
    assert.ok(v.checkpoints >= 1);
  } finally {
    await storage.close();
  }
}

test('kill -9 never loses a record whose append resolved (synchronous=NORMAL)', async () => {
  await crashRun('normal', 3000);
});

test('kill -9 never loses a record whose append resolved (synchronous=FULL)', async () => {
  await crashRun('full', 1000);
});
