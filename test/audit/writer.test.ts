import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import {
  type AuditEventInput,
  auditKeyPath,
  createAuditWriter,
  openAuditWriter,
} from '../../src/audit/index.ts';
import { auditCommand } from '../../src/cli/audit.ts';
import { callEvent, editLog, openFixture } from './helpers.ts';

test('concurrent appends are grouped, resolve in order with contiguous sequence numbers', async () => {
  const f = await openFixture();
  const order: number[] = [];
  const results = await Promise.all(
    Array.from({ length: 300 }, (_, i) =>
      f.writer.append(callEvent(i)).then((r) => {
        order.push(r.seq);
        return r;
      }),
    ),
  );
  assert.deepEqual(
    results.map((r) => r.seq),
    Array.from({ length: 300 }, (_, i) => i + 1),
  );
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
    'resolved in sequence order',
  );
  const rows = await f.storage.audit.range(1, 300, 1000);
  assert.equal(rows.length, 300);
  assert.deepEqual(
    rows.map((r) => r.eventId),
    results.map((r) => r.eventId),
  );
  assert.ok((await f.writer.verify()).ok);
  await f.writer.close();
  await f.storage.close();
});

test('a failing write rejects every append of its batch; a reopened writer continues the sequence and verifies', async () => {
  const f = await openFixture();
  for (let i = 0; i < 4; i++) await f.writer.append(callEvent(i));
  // The store goes away under the writer (a real failure, not a stand-in).
  await f.storage.close();
  const batch = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) => f.writer.append(callEvent(10 + i))),
  );
  assert.ok(batch.every((r) => r.status === 'rejected'));
  for (const r of batch)
    if (r.status === 'rejected') assert.match(String(r.reason), /audit write failed: audit log is closed/);
  const g = await openFixture({}, f.dir);
  assert.equal((await g.storage.audit.bounds())?.last, 4, 'nothing of the batch was written');
  const next = await g.writer.append(callEvent(99));
  assert.equal(next.seq, 5);
  const v = await g.writer.verify();
  assert.ok(v.ok, JSON.stringify(v.breaks));
  await g.writer.close();
  await g.storage.close();
});

test('append rejects when the store cannot write (closed database) and after close', async () => {
  const f = await openFixture();
  await f.writer.append(callEvent(1));
  await f.storage.close();
  await assert.rejects(f.writer.append(callEvent(2)), /audit write failed/);
  await assert.rejects(f.writer.close());
  await assert.rejects(f.writer.append(callEvent(3)), /audit writer is closed/);
});

test('invalid events are rejected before anything is written', async () => {
  const f = await openFixture();
  await assert.rejects(
    f.writer.append({ type: 'nonsense' } as unknown as AuditEventInput),
    /invalid audit event: type/,
  );
  await assert.rejects(f.writer.append({ type: 'admin.action', detail: { x: Number.NaN } }), /non-finite/);
  await assert.rejects(
    f.writer.append({
      type: 'decision',
      decision: { effect: 'maybe', policies: [] },
    } as unknown as AuditEventInput),
    /decision\.effect/,
  );
  assert.equal(await f.storage.audit.bounds(), undefined);
  await f.writer.close();
  await f.storage.close();
});

test('the envelope is filled in and the argument digest is of the original arguments', async () => {
  const f = await openFixture({ now: () => 1_700_000_000_000 });
  const r = await f.writer.append(callEvent(1));
  const [row] = await f.storage.audit.query({ requestId: 'req-1' });
  assert.ok(row);
  const rec = JSON.parse(row.body);
  assert.equal(rec.seq, 1);
  assert.equal(rec.prev, '0'.repeat(64));
  assert.equal(rec.event.v, 1);
  assert.equal(rec.event.id, r.eventId);
  assert.equal(rec.event.time, 1_700_000_000_000);
  assert.equal(rec.event.instance, 'gw-test');
  assert.deepEqual(rec.event.arguments.redacted, { path: '/tmp/1.txt', n: 1 });
  const { canonicalDigest } = await import('../../src/audit/canonical.ts');
  assert.equal(rec.event.arguments.digest, canonicalDigest({ n: 1, path: '/tmp/1.txt' }));
  await f.writer.close();
  await f.storage.close();
});

test('appendTrusted (events built in canonical order, no copy) writes the bytes the validated path writes', async () => {
  const f = await openFixture({ now: () => 1_700_000_000_000 });
  const events: AuditEventInput[] = [
    callEvent(1, { id: 'e-1' }),
    callEvent(2, { id: 'e-2', args: undefined, tool: undefined }),
    callEvent(3, {
      id: 'e-3',
      outcome: { status: 'ok', responseBytes: 10, latencyMs: 2 },
      detail: { b: 1, a: [2, { d: 1, c: 0 }] },
    }),
    callEvent(4, { id: 'e-4', args: { z: 1, a: { y: [1, 'x'], b: null } } }),
    // Given envelope members (a migrated or imported event) win over the writer's.
    callEvent(5, { id: 'e-5', time: 42, instance: 'other' }),
    // A member set to undefined is no member.
    callEvent(6, { id: 'e-6', owner: undefined }),
  ];
  for (const e of events) {
    await f.writer.append({ ...e, requestId: `${e.requestId}-validated` });
    await f.writer.appendTrusted({ ...e, requestId: `${e.requestId}-trusted` });
  }
  const rows = await f.storage.audit.range(1, 100, 100);
  assert.equal(rows.length, events.length * 2);
  for (let i = 0; i < rows.length; i += 2) {
    const a = JSON.parse((rows[i] as { body: string }).body).event;
    const b = JSON.parse((rows[i + 1] as { body: string }).body).event;
    a.requestId = b.requestId = 'x';
    assert.equal(JSON.stringify(b), JSON.stringify(a), `event ${i / 2}`);
    assert.deepEqual(Object.keys(b), [...Object.keys(b)].sort(), 'members in canonical order');
  }
  assert.ok((await f.writer.verify()).ok);
  await f.writer.close();
  await f.storage.close();
});

test('appendTrusted: a member the schema does not name, or an inherited one, takes the general path and is kept only when own', async () => {
  const f = await openFixture({ now: () => 1_700_000_000_000 });
  const extra = { ...callEvent(1, { id: 'e-x' }), zzz: 'kept' } as unknown as AuditEventInput;
  await f.writer.appendTrusted(extra);
  const proto = Object.create({ tool: 'inherited' }) as Record<string, unknown>;
  Object.assign(proto, callEvent(2, { id: 'e-y' }));
  delete proto.tool;
  await f.writer.appendTrusted(proto as unknown as AuditEventInput);
  const [x, y] = (await f.storage.audit.range(1, 2, 10)).map((r) => JSON.parse(r.body).event);
  assert.equal(x.zzz, 'kept');
  assert.deepEqual(Object.keys(x), [...Object.keys(x)].sort());
  assert.equal(y.tool, undefined, 'an inherited member is not recorded');
  assert.ok((await f.writer.verify()).ok);
  await f.writer.close();
  await f.storage.close();
});

test('large arguments are kept as digest only', async () => {
  const f = await openFixture({ maxArgumentBytes: 100 });
  await f.writer.append(callEvent(1, { args: { blob: 'x'.repeat(500) } }));
  const [row] = await f.storage.audit.query({});
  assert.ok(row);
  const ev = JSON.parse(row.body).event;
  assert.equal(ev.arguments.truncated, true);
  assert.equal(ev.arguments.redacted, undefined);
  assert.match(ev.arguments.digest, /^[0-9a-f]{64}$/);
  await f.writer.close();
  await f.storage.close();
});

const CANARY = 'GATEHOUSE-CANARY-0000-FAKE-SECRET-do-not-log';

test('canary: a redacted secret never reaches the database file bytes or exports', async () => {
  const f = await openFixture({ redact: (s) => s.replaceAll(CANARY, '[redacted:canary]') });
  const second = 'SECOND-FAKE-CANARY-1234';
  // Registered later, as the credential broker will do.
  f.writer.addRedactor((s) => s.replaceAll(second, '[redacted:lease]'));
  for (let i = 0; i < 50; i++) {
    await f.writer.append(
      callEvent(i, {
        args: { token: `Bearer ${CANARY}`, nested: [{ [CANARY]: second }], note: `x${second}y` },
        decision: { effect: 'deny', policies: ['p-1'], reason: `matched ${CANARY}` },
        outcome: { status: 'error', errorCode: 'upstream_failed' },
        detail: { header: CANARY },
      }),
    );
  }
  await f.writer.append({
    type: 'lease.issued',
    grantId: 'grant-1',
    lease: { id: 'lease-1', credential: second },
  });
  const v = await f.writer.verify();
  assert.ok(v.ok, JSON.stringify(v.breaks));
  const out = join(f.dir, 'export.jsonl');
  const ocsf = join(f.dir, 'export.ocsf.jsonl');
  await f.writer.close();
  await f.storage.close();
  const io = { stdout: new PassThrough(), stderr: new PassThrough() };
  assert.equal(await auditCommand(['export', '--data-dir', f.dir, '--out', out], io), 0);
  assert.equal(await auditCommand(['export', '--data-dir', f.dir, '--format', 'ocsf', '--out', ocsf], io), 0);
  const exported = readFileSync(out, 'utf8');
  assert.equal(exported.trim().split('\n').length, 51);
  assert.ok(exported.includes('[redacted:canary]'), 'the redaction marker is there');
  const files = readdirSync(f.dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  assert.ok(
    files.some((e) => e.name.endsWith('.log')),
    'the segment files are checked too',
  );
  for (const e of files) {
    const file = join(e.parentPath, e.name);
    const bytes = readFileSync(file);
    assert.equal(bytes.indexOf(CANARY), -1, `canary found in ${file}`);
    assert.equal(bytes.indexOf(second), -1, `second canary found in ${file}`);
  }
});

test('signed checkpoints every N records, and a final one on close', async () => {
  const f = await openFixture({ checkpointEvery: 10 });
  for (let i = 0; i < 25; i++) await f.writer.append(callEvent(i));
  assert.deepEqual(
    (await f.storage.audit.checkpoints()).map((c) => c.seq),
    [10, 20],
  );
  const before = await f.writer.verify();
  assert.equal(before.unsignedTail, 5);
  await f.writer.close();
  assert.deepEqual(
    (await f.storage.audit.checkpoints()).map((c) => c.seq),
    [10, 20, 25],
  );
  await f.storage.close();
});

test('checkpoints on a timer while records arrive', async () => {
  const f = await openFixture({ checkpointIntervalMs: 20 });
  await f.writer.append(callEvent(1));
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(
    (await f.storage.audit.checkpoints()).map((c) => c.seq),
    [1],
  );
  await f.writer.close();
  await f.storage.close();
});

test('a reopened writer continues the chain', async () => {
  const f = await openFixture({ checkpointEvery: 7 });
  for (let i = 0; i < 10; i++) await f.writer.append(callEvent(i));
  await f.writer.close();
  const key = (await import('../../src/audit/keys.ts')).loadAuditKey(f.dir, { create: false });
  assert.ok(key);
  const w2 = await openAuditWriter({ repo: f.storage.audit, key, instance: 'gw-2', checkpointIntervalMs: 0 });
  assert.equal((await w2.append(callEvent(10))).seq, 11);
  assert.ok((await w2.verify()).ok);
  await w2.close();
  await f.storage.close();
});

test('the key file is created 0600 and refused when readable by others', async () => {
  const f = await openFixture();
  const path = auditKeyPath(f.dir);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  await f.writer.close();
  chmodSync(path, 0o644);
  await assert.rejects(
    createAuditWriter({ repo: f.storage.audit, dataDir: f.dir, instance: 'x', checkpointIntervalMs: 0 }),
    /readable by group or others/,
  );
  await f.storage.close();
});

test('retention by count keeps the chain verifiable and records the pruning', async () => {
  const f = await openFixture({ checkpointEvery: 1000 });
  for (let i = 0; i < 50; i++) await f.writer.append(callEvent(i));
  assert.equal(await f.writer.prune({ maxCount: 20 }), 30);
  const b = await f.storage.audit.bounds();
  assert.equal(b?.first, 31);
  assert.equal(b?.last, 51, 'the prune itself is an audit event');
  const last = (await f.storage.audit.range(51, 51, 1))[0];
  assert.equal(JSON.parse(last?.body ?? '{}').event.detail.action, 'audit.prune');
  const v = await f.writer.verify();
  assert.ok(v.ok, JSON.stringify(v.breaks));
  assert.equal(v.first, 31);
  // Deleting the oldest retained record now is caught: it is below nothing signed but above the floor.
  editLog(f.dir, (lines) => lines.slice(1));
  const broken = await f.writer.verify();
  assert.equal(broken.ok, false);
  assert.deepEqual(
    broken.breaks.map((x) => [x.kind, x.seq]),
    [
      ['gap', 31],
      ['truncated', 51],
    ],
  );
  await f.writer.close();
  await f.storage.close();
});

test('retention by age deletes old records only, never the newest', async () => {
  let now = 1_000_000;
  const f = await openFixture({ now: () => now });
  for (let i = 0; i < 10; i++) {
    await f.writer.append(callEvent(i));
    now += 1000;
  }
  // Records at 1_000_000 .. 1_009_000; now = 1_010_000; keep the last 3.5 s.
  assert.equal(await f.writer.prune({ maxAgeMs: 3500 }), 7);
  assert.equal((await f.storage.audit.bounds())?.first, 8);
  now += 1_000_000;
  await f.writer.prune({ maxAgeMs: 1 });
  const b = await f.storage.audit.bounds();
  assert.ok(b && b.count >= 1, 'the head is kept so the chain continues');
  assert.ok((await f.writer.verify()).ok);
  await f.writer.close();
  await f.storage.close();
});
