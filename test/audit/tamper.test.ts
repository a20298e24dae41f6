/**
 * Tamper evidence on the real files: each attack edits the segment file (or,
 * for the query index and checkpoints, the database with direct SQL), then the log is verified offline (as `gatehouse audit verify` does) with
 * the key from the data dir, and the break must name the position.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { recordBody, sha256Hex } from '../../src/audit/chain.ts';
import { loadAuditKey, type VerifyResult, verifyAuditLog } from '../../src/audit/index.ts';
import { auditCommand } from '../../src/cli/audit.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { bodyOf, callEvent, editLog, openFixture, tamper } from './helpers.ts';

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
  editLog(dir, (lines) => lines.map((l, i) => (i === 6 ? l.replace('"allow"', '"deny"') : l)));
  const r = await verifyOffline(dir, dbPath);
  assert.equal(r.ok, false);
  assert.deepEqual(kinds(r), [
    ['hash_mismatch', 7],
    ['index_mismatch', 7],
  ]);
});

test('an edited field with its hash recomputed breaks the chain at the next record', async () => {
  const { dir, dbPath } = await seeded();
  editLog(dir, (lines) =>
    lines.map((l, i) => {
      if (i !== 6) return l;
      const body = bodyOf(l).replace('/tmp/6.txt', '/etc/shadow');
      return `${sha256Hex(body)} ${body}`;
    }),
  );
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [
    ['index_mismatch', 7],
    ['chain_broken', 8],
  ]);
  assert.match(r.breaks[1]?.message ?? '', /does not follow record 7/);
});

test('an edited or deleted query index row (hiding a record from --jti) is caught', async () => {
  const { dir, dbPath } = await seeded();
  tamper(dbPath, (db) => {
    db.prepare("UPDATE audit_log SET jti = 'other' WHERE seq = 9").run();
    db.prepare('DELETE FROM audit_log WHERE seq = 11').run();
  });
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [
    ['index_mismatch', 9],
    ['index_mismatch', 11],
  ]);
  assert.match(r.breaks[0]?.message ?? '', /column jti differs/);
  assert.match(r.breaks[1]?.message ?? '', /missing from the query index/);
});

test('a deleted record is caught where the gap is', async () => {
  const { dir, dbPath } = await seeded();
  editLog(dir, (lines) => lines.filter((_, i) => i !== 11));
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [
    ['gap', 12],
    ['chain_broken', 12],
  ]);
  assert.match(r.breaks[0]?.message ?? '', /records 12\.\.12 are missing/);
});

test('a forged record inserted in the middle is caught', async () => {
  const { dir, dbPath } = await seeded();
  editLog(dir, (lines) => {
    const body = recordBody(16, lines[14]?.slice(0, 64) ?? '', JSON.stringify({ forged: true }));
    return [...lines.slice(0, 15), `${sha256Hex(body)} ${body}`, ...lines.slice(15)];
  });
  const r = await verifyOffline(dir, dbPath);
  assert.equal(r.ok, false);
  const first = r.breaks[0];
  assert.ok(first && first.seq === 16, JSON.stringify(r.breaks));
  assert.ok(r.breaks.some((b) => b.kind === 'seq_mismatch' && b.seq === 17));
});

test('a forged record with the whole chain after it recomputed is caught by the signed checkpoint', async () => {
  const { dir, dbPath } = await seeded();
  editLog(dir, (lines) => {
    const out = lines.slice(0, 15);
    let prev = lines[14]?.slice(0, 64) ?? '';
    const forged = JSON.parse(bodyOf(lines[14])).event;
    forged.id = 'forged';
    forged.requestId = 'req-forged';
    const events = [forged, ...lines.slice(15).map((l) => JSON.parse(bodyOf(l)).event)];
    // Re-chain every later record, as an attacker who knows the format would.
    events.forEach((event, i) => {
      const b = recordBody(16 + i, prev, JSON.stringify(event));
      prev = sha256Hex(b);
      out.push(`${prev} ${b}`);
    });
    return out;
  });
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(
    kinds(r).filter(([k]) => k !== 'index_mismatch'),
    [
      ['checkpoint_mismatch', 20],
      ['checkpoint_mismatch', 30],
    ],
  );
});

test('two swapped records are caught at both positions', async () => {
  const { dir, dbPath } = await seeded();
  editLog(dir, (lines) => {
    const out = [...lines];
    [out[4], out[5]] = [lines[5] ?? '', lines[4] ?? ''];
    return out;
  });
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(
    r.breaks.filter((b) => b.kind === 'seq_mismatch').map((b) => b.seq),
    [6],
  );
  assert.ok(r.breaks.some((b) => b.kind === 'gap' && b.seq === 5));
  assert.ok(r.breaks.some((b) => b.kind === 'chain_broken' && b.seq === 5));
  assert.ok(r.breaks.some((b) => b.kind === 'chain_broken' && b.seq === 6));
});

test('truncating the tail back past the last checkpoint is caught', async () => {
  const { dir, dbPath } = await seeded();
  editLog(dir, (lines) => lines.slice(0, 24));
  const r = await verifyOffline(dir, dbPath);
  assert.deepEqual(kinds(r), [['truncated', 25]]);
  assert.match(r.breaks[0]?.message ?? '', /ends at seq 24 but seq 30 was checkpointed/);
});

test('a cut inside the unsigned tail is caught by the live writer; offline only the signed part is provable', async () => {
  const f = await openFixture({ checkpointEvery: 10 });
  for (let i = 0; i < 35; i++) await f.writer.append(callEvent(i));
  editLog(f.dir, (lines) => lines.slice(0, 32));
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
  const { dir } = await seeded();
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
  editLog(dir, (lines) => lines.filter((_, i) => i !== 17));
  const bad = await run();
  assert.equal(bad.code, 1);
  assert.match(bad.out, /^BROKEN/);
  assert.match(bad.out, /seq 18 \(event [^)]+\): gap: records 18\.\.18 are missing/);
  const json = await run('--json');
  assert.equal(json.code, 1);
  assert.equal(JSON.parse(json.out).ok, false);
  const ranged = await run('--from', '20', '--to', '30');
  assert.equal(ranged.code, 0, 'a range that skips the break verifies');
});
