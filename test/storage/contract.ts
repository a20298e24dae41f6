/**
 * The storage contract: the cases every {@link Storage} backend must pass,
 * through the interface of src/storage/types.ts only (no SQL, no paths).
 *
 * Adding a backend takes one file, test/storage/<backend>.test.ts, that calls
 * `storageContract('<backend>', open, cleanup)`; npm test picks it up like
 * every other test/<dir>/<name>.test.ts file. See sqlite.test.ts.
 * - `open()` resolves to a ready store (schema migrated). It is called once per
 *   case, and each case closes the store it got. It may return a fresh store
 *   every time or reopen the same one: cases use their own random ids, filter
 *   what they read to those ids, and continue the audit log from its current
 *   head, so they never assume an empty store.
 * - `cleanup()` (optional) runs once after the last case: drop the schema,
 *   remove the temp dir.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { UNDECIDED } from '../../src/approvals/binding.ts';
import { canonicalJson } from '../../src/audit/canonical.ts';
import { recordBody } from '../../src/audit/chain.ts';
import type {
  ApprovalRecord,
  AuditCheckpointRow,
  AuditFilter,
  AuditRow,
  DefinitionRecord,
  GrantRecord,
  LeaseRecord,
  LeaseSelector,
  RevocationRecord,
  SessionRecord,
  Storage,
} from '../../src/storage/types.ts';

/** An expiry no case reaches. */
const FAR = Date.now() + 365 * 24 * 3600_000;

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

function approval(overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id: `apr_${randomUUID()}`,
    digest: randomUUID().replaceAll('-', ''),
    state: 'pending',
    grantId: randomUUID(),
    sessionId: randomUUID(),
    agent: 'agent',
    user: 'alice',
    tenant: undefined,
    actors: ['agent'],
    owner: 'team',
    server: 'bank',
    tool: 'bank__transfer',
    arguments: '{"amount":5,"note":"\\u0000 and \u{1F600}"}',
    definitionHash: 'ab'.repeat(32),
    policies: ['needs-approval', 'users-bank'],
    attributes: { risk: 'high', serverTrusted: false, annotations: {} },
    createdAt: Date.now(),
    expiresAt: FAR,
    ...UNDECIDED,
    ...overrides,
  };
}

function grant(overrides: Partial<GrantRecord> = {}): GrantRecord {
  return {
    id: randomUUID(),
    kind: 'session',
    agent: `agent-${randomUUID()}`,
    user: undefined,
    tenant: undefined,
    issuer: 'https://issuer.example',
    actors: ['agent'],
    principalKey: 'pk',
    owner: undefined,
    tools: undefined,
    constraints: {},
    createdAt: 1000,
    expiresAt: FAR,
    idleTimeoutMs: 60_000,
    createdBy: 'session:s1',
    tokenId: undefined,
    endedAt: undefined,
    endReason: undefined,
    ...overrides,
  };
}

function lease(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    id: randomUUID(),
    grantId: `grant-${randomUUID()}`,
    service: `service-${randomUUID()}`,
    credential: `secret-${randomUUID()}`,
    kind: 'static',
    agent: `agent-${randomUUID()}`,
    user: `user-${randomUUID()}`,
    createdAt: 1000,
    expiresAt: FAR,
    endedAt: undefined,
    endReason: undefined,
    ...overrides,
  };
}

function revocation(overrides: Partial<RevocationRecord> = {}): RevocationRecord {
  return {
    kind: 'jti',
    value: `jti-${randomUUID()}`,
    notBefore: 1_000,
    expiresAt: FAR,
    recordedAt: Date.now(),
    reason: 'revoked',
    ...overrides,
  };
}

/** The entries whose value is one of `of`'s (a reopened store holds other cases' rows too). */
function ourRevocations(
  rows: readonly RevocationRecord[],
  of: readonly RevocationRecord[],
): RevocationRecord[] {
  const wanted = new Set(of.map((o) => `${o.kind} ${o.value}`));
  return rows.filter((r) => wanted.has(`${r.kind} ${r.value}`));
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

function checkpoint(seq: number, payload = '{}'): AuditCheckpointRow {
  return { seq, hash: String(seq).padStart(64, '0'), payload, signature: 'sig', keyId: 'k1', time: 5 };
}

/** The rows that are one of `of`, in the order read (a reopened store holds other cases' rows too). */
function ours<T extends { id: string }>(rows: readonly T[], of: readonly { id: string }[]): T[] {
  const wanted = new Set(of.map((o) => o.id));
  return rows.filter((r) => wanted.has(r.id));
}

function definition(server: string, overrides: Partial<DefinitionRecord> = {}): DefinitionRecord {
  const hash = overrides.hash ?? randomUUID().replace(/-/g, '').padEnd(64, '0');
  return {
    server,
    kind: 'tool',
    name: 'fact',
    hash,
    definition: `{"description":"${hash}","name":"fact"}`,
    status: 'pending',
    findings: [],
    firstSeen: 1,
    updatedAt: 1,
    decidedBy: undefined,
    ...overrides,
  };
}

function ids(rows: readonly { id: string }[]): string[] {
  return rows.map((r) => r.id);
}

/** Registers the contract's cases for one backend (see the header). */
export function storageContract(
  name: string,
  open: () => Promise<Storage>,
  cleanup?: () => Promise<void>,
): void {
  describe(name, () => {
    if (cleanup) after(cleanup);
    /** One case on a store of its own opening, closed however the case ends. */
    const withStore = (title: string, fn: (s: Storage) => Promise<void>): void => {
      test(title, async () => {
        const s = await open();
        try {
          await fn(s);
        } finally {
          await s.close();
        }
      });
    };

    // --- sessions ---------------------------------------------------------

    withStore('sessions are inserted, read back and closed once', async (s) => {
      const r = record();
      await s.sessions.insert(r);
      assert.deepEqual(await s.sessions.get(r.id), r);
      await s.sessions.close(r.id, 'client_delete', 123);
      await s.sessions.close(r.id, 'second close is ignored', 456);
      const closed = await s.sessions.get(r.id);
      assert.equal(closed?.closedAt, 123);
      assert.equal(closed?.closeReason, 'client_delete');
      assert.equal(await s.sessions.get('missing'), undefined);
      const bare = record({ clientName: undefined, clientVersion: undefined });
      await s.sessions.insert(bare);
      assert.deepEqual(await s.sessions.get(bare.id), bare, 'optional fields stay undefined');
    });

    withStore('a duplicate session id is refused', async (s) => {
      const r = record();
      await s.sessions.insert(r);
      await assert.rejects(s.sessions.insert(r));
    });

    withStore('closing an unknown session is a no-op', async (s) => {
      const id = randomUUID();
      await s.sessions.close(id, 'client_delete', 1);
      assert.equal(await s.sessions.get(id), undefined, 'nothing created');
    });

    withStore('listOpen is oldest first without closed sessions; closeAllOpen closes the rest', async (s) => {
      const a = record({ createdAt: 1 });
      const b = record({ createdAt: 2 });
      const c = record({ createdAt: 3 });
      await s.sessions.insert(c);
      await s.sessions.insert(b);
      await s.sessions.insert(a);
      await s.sessions.close(c.id, 'client_delete', 5);
      assert.deepEqual(
        ids(ours(await s.sessions.listOpen(), [a, b, c])),
        [a.id, b.id],
        'oldest first, c closed',
      );
      assert.ok((await s.sessions.closeAllOpen('gateway_restart', 9)) >= 2);
      assert.deepEqual(await s.sessions.listOpen(), []);
      assert.equal((await s.sessions.get(a.id))?.closeReason, 'gateway_restart');
      assert.equal((await s.sessions.get(a.id))?.closedAt, 9);
      assert.equal((await s.sessions.get(c.id))?.closeReason, 'client_delete', 'an earlier close is kept');
      assert.equal(await s.sessions.closeAllOpen('gateway_restart', 10), 0, 'nothing left open');
    });

    // --- transactions -----------------------------------------------------

    withStore('a transaction commits all of its writes or none', async (s) => {
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
    });

    withStore('a transaction reads its own writes and resolves to what its function returns', async (s) => {
      const a = record();
      const out = await s.transaction(async (tx) => {
        await tx.sessions.insert(a);
        return (await tx.sessions.get(a.id))?.id;
      });
      assert.equal(out, a.id);
    });

    withStore('writes outside a transaction wait for it (no interleaving)', async (s) => {
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
      assert.ok(
        await s.sessions.get(outside.id),
        'the outside write was not rolled back with the transaction',
      );
    });

    withStore('every repository’s writes roll back with a transaction', async (s) => {
      const live = grant();
      const session = record();
      await s.grants.insert(live);
      await s.sessions.insert(session);
      const g = grant();
      const l = lease();
      const user = `tx-${randomUUID()}`;
      const blocked = `tx-${randomUUID()}`;
      await assert.rejects(
        s.transaction(async (tx) => {
          await tx.sessions.close(session.id, 'client_delete', 1);
          await tx.grants.insert(g);
          await tx.grants.end({ id: live.id }, 'revoked', 1);
          await tx.leases.insert(l);
          await tx.leases.block({ kind: 'secret', name: blocked, reason: 'r', createdAt: 1 });
          await tx.users.add({ username: user, passwordHash: 'h', createdAt: 1 });
          await tx.oauth.upsert('Grant', user, {}, undefined);
          await tx.revocations.add(revocation({ kind: 'user', value: user }));
          throw new Error('boom');
        }),
      );
      assert.equal((await s.sessions.get(session.id))?.closedAt, undefined);
      assert.equal(await s.grants.get(g.id), undefined);
      assert.equal((await s.grants.get(live.id))?.endedAt, undefined);
      assert.deepEqual(ours(await s.leases.listLive(0), [l]), []);
      assert.ok(!(await s.leases.blocks()).some((b) => b.name === blocked));
      assert.equal(await s.users.get(user), undefined);
      assert.equal(await s.oauth.find('Grant', user), undefined);
      assert.ok(!(await s.revocations.listLive(0)).some((r) => r.kind === 'user' && r.value === user));
    });

    // --- OAuth models -----------------------------------------------------

    withStore('oauth models are upserted, found by id, uid and user code, and destroyed', async (s) => {
      const k = randomUUID();
      const future = Date.now() + 60_000;
      await s.oauth.upsert('Interaction', `${k}-i1`, { a: 1 }, future, undefined, undefined, `${k}-uid-1`);
      await s.oauth.upsert('DeviceCode', `${k}-d1`, { b: 2 }, future, `${k}-g1`, `${k}-UC-1`);
      assert.deepEqual(
        await s.oauth.find('Interaction', `${k}-i1`),
        { a: 1 },
        'no consumed key before consume',
      );
      assert.equal(await s.oauth.find('Session', `${k}-i1`), undefined, 'models are separate namespaces');
      assert.deepEqual(await s.oauth.findByUid('Interaction', `${k}-uid-1`), { a: 1 });
      assert.equal(await s.oauth.findByUid('Session', `${k}-uid-1`), undefined);
      assert.deepEqual(await s.oauth.findByUserCode('DeviceCode', `${k}-UC-1`), { b: 2 });
      assert.equal(await s.oauth.findByUserCode('Session', `${k}-UC-1`), undefined);
      await s.oauth.upsert('Interaction', `${k}-i1`, { a: 3 }, future);
      assert.deepEqual(await s.oauth.find('Interaction', `${k}-i1`), { a: 3 }, 'upsert replaces');
      await s.oauth.destroy('Interaction', `${k}-i1`);
      assert.equal(await s.oauth.find('Interaction', `${k}-i1`), undefined);
      await s.oauth.upsert('Client', `${k}-c1`, { client_id: 'c1' }, undefined);
      assert.deepEqual(await s.oauth.find('Client', `${k}-c1`), { client_id: 'c1' }, 'no expiry');
    });

    withStore('oauth calls on unknown models and ids find nothing and change nothing', async (s) => {
      const id = randomUUID();
      assert.equal(await s.oauth.find('Session', id), undefined);
      assert.equal(await s.oauth.findByUid('Session', id), undefined);
      assert.equal(await s.oauth.findByUserCode('DeviceCode', id), undefined);
      await s.oauth.consume('AuthorizationCode', id, 100);
      await s.oauth.destroy('AuthorizationCode', id);
      assert.equal(await s.oauth.find('AuthorizationCode', id), undefined, 'consume creates nothing');
      assert.equal(await s.oauth.revokeByGrantId(`grant-${id}`), 0);
    });

    withStore('consuming an oauth model is single use and survives a later upsert', async (s) => {
      const k = randomUUID();
      await s.oauth.upsert('AuthorizationCode', `${k}-c`, { x: 1 }, Date.now() + 60_000, `${k}-g`);
      await s.oauth.consume('AuthorizationCode', `${k}-c`, 100);
      await s.oauth.consume('AuthorizationCode', `${k}-c`, 200);
      assert.equal(
        (await s.oauth.find('AuthorizationCode', `${k}-c`))?.['consumed'],
        100,
        'first consumption wins',
      );
      await s.oauth.upsert('AuthorizationCode', `${k}-c`, { x: 2 }, Date.now() + 60_000, `${k}-g`);
      assert.equal((await s.oauth.find('AuthorizationCode', `${k}-c`))?.['consumed'], 100);
    });

    withStore('expired oauth rows are never returned and are purged', async (s) => {
      const k = randomUUID();
      const now = Date.now();
      await s.oauth.upsert(
        'Session',
        `${k}-old`,
        { o: 1 },
        now - 1,
        undefined,
        `${k}-UC-old`,
        `${k}-uid-old`,
      );
      await s.oauth.upsert('Session', `${k}-new`, { n: 1 }, now + 60_000);
      assert.equal(await s.oauth.find('Session', `${k}-old`), undefined);
      assert.equal(await s.oauth.findByUid('Session', `${k}-uid-old`), undefined);
      assert.equal(await s.oauth.findByUserCode('Session', `${k}-UC-old`), undefined);
      assert.ok((await s.oauth.purgeExpired(now)) >= 1);
      assert.equal(await s.oauth.purgeExpired(now), 0, 'nothing left to purge');
      assert.ok(await s.oauth.find('Session', `${k}-new`));
    });

    withStore('purgeExpired removes rows expiring at or before now, not after', async (s) => {
      const id = randomUUID();
      const at = Date.now() + 3_600_000;
      await s.oauth.upsert('Session', id, { s: 1 }, at);
      await s.oauth.purgeExpired(at - 1);
      assert.ok(await s.oauth.find('Session', id), 'expires after now: kept');
      assert.ok((await s.oauth.purgeExpired(at)) >= 1);
      assert.equal(await s.oauth.find('Session', id), undefined, 'expires at now: purged');
    });

    withStore('revokeByGrantId removes every model of that grant only', async (s) => {
      const k = randomUUID();
      const future = Date.now() + 60_000;
      await s.oauth.upsert('RefreshToken', `${k}-r1`, {}, future, `${k}-grant-a`);
      await s.oauth.upsert('AuthorizationCode', `${k}-c1`, {}, future, `${k}-grant-a`);
      await s.oauth.upsert('RefreshToken', `${k}-r2`, {}, future, `${k}-grant-b`);
      await s.oauth.upsert('RefreshToken', `${k}-r3`, {}, future, `${k}-grant-a`);
      await s.oauth.upsert('RefreshToken', `${k}-r3`, {}, future, `${k}-grant-c`);
      assert.equal(await s.oauth.revokeByGrantId(`${k}-grant-a`), 2, 'r3 moved to grant-c with its upsert');
      assert.equal(await s.oauth.find('RefreshToken', `${k}-r1`), undefined);
      assert.equal(await s.oauth.find('AuthorizationCode', `${k}-c1`), undefined);
      assert.ok(await s.oauth.find('RefreshToken', `${k}-r2`));
      assert.ok(await s.oauth.find('RefreshToken', `${k}-r3`));
      assert.equal(await s.oauth.revokeByGrantId(`${k}-grant-a`), 0, 'twice: nothing left');
    });

    // --- users ------------------------------------------------------------

    withStore('users are added once, listed by name and removed', async (s) => {
      const prefix = `user-${randomUUID()}`;
      const bob = { username: `${prefix}-bob`, passwordHash: 'scrypt$1$2$3$s$b', createdAt: 6 };
      const alice = { username: `${prefix}-alice`, passwordHash: 'scrypt$1$2$3$s$h', createdAt: 5 };
      await s.users.add(bob);
      await s.users.add(alice);
      await assert.rejects(s.users.add(alice), 'duplicate username');
      assert.deepEqual(await s.users.get(alice.username), alice);
      assert.deepEqual(
        (await s.users.list()).filter((u) => u.username.startsWith(prefix)),
        [alice, bob],
        'by username',
      );
      assert.equal(await s.users.remove(alice.username), true);
      assert.equal(await s.users.remove(alice.username), false);
      assert.equal(await s.users.get(alice.username), undefined);
    });

    withStore(
      'users of the upstream IdP are created, updated, and never take over another identity',
      async (s) => {
        const name = `ext-${randomUUID()}`;
        const id = {
          issuer: 'https://idp.example',
          subject: 's-1',
          tenant: 'acme',
          groups: ['eng'],
          updatedAt: 1,
        };
        assert.equal(await s.users.putExternal(name, id, 10), 'created');
        assert.deepEqual(await s.users.get(name), {
          username: name,
          passwordHash: '',
          createdAt: 10,
          external: id,
        });
        const again = { ...id, groups: ['eng', 'ops'], tenant: undefined, updatedAt: 2 };
        assert.equal(await s.users.putExternal(name, again, 20), 'updated');
        const got = await s.users.get(name);
        assert.equal(got?.createdAt, 10, 'created once');
        assert.deepEqual(got?.external?.groups, ['eng', 'ops']);
        assert.equal(got?.external?.tenant, undefined);
        assert.equal(
          await s.users.putExternal(name, { ...id, subject: 's-2' }, 30),
          'conflict',
          'another sub',
        );
        assert.equal(await s.users.putExternal(name, { ...id, issuer: 'https://other' }, 30), 'conflict');
        const local = { username: `${name}-local`, passwordHash: 'scrypt$1$2$3$s$h', createdAt: 5 };
        await s.users.add(local);
        assert.equal(await s.users.putExternal(local.username, id, 30), 'conflict', 'a local user');
        assert.deepEqual(await s.users.get(local.username), local, 'untouched');
      },
    );

    // --- audit log --------------------------------------------------------

    withStore('audit rows are appended in batches and read back by range and head', async (s) => {
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
      assert.deepEqual(await s.audit.range(base + 1, base + 9, 10), [auditRow(base + 1), auditRow(base + 2)]);
      assert.deepEqual(await s.audit.range(base + 3, base + 9, 10), [], 'past the head');
      assert.deepEqual(await s.audit.range(base + 2, base + 1, 10), [], 'from after to');
      const b = await s.audit.bounds();
      assert.equal(b?.last, base + 2);
      assert.equal(b?.count, base + 3 - (b?.first ?? 0));
      assert.ok((await s.audit.checkpoints()).some((c) => c.seq === base + 2));
    });

    withStore('an audit batch is all or nothing (duplicate seq rejects the whole batch)', async (s) => {
      const base = ((await s.audit.bounds())?.last ?? 0) + 1;
      await s.audit.appendBatch([auditRow(base)]);
      await assert.rejects(s.audit.appendBatch([auditRow(base + 1), auditRow(base)], checkpoint(base + 1)));
      assert.equal((await s.audit.head())?.seq, base, 'nothing of the failed batch');
      assert.ok(!(await s.audit.checkpoints()).some((c) => c.seq === base + 1), 'nor its checkpoint');
    });

    withStore('an audit batch that does not continue the head is refused', async (s) => {
      const base = ((await s.audit.bounds())?.last ?? 0) + 1;
      await s.audit.appendBatch([auditRow(base)]);
      await assert.rejects(s.audit.appendBatch([auditRow(base + 2)]), 'a gap');
      await assert.rejects(s.audit.appendBatch([auditRow(base)]), 'a repeat');
      assert.equal((await s.audit.head())?.seq, base);
      await s.audit.appendBatch([auditRow(base + 1)]);
      assert.equal((await s.audit.head())?.seq, base + 1, 'the log still takes the next seq');
    });

    withStore('audit queries filter on every column, by seq, with time bounds and paging', async (s) => {
      const base = ((await s.audit.bounds())?.last ?? 0) + 1;
      const jti = `j-${randomUUID()}`;
      await s.audit.appendBatch(
        [1, 2, 3, 4].map((i) =>
          auditRow(base + i - 1, {
            jti,
            user: i <= 2 ? 'alice' : undefined,
            decision: i === 3 ? 'deny' : 'allow',
            sessionId: i === 4 ? `s-${jti}` : undefined,
          }),
        ),
      );
      const seqs = async (f: AuditFilter): Promise<number[]> =>
        (await s.audit.query({ jti, ...f })).map((r) => r.seq - base + 1);
      assert.deepEqual(await seqs({}), [1, 2, 3, 4]);
      assert.deepEqual(await seqs({ user: 'alice' }), [1, 2]);
      assert.deepEqual(await seqs({ decision: 'deny' }), [3]);
      assert.deepEqual(await seqs({ sessionId: `s-${jti}` }), [4]);
      assert.deepEqual(await seqs({ grantId: (base + 1) % 2 === 0 ? 'g-even' : 'g-odd' }), [2, 4]);
      assert.deepEqual(
        await seqs({ tool: 'read', server: 'files', agent: 'agent-a', type: 'call.attempted' }),
        [1, 2, 3, 4],
      );
      assert.deepEqual(await seqs({ requestId: `r-${base}` }), [1]);
      assert.deepEqual(await seqs({ since: 1000 + base + 1, until: 1000 + base + 3 }), [2, 3]);
      assert.deepEqual(await seqs({ afterSeq: base + 1, limit: 1 }), [3]);
      assert.deepEqual(await seqs({ tool: 'other' }), []);
      assert.deepEqual(await seqs({ user: 'alice', decision: 'deny' }), [], 'filters AND');
      assert.deepEqual(await seqs({ limit: 0 }), []);
      assert.equal(await s.audit.firstSeqAtOrAfter(1000 + base + 2), base + 2);
      assert.equal(await s.audit.firstSeqAtOrAfter(Number.MAX_SAFE_INTEGER), undefined);
    });

    withStore('audit queries page with afterSeq and limit until a page comes back empty', async (s) => {
      const base = ((await s.audit.bounds())?.last ?? 0) + 1;
      const jti = `j-${randomUUID()}`;
      await s.audit.appendBatch([0, 1, 2, 3, 4].map((i) => auditRow(base + i, { jti })));
      const pages: number[][] = [];
      let afterSeq: number | undefined;
      for (;;) {
        const page = await s.audit.query({ jti, limit: 2, ...(afterSeq === undefined ? {} : { afterSeq }) });
        const last = page[page.length - 1];
        if (!last) break;
        pages.push(page.map((r) => r.seq - base));
        afterSeq = last.seq;
      }
      assert.deepEqual(pages, [[0, 1], [2, 3], [4]]);
    });

    withStore('audit checkpoints are listed by seq; a later one at the same seq replaces it', async (s) => {
      const base = ((await s.audit.bounds())?.last ?? 0) + 1;
      await s.audit.appendBatch([auditRow(base), auditRow(base + 1)]);
      await s.audit.addCheckpoint(checkpoint(base + 1, '{"n":1}'));
      await s.audit.addCheckpoint(checkpoint(base, '{"n":1}'));
      await s.audit.addCheckpoint(checkpoint(base + 1, '{"n":2}'));
      const all = await s.audit.checkpoints();
      assert.deepEqual(
        all.map((c) => c.seq),
        all.map((c) => c.seq).sort((a, b) => a - b),
        'by seq',
      );
      const mine = all.filter((c) => c.seq >= base);
      assert.deepEqual(mine, [checkpoint(base, '{"n":1}'), checkpoint(base + 1, '{"n":2}')]);
    });

    withStore('audit prune deletes the prefix and old checkpoints, writing its checkpoint', async (s) => {
      const base = ((await s.audit.bounds())?.last ?? 0) + 1;
      await s.audit.appendBatch(
        [0, 1, 2, 3, 4].map((i) => auditRow(base + i)),
        checkpoint(base + 1),
      );
      const n = await s.audit.prune(base + 3, checkpoint(base + 4));
      assert.ok(n >= 3);
      assert.deepEqual(await s.audit.bounds(), { first: base + 3, last: base + 4, count: 2 });
      assert.deepEqual(await s.audit.range(1, base + 4, 10), [auditRow(base + 3), auditRow(base + 4)]);
      assert.deepEqual(
        (await s.audit.query({})).map((r) => r.seq),
        [base + 3, base + 4],
        'the query index is pruned too',
      );
      const cps = (await s.audit.checkpoints()).map((c) => c.seq);
      assert.ok(!cps.includes(base + 1), 'checkpoint below the floor removed');
      assert.ok(cps.includes(base + 4));
      assert.equal(
        await s.audit.prune(base + 3, checkpoint(base + 4)),
        0,
        'a floor at the first seq: nothing',
      );
      assert.equal((await s.audit.bounds())?.first, base + 3);
    });

    withStore(
      'audit appends are refused inside a transaction (a written record cannot roll back)',
      async (s) => {
        const base = ((await s.audit.bounds())?.last ?? 0) + 1;
        await assert.rejects(
          s.transaction(async (tx) => {
            await tx.audit.appendBatch([auditRow(base)]);
          }),
          /inside a storage transaction/,
        );
        assert.equal((await s.audit.head())?.seq ?? 0, base - 1);
      },
    );

    // --- grants -----------------------------------------------------------

    withStore('grants keep every field; an unknown id is undefined; a duplicate id is refused', async (s) => {
      const full = grant({
        kind: 'task',
        user: 'alice',
        tenant: 'acme',
        actors: ['agent-b', 'agent-a'],
        owner: 'alice',
        tools: ['files.read', 'files.list'],
        constraints: { 'files.read': { path: ['/tmp/a', '{"x":1}'] } },
        tokenId: 'jti-1',
        createdBy: 'token-exchange:client',
      });
      const anyTool = grant();
      const noTool = grant({ tools: [] });
      for (const g of [full, anyTool, noTool]) await s.grants.insert(g);
      assert.deepEqual(await s.grants.get(full.id), full);
      assert.deepEqual(await s.grants.get(anyTool.id), anyTool, 'optional fields stay undefined');
      assert.deepEqual(await s.grants.get(noTool.id), noTool, 'no tools stays distinct from any tool');
      assert.equal(await s.grants.get(randomUUID()), undefined);
      await assert.rejects(s.grants.insert(full));
    });

    withStore('ending a grant by id ends it once; an unknown id ends nothing', async (s) => {
      const g = grant();
      await s.grants.insert(g);
      assert.deepEqual(await s.grants.end({ id: g.id }, 'revoked', 100), [g.id]);
      assert.deepEqual(await s.grants.end({ id: g.id }, 'again', 200), [], 'already ended');
      const ended = await s.grants.get(g.id);
      assert.equal(ended?.endedAt, 100);
      assert.equal(ended?.endReason, 'revoked');
      assert.deepEqual(await s.grants.end({ id: randomUUID() }, 'revoked', 100), []);
    });

    withStore('ending grants by agent or user ends only that principal’s live grants', async (s) => {
      const agent = `agent-${randomUUID()}`;
      const user = `user-${randomUUID()}`;
      const a1 = grant({ agent });
      const a2 = grant({ agent, user: 'carol' });
      const other = grant({ user });
      const mine = grant({ user, agent });
      for (const g of [a1, a2, other, mine]) await s.grants.insert(g);
      await s.grants.end({ id: mine.id }, 'expired', 50);
      assert.deepEqual((await s.grants.end({ agent }, 'revoked', 100)).sort(), [a1.id, a2.id].sort());
      assert.equal((await s.grants.get(mine.id))?.endReason, 'expired', 'an ended grant is not ended again');
      assert.equal((await s.grants.get(other.id))?.endedAt, undefined);
      assert.deepEqual(await s.grants.end({ user }, 'revoked', 100), [other.id]);
      assert.deepEqual(await s.grants.end({ agent }, 'revoked', 100), []);
      assert.deepEqual(await s.grants.end({ user: `user-${randomUUID()}` }, 'revoked', 100), []);
    });

    withStore('endedSince lists grants ended at or after a time, by end time', async (s) => {
      const t = Date.now();
      const early = grant();
      const first = grant();
      const second = grant();
      for (const g of [early, first, second]) await s.grants.insert(g);
      await s.grants.end({ id: second.id }, 'revoked', t + 20);
      await s.grants.end({ id: early.id }, 'revoked', t + 5);
      await s.grants.end({ id: first.id }, 'expired', t + 10);
      const since = ours(await s.grants.endedSince(t + 10), [early, first, second]);
      assert.deepEqual(since, [
        { id: first.id, endedAt: t + 10, endReason: 'expired' },
        { id: second.id, endedAt: t + 20, endReason: 'revoked' },
      ]);
      assert.deepEqual(ours(await s.grants.endedSince(t + 21), [early, first, second]), []);
    });

    withStore('listLive returns grants neither ended nor expired at now, oldest first', async (s) => {
      const now = Date.now();
      const older = grant({ createdAt: 1 });
      const newer = grant({ createdAt: 2 });
      const expired = grant({ createdAt: 0, expiresAt: now });
      const ended = grant({ createdAt: 0 });
      for (const g of [newer, expired, ended, older]) await s.grants.insert(g);
      await s.grants.end({ id: ended.id }, 'revoked', now);
      const live = await s.grants.listLive(now);
      assert.deepEqual(ours(live, [older, newer, expired, ended]), [older, newer]);
      assert.deepEqual(ours(await s.grants.listLive(FAR), [older, newer]), [], 'expired at their expiry');
    });

    // --- token revocation list ---------------------------------------------

    withStore('revocation entries of every kind keep every field and are listed while live', async (s) => {
      const t = Date.now();
      const entries = [
        revocation({ kind: 'jti', recordedAt: t + 1 }),
        revocation({ kind: 'agent', value: `agent-${randomUUID()}`, recordedAt: t + 2 }),
        revocation({
          kind: 'user',
          value: `user-${randomUUID()}`,
          notBefore: 1_700_000_000,
          recordedAt: t + 3,
        }),
        revocation({
          kind: 'agent+user',
          value: JSON.stringify([`agent-${randomUUID()}`, null]),
          reason: 'grant gr_x revoked',
          recordedAt: t + 4,
        }),
      ];
      for (const e of entries) await s.revocations.add(e);
      assert.deepEqual(ourRevocations(await s.revocations.listLive(t), entries), entries, 'by recordedAt');
      const sameValue = revocation({ kind: 'user', value: entries[0]?.value ?? '' });
      await s.revocations.add(sameValue);
      assert.equal(
        ourRevocations(await s.revocations.listLive(t), [...entries, sameValue]).length,
        5,
        'kinds are separate namespaces',
      );
    });

    withStore(
      'adding an entry again keeps the later notBefore and expiry, takes the new time and reason',
      async (s) => {
        const first = revocation({
          kind: 'agent',
          value: `agent-${randomUUID()}`,
          notBefore: 500,
          expiresAt: FAR - 10,
        });
        await s.revocations.add(first);
        await s.revocations.add({
          ...first,
          notBefore: 400,
          expiresAt: FAR - 20,
          recordedAt: first.recordedAt + 5,
          reason: 'older',
        });
        assert.deepEqual(
          ourRevocations(await s.revocations.listLive(0), [first]),
          [{ ...first, recordedAt: first.recordedAt + 5, reason: 'older' }],
          'an earlier notBefore or expiry never lowers the entry',
        );
        await s.revocations.add({
          ...first,
          notBefore: 900,
          expiresAt: FAR,
          recordedAt: first.recordedAt + 9,
          reason: 'again',
        });
        assert.deepEqual(ourRevocations(await s.revocations.listLive(0), [first]), [
          { ...first, notBefore: 900, expiresAt: FAR, recordedAt: first.recordedAt + 9, reason: 'again' },
        ]);
      },
    );

    withStore('recordedSince lists entries recorded at or after a time, by record time', async (s) => {
      const t = Date.now();
      const early = revocation({ recordedAt: t + 5 });
      const first = revocation({ kind: 'user', value: `user-${randomUUID()}`, recordedAt: t + 10 });
      const second = revocation({ recordedAt: t + 20 });
      for (const e of [second, early, first]) await s.revocations.add(e);
      const all = [early, first, second];
      assert.deepEqual(ourRevocations(await s.revocations.recordedSince(t + 10), all), [first, second]);
      assert.deepEqual(ourRevocations(await s.revocations.recordedSince(t + 21), all), []);
      const raised = { ...early, notBefore: early.notBefore + 1, recordedAt: t + 30 };
      await s.revocations.add(raised);
      assert.deepEqual(
        ourRevocations(await s.revocations.recordedSince(t + 21), all),
        [raised],
        'a raised entry is seen again by pollers',
      );
    });

    withStore(
      'listLive and purge: an entry lives until its expiry, then purge removes it once',
      async (s) => {
        const at = Date.now() + 3_600_000;
        const old = revocation({ expiresAt: at });
        const later = revocation({ kind: 'agent', value: `agent-${randomUUID()}`, expiresAt: at + 1 });
        await s.revocations.add(old);
        await s.revocations.add(later);
        assert.deepEqual(ourRevocations(await s.revocations.listLive(at - 1), [old, later]), [old, later]);
        assert.deepEqual(
          ourRevocations(await s.revocations.listLive(at), [old, later]),
          [later],
          'expired at its expiry',
        );
        await s.revocations.purge(at - 1);
        assert.equal(ourRevocations(await s.revocations.listLive(0), [old, later]).length, 2, 'not yet');
        assert.ok((await s.revocations.purge(at)) >= 1);
        assert.deepEqual(ourRevocations(await s.revocations.listLive(0), [old, later]), [later]);
        assert.deepEqual(
          ourRevocations(await s.revocations.recordedSince(0), [old]),
          [],
          'gone for pollers too',
        );
      },
    );

    // --- credential leases and blocks -------------------------------------

    withStore(
      'leases are live, oldest first, until they expire or end; a duplicate id is refused',
      async (s) => {
        const now = Date.now();
        const older = lease({ createdAt: 1, kind: 'minted', user: undefined });
        const newer = lease({ createdAt: 2, kind: 'user' });
        const expired = lease({ createdAt: 0, expiresAt: now });
        for (const l of [newer, expired, older]) await s.leases.insert(l);
        const live = await s.leases.listLive(now);
        assert.deepEqual(ours(live, [older, newer, expired]), [older, newer]);
        await assert.rejects(s.leases.insert(older));
      },
    );

    withStore('ending leases by each selector ends the matching live ones once', async (s) => {
      const user = `user-${randomUUID()}`;
      const l = {
        id: lease(),
        grant: lease(),
        service: lease(),
        agent: lease(),
        user: lease({ user }),
        secret: lease(),
      };
      const sibling = lease({ grantId: l.grant.grantId });
      const all = [...Object.values(l), sibling];
      for (const x of all) await s.leases.insert(x);
      const selectors: [LeaseSelector, string[]][] = [
        [{ id: l.id.id }, [l.id.id]],
        [{ grant: l.grant.grantId }, [l.grant.id, sibling.id].sort()],
        [{ service: l.service.service }, [l.service.id]],
        [{ agent: l.agent.agent }, [l.agent.id]],
        [{ user }, [l.user.id]],
        [{ secret: l.secret.credential }, [l.secret.id]],
      ];
      for (const [selector, ids] of selectors) {
        assert.deepEqual(
          (await s.leases.end(selector, 'revoked', 100)).sort(),
          ids,
          JSON.stringify(selector),
        );
        assert.deepEqual(await s.leases.end(selector, 'revoked', 200), [], 'already ended');
      }
      assert.deepEqual(ours(await s.leases.listLive(0), all), []);
      assert.deepEqual(await s.leases.end({ id: randomUUID() }, 'revoked', 100), []);
    });

    withStore('lease endedSince lists leases ended at or after a time, by end time', async (s) => {
      const t = Date.now();
      const early = lease();
      const first = lease();
      const second = lease();
      for (const l of [early, first, second]) await s.leases.insert(l);
      await s.leases.end({ id: second.id }, 'revoked', t + 20);
      await s.leases.end({ id: early.id }, 'revoked', t + 5);
      await s.leases.end({ id: first.id }, 'grant_ended', t + 10);
      const since = ours(await s.leases.endedSince(t + 10), [early, first, second]);
      assert.deepEqual(since, [
        { id: first.id, endReason: 'grant_ended' },
        { id: second.id, endReason: 'revoked' },
      ]);
      assert.deepEqual(ours(await s.leases.endedSince(t + 21), [early, first, second]), []);
    });

    withStore(
      'credential blocks are set per kind and name, replaced, listed by time and lifted once',
      async (s) => {
        const name = `cred-${randomUUID()}`;
        const mine = async () => (await s.leases.blocks()).filter((b) => b.name === name);
        await s.leases.block({ kind: 'secret', name, reason: 'leaked', createdAt: 2 });
        await s.leases.block({ kind: 'service', name, reason: 'incident', createdAt: 1 });
        assert.deepEqual(await mine(), [
          { kind: 'service', name, reason: 'incident', createdAt: 1 },
          { kind: 'secret', name, reason: 'leaked', createdAt: 2 },
        ]);
        await s.leases.block({ kind: 'secret', name, reason: 'still leaked', createdAt: 3 });
        assert.deepEqual(
          (await mine()).filter((b) => b.kind === 'secret'),
          [{ kind: 'secret', name, reason: 'still leaked', createdAt: 3 }],
          'one block per kind and name',
        );
        assert.equal(await s.leases.unblock('secret', name), true);
        assert.equal(await s.leases.unblock('secret', name), false);
        assert.equal(await s.leases.unblock('service', `cred-${randomUUID()}`), false);
        assert.deepEqual(await mine(), [{ kind: 'service', name, reason: 'incident', createdAt: 1 }]);
      },
    );

    // --- approvals ----------------------------------------------------------

    withStore('approvals: a request is read back as written, found by digest (newest first)', async (s) => {
      const a = approval({ tenant: 'acme', owner: undefined, user: undefined });
      await s.approvals.insert(a);
      assert.deepEqual(await s.approvals.get(a.id), a);
      const b = approval({ digest: a.digest, createdAt: a.createdAt + 1 });
      await s.approvals.insert(b);
      assert.equal((await s.approvals.latestByDigest(a.digest))?.id, b.id);
      assert.equal(await s.approvals.latestByDigest(randomUUID()), undefined);
      assert.equal(await s.approvals.get('apr_missing'), undefined);
      const listed = (await s.approvals.list({ states: ['pending'] })).map((r) => r.id);
      assert.ok(listed.includes(a.id) && listed.includes(b.id));
      assert.ok(listed.indexOf(b.id) < listed.indexOf(a.id), 'newest first');
      assert.ok(!(await s.approvals.list({ states: ['denied'] })).some((r) => r.id === a.id));
    });

    withStore('approvals: the first decision wins; expired requests cannot be decided', async (s) => {
      const a = approval();
      await s.approvals.insert(a);
      const d = { by: 'carol', reason: 'fine', channel: 'cli', at: Date.now() };
      assert.equal(await s.approvals.decide(a.id, { ...d, state: 'approved' }), 'decided');
      assert.equal(await s.approvals.decide(a.id, { ...d, state: 'denied' }), 'not_pending');
      const got = await s.approvals.get(a.id);
      assert.equal(got?.state, 'approved');
      assert.equal(got?.decision, 'approved');
      assert.equal(got?.decidedBy, 'carol');
      assert.equal(got?.reason, 'fine');
      assert.equal(got?.channel, 'cli');
      assert.equal(await s.approvals.decide('apr_missing', { ...d, state: 'approved' }), 'not_found');
      const old = approval({ expiresAt: 1000 });
      await s.approvals.insert(old);
      assert.equal(await s.approvals.decide(old.id, { ...d, state: 'approved' }), 'expired');
    });

    withStore(
      'approvals: single use: one consumer wins, and only an approved, unexpired request',
      async (s) => {
        const a = approval();
        await s.approvals.insert(a);
        const now = Date.now();
        assert.equal(await s.approvals.consume(a.id, now), false, 'pending cannot be consumed');
        await s.approvals.decide(a.id, {
          state: 'approved',
          by: 'carol',
          reason: undefined,
          channel: 'cli',
          at: now,
        });
        const both = await Promise.all([s.approvals.consume(a.id, now), s.approvals.consume(a.id, now)]);
        assert.deepEqual(both.sort(), [false, true]);
        const got = await s.approvals.get(a.id);
        assert.equal(got?.state, 'consumed');
        assert.equal(got?.consumedAt, now);
        assert.equal(got?.decision, 'approved', 'the decision is kept');
        const denied = approval();
        await s.approvals.insert(denied);
        await s.approvals.decide(denied.id, {
          state: 'denied',
          by: 'carol',
          reason: 'no',
          channel: 'cli',
          at: now,
        });
        assert.equal(await s.approvals.consume(denied.id, now), false);
      },
    );

    withStore('approvals: expiry ends pending and approved requests, never final ones', async (s) => {
      const t = Date.now();
      const pending = approval({ expiresAt: t + 10 });
      const approved = approval({ expiresAt: t + 10 });
      const later = approval({ expiresAt: t + 1_000_000 });
      for (const r of [pending, approved, later]) await s.approvals.insert(r);
      await s.approvals.decide(approved.id, {
        state: 'approved',
        by: 'c',
        reason: undefined,
        channel: 'cli',
        at: t,
      });
      const expired = await s.approvals.expire(t + 10);
      assert.ok(expired.includes(pending.id) && expired.includes(approved.id));
      assert.ok(!expired.includes(later.id));
      assert.equal((await s.approvals.get(pending.id))?.state, 'expired');
      assert.equal(await s.approvals.consume(approved.id, t), false, 'an expired approval is never consumed');
      assert.deepEqual(
        (await s.approvals.expire(t + 10)).filter((id) => id === pending.id),
        [],
        'expired once',
      );
    });

    withStore('approvals: a decision is announced once', async (s) => {
      const a = approval();
      await s.approvals.insert(a);
      assert.ok(
        !(await s.approvals.unannounced()).some((r) => r.id === a.id),
        'pending: nothing to announce',
      );
      await s.approvals.decide(a.id, {
        state: 'denied',
        by: 'c',
        reason: 'no',
        channel: 'cli',
        at: Date.now(),
      });
      assert.ok((await s.approvals.unannounced()).some((r) => r.id === a.id));
      const claims = await Promise.all([s.approvals.announce(a.id), s.approvals.announce(a.id)]);
      assert.deepEqual(claims.sort(), [false, true]);
      assert.ok(!(await s.approvals.unannounced()).some((r) => r.id === a.id));
      assert.ok((await s.approvals.countPending()) >= 0);
    });
    // --- definitions (tool-definition pinning) ------------------------------

    withStore(
      'definitions: first use pins once per server, kind and name; a second pin is refused',
      async (s) => {
        const server = `srv-${randomUUID()}`;
        const a = definition(server, {
          status: 'pinned',
          findings: [{ type: 'definition', start: 0, end: 3, detail: 'd' }],
        });
        assert.equal(await s.definitions.pin(a), true);
        assert.equal(
          await s.definitions.pin(definition(server, { status: 'pinned' })),
          false,
          'one pin per name',
        );
        assert.equal(await s.definitions.pin(a), false, 'same hash again');
        assert.equal(await s.definitions.pin(definition(server, { name: 'other', status: 'pinned' })), true);
        const rows = await s.definitions.list({ server });
        assert.deepEqual(
          rows.map((r) => [r.name, r.status, r.hash]),
          [
            ['fact', 'pinned', a.hash],
            ['other', 'pinned', rows[1]?.hash],
          ],
        );
        assert.deepEqual(rows[0], a, 'read back as written');
      },
    );

    withStore(
      'definitions: a newer pending one replaces the older; approve supersedes the pin; reject keeps it out',
      async (s) => {
        const server = `srv-${randomUUID()}`;
        const pinned = definition(server, { status: 'pinned', updatedAt: 10 });
        await s.definitions.pin(pinned);
        const first = definition(server, { updatedAt: 20 });
        const second = definition(server, { updatedAt: 30 });
        assert.equal(await s.definitions.propose(first), true);
        assert.equal(await s.definitions.propose(first), false, 'a hash with a row stays as it is');
        assert.equal(await s.definitions.propose(second), true);
        assert.deepEqual(
          (await s.definitions.list({ server, status: 'pending' })).map((r) => r.hash),
          [second.hash],
          'only the newest pending definition waits',
        );
        assert.equal(
          await s.definitions.approve({ server, kind: 'tool', name: 'fact', hash: first.hash }, 'alice', 40),
          false,
        );
        assert.equal(
          await s.definitions.reject({ server, kind: 'tool', name: 'fact', hash: second.hash }, 'alice', 40),
          true,
        );
        assert.equal(
          await s.definitions.reject({ server, kind: 'tool', name: 'fact', hash: second.hash }, 'alice', 41),
          false,
        );
        assert.equal(await s.definitions.propose(second), false, 'a rejected hash is not proposed again');
        const third = definition(server, { updatedAt: 50 });
        await s.definitions.propose(third);
        assert.equal(
          await s.definitions.approve({ server, kind: 'tool', name: 'fact', hash: third.hash }, 'bob', 60),
          true,
        );
        const rows = await s.definitions.list({ server });
        assert.deepEqual(
          rows.map((r) => [r.hash, r.status, r.decidedBy, r.updatedAt]),
          [
            [second.hash, 'rejected', 'alice', 40],
            [third.hash, 'pinned', 'bob', 60],
          ],
        );
        const changed = (await s.definitions.changedSince(60)).filter((r) => r.server === server);
        assert.deepEqual(
          changed.map((r) => [r.hash, r.status]).sort(),
          [
            [pinned.hash, 'superseded'],
            [third.hash, 'pinned'],
          ].sort(),
          'the superseded pin is reported to pollers',
        );
        assert.equal(
          await s.definitions.approve({ server, kind: 'tool', name: 'fact', hash: second.hash }, 'carol', 70),
          true,
          'a rejected one may still be approved',
        );
        assert.deepEqual(
          (await s.definitions.list({ server, status: 'pinned' })).map((r) => r.hash),
          [second.hash],
        );
        assert.equal(
          await s.definitions.propose({ ...third, updatedAt: 80 }),
          true,
          'a superseded pin offered again waits for review',
        );
        const back = (await s.definitions.list({ server, status: 'pending' })).map((r) => [
          r.hash,
          r.updatedAt,
        ]);
        assert.deepEqual(back, [[third.hash, 80]]);
        assert.equal(
          await s.definitions.approve({ server, kind: 'tool', name: 'fact', hash: third.hash }, 'dan', 90),
          true,
        );
      },
    );
  });
}
