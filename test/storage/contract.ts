/**
 * The storage contract: every backend (SQLite today, PostgreSQL next) must pass it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { canonicalJson } from '../../src/audit/canonical.ts';
import { recordBody } from '../../src/audit/chain.ts';
import type { AuditCheckpointRow, AuditRow, SessionRecord, Storage } from '../../src/storage/types.ts';

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

/** A row whose body is a real record envelope carrying the row's query columns (stores derive them from it). */
function auditRow(seq: number, overrides: Partial<AuditRow> = {}): AuditRow {
  const row = auditColumns(seq, overrides);
  const event = {
    id: row.eventId,
    time: row.time,
    type: row.type,
    requestId: row.requestId,
    grantId: row.grantId,
    sessionId: row.sessionId,
    principal: row.agent === undefined ? undefined : { agent: row.agent, user: row.user, jti: row.jti },
    server: row.server,
    tool: row.tool,
    decision: row.decision === undefined ? undefined : { effect: row.decision, policies: [] },
  };
  return { ...row, body: recordBody(seq, row.prevHash, canonicalJson(event)) };
}

function auditColumns(seq: number, overrides: Partial<AuditRow>): AuditRow {
  return {
    seq,
    prevHash: String(seq - 1).padStart(64, '0'),
    hash: String(seq).padStart(64, '0'),
    body: `{"seq":${seq}}`,
    eventId: `e-${seq}`,
    time: 1000 + seq,
    type: 'call.attempted',
    requestId: `r-${seq}`,
    grantId: seq % 2 === 0 ? 'g-even' : 'g-odd',
    sessionId: undefined,
    agent: 'agent-a',
    user: seq <= 2 ? 'alice' : undefined,
    jti: 'j-1',
    server: 'files',
    tool: 'read',
    decision: seq === 3 ? 'deny' : 'allow',
    ...overrides,
  };
}

function checkpoint(seq: number): AuditCheckpointRow {
  return { seq, hash: String(seq).padStart(64, '0'), payload: '{}', signature: 'sig', keyId: 'k1', time: 5 };
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

  test(`${name}: oauth models are upserted, found by id, uid and user code, and destroyed`, async () => {
    const s = await open();
    const future = Date.now() + 60_000;
    await s.oauth.upsert('Interaction', 'i1', { a: 1 }, future, undefined, undefined, 'uid-1');
    await s.oauth.upsert('DeviceCode', 'd1', { b: 2 }, future, 'g1', 'UC-1');
    assert.deepEqual(await s.oauth.find('Interaction', 'i1'), { a: 1 });
    assert.equal(await s.oauth.find('Session', 'i1'), undefined, 'models are separate namespaces');
    assert.deepEqual(await s.oauth.findByUid('Interaction', 'uid-1'), { a: 1 });
    assert.deepEqual(await s.oauth.findByUserCode('DeviceCode', 'UC-1'), { b: 2 });
    await s.oauth.upsert('Interaction', 'i1', { a: 3 }, future);
    assert.deepEqual(await s.oauth.find('Interaction', 'i1'), { a: 3 }, 'upsert replaces');
    await s.oauth.destroy('Interaction', 'i1');
    assert.equal(await s.oauth.find('Interaction', 'i1'), undefined);
    await s.oauth.upsert('Client', 'c1', { client_id: 'c1' }, undefined);
    assert.deepEqual(await s.oauth.find('Client', 'c1'), { client_id: 'c1' }, 'no expiry');
    await s.close();
  });

  test(`${name}: consuming an oauth model is single use and survives a later upsert`, async () => {
    const s = await open();
    await s.oauth.upsert('AuthorizationCode', 'c', { x: 1 }, Date.now() + 60_000, 'g');
    await s.oauth.consume('AuthorizationCode', 'c', 100);
    await s.oauth.consume('AuthorizationCode', 'c', 200);
    assert.equal((await s.oauth.find('AuthorizationCode', 'c'))?.['consumed'], 100, 'first consumption wins');
    await s.oauth.upsert('AuthorizationCode', 'c', { x: 2 }, Date.now() + 60_000, 'g');
    assert.equal((await s.oauth.find('AuthorizationCode', 'c'))?.['consumed'], 100);
    await s.close();
  });

  test(`${name}: expired oauth rows are never returned and are purged`, async () => {
    const s = await open();
    await s.oauth.upsert('Session', 'old', { o: 1 }, Date.now() - 1, undefined, 'UC-old', 'uid-old');
    await s.oauth.upsert('Session', 'new', { n: 1 }, Date.now() + 60_000);
    assert.equal(await s.oauth.find('Session', 'old'), undefined);
    assert.equal(await s.oauth.findByUid('Session', 'uid-old'), undefined);
    assert.equal(await s.oauth.findByUserCode('Session', 'UC-old'), undefined);
    assert.ok((await s.oauth.purgeExpired(Date.now())) >= 1);
    assert.ok(await s.oauth.find('Session', 'new'));
    await s.close();
  });

  test(`${name}: revokeByGrantId removes every model of that grant only`, async () => {
    const s = await open();
    const future = Date.now() + 60_000;
    await s.oauth.upsert('RefreshToken', 'r1', {}, future, 'grant-a');
    await s.oauth.upsert('AuthorizationCode', 'c1', {}, future, 'grant-a');
    await s.oauth.upsert('RefreshToken', 'r2', {}, future, 'grant-b');
    assert.equal(await s.oauth.revokeByGrantId('grant-a'), 2);
    assert.equal(await s.oauth.find('RefreshToken', 'r1'), undefined);
    assert.equal(await s.oauth.find('AuthorizationCode', 'c1'), undefined);
    assert.ok(await s.oauth.find('RefreshToken', 'r2'));
    await s.close();
  });

  test(`${name}: users are added once, listed by name and removed`, async () => {
    const s = await open();
    const alice = { username: `alice-${randomUUID()}`, passwordHash: 'scrypt$1$2$3$s$h', createdAt: 5 };
    await s.users.add(alice);
    await assert.rejects(s.users.add(alice), 'duplicate username');
    assert.deepEqual(await s.users.get(alice.username), alice);
    assert.ok((await s.users.list()).some((u) => u.username === alice.username));
    assert.equal(await s.users.remove(alice.username), true);
    assert.equal(await s.users.remove(alice.username), false);
    assert.equal(await s.users.get(alice.username), undefined);
    await s.close();
  });

  test(`${name}: oauth and users writes roll back with a transaction`, async () => {
    const s = await open();
    const user = `tx-${randomUUID()}`;
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.users.add({ username: user, passwordHash: 'h', createdAt: 1 });
        await tx.oauth.upsert('Grant', user, {}, undefined);
        throw new Error('boom');
      }),
    );
    assert.equal(await s.users.get(user), undefined);
    assert.equal(await s.oauth.find('Grant', user), undefined);
    await s.close();
  });

  test(`${name}: audit rows are appended in batches and read back by range and head`, async () => {
    const s = await open();
    const before = (await s.audit.bounds())?.last ?? 0;
    const base = before + 1;
    assert.equal((await s.audit.head())?.seq, before === 0 ? undefined : before);
    await s.audit.appendBatch([auditRow(base), auditRow(base + 1)]);
    await s.audit.appendBatch([auditRow(base + 2)], checkpoint(base + 2));
    assert.deepEqual(await s.audit.head(), { seq: base + 2, hash: auditRow(base + 2).hash });
    assert.deepEqual(await s.audit.range(base, base + 2, 10), [
      auditRow(base),
      auditRow(base + 1),
      auditRow(base + 2),
    ]);
    assert.deepEqual(await s.audit.range(base, base + 2, 1), [auditRow(base)], 'limit');
    const b = await s.audit.bounds();
    assert.equal(b?.last, base + 2);
    assert.ok((await s.audit.checkpoints()).some((c) => c.seq === base + 2));
    await s.close();
  });

  test(`${name}: an audit batch is all or nothing (duplicate seq rejects the whole batch)`, async () => {
    const s = await open();
    const base = ((await s.audit.bounds())?.last ?? 0) + 1;
    await s.audit.appendBatch([auditRow(base)]);
    await assert.rejects(s.audit.appendBatch([auditRow(base + 1), auditRow(base)], checkpoint(base + 1)));
    assert.equal((await s.audit.head())?.seq, base, 'nothing of the failed batch');
    assert.ok(!(await s.audit.checkpoints()).some((c) => c.seq === base + 1), 'nor its checkpoint');
    await s.close();
  });

  test(`${name}: audit queries filter on every column, by seq, with time bounds and paging`, async () => {
    const s = await open();
    const base = ((await s.audit.bounds())?.last ?? 0) + 1;
    const jti = `j-${randomUUID()}`;
    await s.audit.appendBatch(
      [1, 2, 3, 4].map((i) =>
        auditRow(base + i - 1, {
          jti,
          user: i <= 2 ? 'alice' : undefined,
          decision: i === 3 ? 'deny' : 'allow',
        }),
      ),
    );
    const seqs = async (f: Parameters<Storage['audit']['query']>[0]): Promise<number[]> =>
      (await s.audit.query({ jti, ...f })).map((r) => r.seq - base + 1);
    assert.deepEqual(await seqs({}), [1, 2, 3, 4]);
    assert.deepEqual(await seqs({ user: 'alice' }), [1, 2]);
    assert.deepEqual(await seqs({ decision: 'deny' }), [3]);
    assert.deepEqual(await seqs({ grantId: (base + 1) % 2 === 0 ? 'g-even' : 'g-odd' }), [2, 4]);
    assert.deepEqual(
      await seqs({ tool: 'read', server: 'files', agent: 'agent-a', type: 'call.attempted' }),
      [1, 2, 3, 4],
    );
    assert.deepEqual(await seqs({ requestId: `r-${base}` }), [1]);
    assert.deepEqual(await seqs({ since: 1000 + base + 1, until: 1000 + base + 3 }), [2, 3]);
    assert.deepEqual(await seqs({ afterSeq: base + 1, limit: 1 }), [3]);
    assert.deepEqual(await seqs({ tool: 'other' }), []);
    assert.equal(await s.audit.firstSeqAtOrAfter(1000 + base + 2), base + 2);
    await s.close();
  });

  test(`${name}: audit prune deletes the prefix and old checkpoints, writing its checkpoint`, async () => {
    const s = await open();
    const base = ((await s.audit.bounds())?.last ?? 0) + 1;
    await s.audit.appendBatch(
      [0, 1, 2, 3, 4].map((i) => auditRow(base + i)),
      checkpoint(base + 1),
    );
    const n = await s.audit.prune(base + 3, checkpoint(base + 4));
    assert.ok(n >= 3);
    assert.equal((await s.audit.bounds())?.first, base + 3);
    const cps = (await s.audit.checkpoints()).map((c) => c.seq);
    assert.ok(!cps.includes(base + 1), 'checkpoint below the floor removed');
    assert.ok(cps.includes(base + 4));
    await s.close();
  });

  test(`${name}: audit appends are refused inside a transaction (a written record cannot roll back)`, async () => {
    const s = await open();
    const base = ((await s.audit.bounds())?.last ?? 0) + 1;
    await assert.rejects(
      s.transaction(async (tx) => {
        await tx.audit.appendBatch([auditRow(base)]);
      }),
      /inside a storage transaction/,
    );
    assert.equal((await s.audit.head())?.seq ?? 0, base - 1);
    await s.close();
  });
}
