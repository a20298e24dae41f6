/**
 * Tamper evidence on the real database file: each attack is done with direct
 * SQL, then the log is verified offline (as `gatehouse audit verify` does) with
 * the key from the data dir, and the break must name the position.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type Database from 'better-sqlite3';
import { recordBody, sha256Hex } from '../../src/audit/chain.ts';
import { loadAuditKey, type VerifyResult, verifyAuditLog } from '../../src/audit/index.ts';
import { auditCommand } from '../../src/cli-audit.ts';
import { SqliteStorage } from '../../src/storage/sqlite.ts';
import { callEvent, openFixture, tamper } from './helpers.ts';

/** 35 records, checkpoints at 10, 20, 30 (the tail 31..35 is unsigned). */
async function seeded(): Promise<{ dir: string; dbPath: string }> {
  const f = await openFixture({ checkpointEvery: 10 });
  for (let i = 0; i < 35; i++) await f.writer.append(callEvent(i));
  // No close(): close would checkpoint the tail; keep it unsigned like after a crash.
  await f.storage.close();
  return { dir: f.dir, dbPath: f.dbPath };
}

async function verifyOffline(dir: string, dbPath: string): Promise<VerifyResult> {
  const storage = new SqliteStorage(dbPath);
  try {
    return await verifyAuditLog(storage.audit, { key: loadAuditKey(dir, { create: false }) });
  } finally {
    await storage.close();
  }
}

function kinds(r: VerifyResult): [string, number][] {
  return r.breaks.map((b) => [b.kind, b.seq]);
}

/** Moves every row with seq >= `from` up by one (to make room for an insert). */
function shiftUp(db: Database.Database, from: number): void {
  db.prepare('UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= ?').run(from);
  db.prepare('UPDATE audit_log SET seq = seq - 1000000 + 1 WHERE seq >= 1000000').run();
}

function row(db: Database.Database, seq: number): { body: string; hash: string; prev_hash: string } {
  const r = db.prepare('SELECT body, hash, prev_hash FROM audit_log WHERE seq = ?').get(seq);
  assert.ok(r);
  return r as { body: string; hash: string; prev_hash: string };
}

test('the untouched log verifies', async () => {
  const { dir, dbPath } = await seeded();
  const r = await verifyOffline(dir, dbPath);
  assert.ok(r.ok, JSON.stringify(r.breaks));
  assert.equal(r.checked, 35);
  assert.equal(r.checkpoints, 3);
  assert.equal(r.unsignedTail, 5);
});

test('an edited field is caught at its record', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) =>
    db.prepare('UPDATE audit_log SET body = replace(body, \'"allow"\', \'"deny"\') WHERE seq = 7').run(),
  );
  const r = await verifyOffline(dir, dbPath);
  assert.equal(r.ok, false);
  assert.deepEqual(kinds(r), [
    ['hash_mismatch', 7],
    ['column_mismatch', 7],
  ]);
});

test('an edited field with its hash recomputed breaks the chain at the next record', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => {
    const body = row(db, 7).body.replace('/tmp/6.txt', '/etc/shadow');
    db.prepare('UPDATE audit_log SET body = ?, hash = ? WHERE seq = 7').run(body, sha256Hex(body));
  });
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [['chain_broken', 8]]);
  assert.match(r.breaks[0]?.message ?? '', /does not follow record 7/);
});

test('an edited query column (hiding a record from --jti) is caught', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => db.prepare("UPDATE audit_log SET jti = 'other' WHERE seq = 9").run());
  assert.deepEqual(kinds(await verifyOffline(dir, dbPath)), [['column_mismatch', 9]]);
});

test('a deleted row is caught where the gap is', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => db.prepare('DELETE FROM audit_log WHERE seq = 12').run());
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [
    ['gap', 13],
    ['chain_broken', 13],
  ]);
  assert.match(r.breaks[0]?.message ?? '', /records 12\.\.12 are missing/);
});

test('a forged row inserted in the middle is caught', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => {
    shiftUp(db, 16);
    const prev = row(db, 15).hash;
    const body = recordBody(16, prev, JSON.stringify({ forged: true }));
    db.prepare(
      "INSERT INTO audit_log (seq, prev_hash, hash, body, event_id, time, type) VALUES (16, ?, ?, ?, 'forged', 0, 'list')",
    ).run(prev, sha256Hex(body), body);
  });
  const r = await verifyOffline(dir, dbPath);
  assert.equal(r.ok, false);
  const first = r.breaks[0];
  assert.ok(first && first.seq === 16, JSON.stringify(r.breaks));
  assert.ok(r.breaks.some((b) => b.kind === 'seq_mismatch' && b.seq === 17));
});

test('a forged row with the whole chain after it recomputed is caught by the signed checkpoint', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => {
    shiftUp(db, 16);
    let prev = row(db, 15).hash;
    const forged = JSON.parse(row(db, 15).body).event;
    forged.id = 'forged';
    forged.requestId = 'req-forged';
    const body = recordBody(16, prev, JSON.stringify(forged));
    db.prepare(
      "INSERT INTO audit_log (seq, prev_hash, hash, body, event_id, time, type, request_id, grant_id, session_id, agent, user, jti, server, tool, decision) SELECT 16, ?, ?, ?, 'forged', time, type, 'req-forged', grant_id, session_id, agent, user, jti, server, tool, decision FROM audit_log WHERE seq = 15",
    ).run(prev, sha256Hex(body), body);
    prev = sha256Hex(body);
    // Re-chain every later record, as an attacker who knows the format would.
    for (let seq = 17; seq <= 36; seq++) {
      const event = JSON.parse(row(db, seq).body).event;
      const b = recordBody(seq, prev, JSON.stringify(event));
      db.prepare('UPDATE audit_log SET body = ?, hash = ?, prev_hash = ? WHERE seq = ?').run(
        b,
        sha256Hex(b),
        prev,
        seq,
      );
      prev = sha256Hex(b);
    }
  });
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [
    ['checkpoint_mismatch', 20],
    ['checkpoint_mismatch', 30],
  ]);
});

test('two swapped rows are caught at both positions', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => {
    db.prepare('UPDATE audit_log SET seq = -5 WHERE seq = 5').run();
    db.prepare('UPDATE audit_log SET seq = 5 WHERE seq = 6').run();
    db.prepare('UPDATE audit_log SET seq = 6 WHERE seq = -5').run();
  });
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(
    r.breaks.filter((b) => b.kind === 'seq_mismatch').map((b) => b.seq),
    [5, 6],
  );
  assert.ok(r.breaks.some((b) => b.kind === 'chain_broken' && b.seq === 5));
});

test('truncating the tail back past the last checkpoint is caught', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => db.prepare('DELETE FROM audit_log WHERE seq >= 25').run());
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [['truncated', 25]]);
  assert.match(r.breaks[0]?.message ?? '', /ends at seq 24 but seq 30 was checkpointed/);
});

test('a cut inside the unsigned tail is caught by the live writer; offline only the signed part is provable', async () => {
  const f = await openFixture({ checkpointEvery: 10 });
  for (let i = 0; i < 35; i++) await f.writer.append(callEvent(i));
  tamper(f.dbPath, (db) => db.prepare('DELETE FROM audit_log WHERE seq > 32').run());
  assert.deepEqual(kinds(await f.writer.verify()), [['truncated', 33]]);
  const offline = await verifyAuditLog(f.storage.audit, { key: loadAuditKey(f.dir, { create: false }) });
  assert.ok(
    offline.ok,
    'documented limit: records after the last checkpoint are protected by the chain only',
  );
  assert.equal(offline.unsignedTail, 2);
  await f.storage.close();
});

test('a forged checkpoint signature is caught', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => {
    const other = db.prepare('SELECT signature FROM audit_checkpoints WHERE seq = 10').get() as {
      signature: string;
    };
    db.prepare('UPDATE audit_checkpoints SET signature = ? WHERE seq = 20').run(other.signature);
  });
  assert.deepEqual(kinds(await verifyOffline(dir, dbPath)), [['checkpoint_signature', 20]]);
});

test('a checkpoint re-signed with another key, or with its payload edited, is caught', async () => {
  const { dir, dbPath } = await seeded();
  const { privateKey } = generateKeyPairSync('ed25519');
  tamper(dbPath, (db) => {
    const cp = db.prepare('SELECT payload FROM audit_checkpoints WHERE seq = 30').get() as {
      payload: string;
    };
    const payload = cp.payload.replace('"seq":30', '"seq":31');
    db.prepare('UPDATE audit_checkpoints SET payload = ?, signature = ? WHERE seq = 30').run(
      payload,
      sign(null, Buffer.from(payload), privateKey).toString('base64url'),
    );
    db.prepare(
      'UPDATE audit_checkpoints SET payload = replace(payload, \'"seq":20\', \'"seq":21\') WHERE seq = 20',
    ).run();
  });
  assert.deepEqual(kinds(await verifyOffline(dir, dbPath)), [
    ['checkpoint_signature', 20],
    ['checkpoint_signature', 30],
  ]);
});

test('gatehouse audit verify exits 0 on an intact log and 1 naming the position on a break', async () => {
  const { dir, dbPath } = await seeded();
  const run = async (...args: string[]): Promise<{ code: number; out: string }> => {
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (c: Buffer) => chunks.push(c));
    const code = await auditCommand(['verify', '--data-dir', dir, ...args], {
      stdout,
      stderr: new PassThrough(),
    });
    return { code, out: Buffer.concat(chunks).toString() };
  };
  const ok = await run();
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /^ok: seq 1\.\.35, 35 records checked, 3 valid checkpoints/);
  tamper(dbPath, (db) => db.prepare('DELETE FROM audit_log WHERE seq = 18').run());
  const bad = await run();
  assert.equal(bad.code, 1);
  assert.match(bad.out, /^BROKEN/);
  assert.match(bad.out, /seq 19 \(event [^)]+\): gap: records 18\.\.18 are missing/);
  const json = await run('--json');
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.out).ok, false);
  const ranged = await run('--from', '20', '--to', '30');
  assert.equal(ranged.code, 0, 'a range that skips the break verifies');
});
