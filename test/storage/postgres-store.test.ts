/**
 * What the PostgreSQL store does beyond the contract: migrations (versioned, forward only, one
 * runner at a time across processes), `migrate: manual`, typed failures, its config, and audit
 * columns kept byte for byte. On the real server (test/helpers/postgres.ts), random schemas.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { recordBody } from '../../src/audit/chain.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { StoreError } from '../../src/storage/errors.ts';
import { storageHealth } from '../../src/storage/open.ts';
import { PostgresStorage } from '../../src/storage/postgres/index.ts';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.ts';
import type { AuditRow } from '../../src/storage/types.ts';
import { dropSchemas, PG_URL, pgQuery, randomSchema } from '../helpers/postgres.ts';

const schemas: string[] = [];
after(() => dropSchemas(...schemas));

function schema(): string {
  const s = randomSchema();
  schemas.push(s);
  return s;
}

function row(seq: number, columns: Partial<AuditRow> = {}): AuditRow {
  const prevHash = String(seq - 1).padStart(64, '0');
  return {
    seq,
    prevHash,
    hash: String(seq).padStart(64, '0'),
    body: recordBody(seq, prevHash, '{"type":"call.attempted"}'),
    eventId: `e-${seq}`,
    time: 1000 + seq,
    type: 'call.attempted',
    requestId: undefined,
    grantId: undefined,
    sessionId: undefined,
    agent: 'agent',
    user: undefined,
    jti: undefined,
    server: 'files',
    tool: 'files__read',
    decision: 'allow',
    ...columns,
  };
}

describe('migrations', () => {
  test('replicas starting at once on a new schema: one applies each migration, all start', async () => {
    const s = schema();
    const stores = Array.from(
      { length: 4 },
      () => new PostgresStorage({ url: PG_URL, schema: s, poolMax: 2 }),
    );
    try {
      const results = await Promise.all(stores.map((st) => st.ready()));
      const all = MIGRATIONS.map((_, i) => i + 1);
      assert.deepEqual(
        results.map((r) => r.applied).filter((a) => a.length > 0),
        [all],
        'exactly one runner applied the migrations',
      );
      for (const r of results) assert.equal(r.to, MIGRATIONS.length);
      const rows = await pgQuery<{ version: number }>(
        `SELECT version FROM ${s}.schema_migrations ORDER BY version`,
      );
      assert.deepEqual(
        rows.map((r) => r.version),
        all,
      );
    } finally {
      await Promise.all(stores.map((st) => st.close()));
    }
  });

  test('migrate: manual refuses a schema that lacks migrations, with the verb to run', async () => {
    const s = schema();
    const manual = new PostgresStorage({ url: PG_URL, schema: s, migrate: 'manual' });
    try {
      await assert.rejects(manual.ready(), (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.equal(err.code, 'store_schema_behind');
        assert.match(err.message, /gatehouse migrate/);
        return true;
      });
      // Every statement fails the same way: nothing is read from or written to a schema not migrated.
      await assert.rejects(manual.sessions.listOpen(), StoreError);
      assert.equal(await manual.schemaVersion(), 0);
    } finally {
      await manual.close();
    }
    const runner = new PostgresStorage({ url: PG_URL, schema: s, migrate: 'manual' });
    try {
      assert.deepEqual((await runner.migrate()).applied, [1]);
      assert.deepEqual((await runner.migrate()).applied, [], 'forward only: nothing twice');
    } finally {
      await runner.close();
    }
    const again = new PostgresStorage({ url: PG_URL, schema: s, migrate: 'manual' });
    try {
      await again.ready();
      assert.deepEqual(await again.sessions.listOpen(), []);
    } finally {
      await again.close();
    }
  });

  test('an unreachable server is a StoreError naming storage.postgres.url; readyz health says not ok', async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const s = new PostgresStorage({
      url: 'postgres://postgres@127.0.0.1:1/postgres',
      connectTimeoutMs: 2000,
    });
    try {
      await assert.rejects(s.ready(), (err: unknown) => {
        assert.ok(err instanceof StoreError);
        assert.equal(err.code, 'store_unreachable');
        assert.match(err.message, /storage\.postgres\.url/);
        return true;
      });
      const health = await storageHealth(s);
      assert.equal(health.kind, 'postgres');
      assert.equal(health.ok, false);
    } finally {
      await s.close();
    }
  });

  test('a schema name that is not a plain identifier is refused before any SQL', () => {
    assert.throws(
      () => new PostgresStorage({ url: PG_URL, schema: 'x"; DROP SCHEMA public; --' }),
      (err: unknown) => err instanceof StoreError && err.code === 'store_config',
    );
  });
});

describe('config', () => {
  const upstreams = { demo: { type: 'http', url: 'http://127.0.0.1/unused' } };

  test('storage.kind postgres without a url names storage.postgres.url', () => {
    assert.throws(
      () => parseConfig({ upstreams, storage: { kind: 'postgres' } }),
      (err: unknown) => err instanceof ConfigError && /storage\.postgres\.url/.test(err.message),
    );
  });

  test('a bad url, schema or pool size names its key', () => {
    const bad = (postgres: Record<string, unknown>, key: RegExp) =>
      assert.throws(
        () =>
          parseConfig({ upstreams, storage: { kind: 'postgres', postgres: { url: PG_URL, ...postgres } } }),
        (err: unknown) => err instanceof ConfigError && key.test(err.message),
      );
    bad({ url: 'mysql://x' }, /storage\.postgres\.url/);
    bad({ schema: 'Bad-Name' }, /storage\.postgres\.schema/);
    bad({ pool: { max: 0 } }, /storage\.postgres\.pool\.max/);
    bad({ migrate: 'sometimes' }, /storage\.postgres\.migrate/);
  });

  test('defaults: sqlite; postgres with schema gatehouse, pool 10, migrate auto', () => {
    assert.equal(parseConfig({ upstreams }).storage.kind, 'sqlite');
    const c = parseConfig({ upstreams, storage: { kind: 'postgres', postgres: { url: PG_URL } } });
    assert.equal(c.storage.postgres.schema, 'gatehouse');
    assert.equal(c.storage.postgres.pool.max, 10);
    assert.equal(c.storage.postgres.migrate, 'auto');
  });
});

describe('client text PostgreSQL TEXT cannot hold', () => {
  test('T31: a session whose clientInfo name holds a NUL is still recorded (NUL shown as U+FFFD)', async () => {
    const s = new PostgresStorage({ url: PG_URL, schema: schema() });
    try {
      const rec = {
        id: 'odd-client',
        protocolVersion: '2025-11-25',
        clientName: 'evil\u0000name',
        clientVersion: '1\u0000',
        createdAt: 1,
        closedAt: undefined,
        closeReason: undefined,
      };
      await s.sessions.insert(rec);
      assert.deepEqual(await s.sessions.get(rec.id), {
        ...rec,
        clientName: 'evil\ufffdname',
        clientVersion: '1\ufffd',
      });
    } finally {
      await s.close();
    }
  });
});

describe('audit on PostgreSQL', () => {
  test('T32: query columns keep any text a client sent (NUL, escaped lone surrogate) byte for byte', async () => {
    const s = new PostgresStorage({ url: PG_URL, schema: schema() });
    try {
      const odd = 'req\u0000id \\ud800 \u{1F600}';
      const r = row(1, { requestId: odd, agent: 'a\u0000b' });
      await s.audit.appendBatch([r, row(2)]);
      assert.deepEqual(await s.audit.range(1, 2, 10), [r, row(2)]);
      assert.deepEqual(
        (await s.audit.query({ requestId: odd })).map((x) => x.seq),
        [1],
      );
      assert.deepEqual(
        (await s.audit.query({ agent: 'a\u0000b' })).map((x) => x.seq),
        [1],
      );
      assert.deepEqual(
        (await s.audit.query({ tool: 'read' })).map((x) => x.seq),
        [1, 2],
        'a plain name finds server__tool',
      );
    } finally {
      await s.close();
    }
  });

  test('two writers of one chain: the second batch at the same seq is refused, the chain stays whole', async () => {
    const sc = schema();
    const a = new PostgresStorage({ url: PG_URL, schema: sc });
    const b = new PostgresStorage({ url: PG_URL, schema: sc });
    try {
      await a.ready();
      const results = await Promise.allSettled([
        a.audit.appendBatch([row(1), row(2)]),
        b.audit.appendBatch([row(1, { eventId: 'other' })]),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const head = (await a.audit.head())?.seq;
      assert.ok(head === 1 || head === 2);
      assert.equal((await a.audit.bounds())?.count, head);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('chains are separate: each store reads and continues its own', async () => {
    const sc = schema();
    const a = new PostgresStorage({ url: PG_URL, schema: sc, auditChain: 'replica-a' });
    const b = new PostgresStorage({ url: PG_URL, schema: sc, auditChain: 'replica-b' });
    try {
      await a.audit.appendBatch([row(1), row(2)]);
      await b.audit.appendBatch([row(1)]);
      assert.equal((await a.audit.head())?.seq, 2);
      assert.equal((await b.audit.head())?.seq, 1);
      assert.equal((await b.audit.query({})).length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
