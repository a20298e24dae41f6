/**
 * The storage contract: every backend (SQLite today, PostgreSQL next) must pass it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { SessionRecord, Storage } from '../../src/storage/types.ts';

function record(overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    id: randomUUID(),
    protocolVersion: '2025-11-25',
    clientName: 'client',
    clientVersion: '1.0',
    createdAt: Date.now(),
    closedAt: undefined,
    closeReason: undefined,
    ...overrides,
  };
}

export function storageContract(name: string, open: () => Promise<Storage>): void {
  test(`${name}: sessions are inserted, read back and closed once`, async () => {
    const s = await open();
    const r = record();
    await s.sessions.insert(r);
    assert.deepEqual(await s.sessions.get(r.id), r);
    await s.sessions.close(r.id, 'client_delete', 123);
    await s.sessions.close(r.id, 'second close is ignored', 456);
    const closed = await s.sessions.get(r.id);
    assert.equal(closed?.closedAt, 123);
    assert.equal(closed?.closeReason, 'client_delete');
    assert.equal(await s.sessions.get('missing'), undefined);
    await s.close();
  });

  test(`${name}: a duplicate session id is refused`, async () => {
    const s = await open();
    const r = record();
    await s.sessions.insert(r);
    await assert.rejects(s.sessions.insert(r));
    await s.close();
  });

  test(`${name}: listOpen and closeAllOpen`, async () => {
    const s = await open();
    const a = record({ createdAt: 1 });
    const b = record({ createdAt: 2 });
    await s.sessions.insert(b);
    await s.sessions.insert(a);
    const open1 = (await s.sessions.listOpen()).map((x) => x.id);
    assert.deepEqual(
      open1.filter((id) => id === a.id || id === b.id),
      [a.id, b.id],
      'oldest first',
    );
    assert.ok((await s.sessions.closeAllOpen('gateway_restart', 9)) >= 2);
    assert.deepEqual(await s.sessions.listOpen(), []);
    await s.close();
  });

  test(`${name}: a transaction commits all of its writes or none`, async () => {
    const s = await open();
    const a = record();
    const b = record();
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.sessions.insert(a);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await s.sessions.get(a.id), undefined, 'rolled back');
    await s.transaction(async (tx) => {
      await tx.sessions.insert(a);
      await tx.sessions.insert(b);
    });
    assert.ok(await s.sessions.get(a.id));
    assert.ok(await s.sessions.get(b.id));
    await s.close();
  });

  test(`${name}: writes outside a transaction wait for it (no interleaving)`, async () => {
    const s = await open();
    const inside = record();
    const outside = record();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = s.transaction(async (t) => {
      await t.sessions.insert(inside);
      await gate;
      throw new Error('rollback');
    });
    const later = s.sessions.insert(outside);
    release();
    await assert.rejects(tx);
    await later;
    assert.equal(await s.sessions.get(inside.id), undefined);
    assert.ok(await s.sessions.get(outside.id), 'the outside write was not rolled back with the transaction');
    await s.close();
  });
}
