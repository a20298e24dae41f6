/**
 * The gateway on the PostgreSQL store (storage.kind: postgres), through the real stack: a real SDK
 * client, a stdio MCP server, the real `gatehouse` CLI in other processes sharing the store. A grant
 * is used, revoked by `gatehouse grants revoke` (another process, through PostgreSQL: the gateway's
 * poll notices), and `gatehouse audit verify` checks the chain the gateway wrote to PostgreSQL.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { PostgresStorage } from '../../src/storage/postgres/index.ts';
import {
  connectClient,
  eventually,
  startCliGateway,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.ts';
import { dropSchemas, PG_URL, randomSchema } from '../helpers/postgres.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const TOOL_SERVER = join(ROOT, 'test/fixtures/tool-server.ts');
const schema = randomSchema();
let work: string;
let gw: TestGateway;
let cliConfig: string;
let events: string;

/** The real CLI in a process of its own (asynchronous: the test's client keeps running meanwhile). */
function gatehouse(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), ...args],
      { cwd: ROOT, timeout: 60_000 },
      (error, out, err) => resolve({ code: error ? Number(error.code ?? 1) : 0, out, err }),
    );
  });
}

/** What the tool server did (TOOL_SERVER_EVENTS). */
function seen(): string[] {
  return existsSync(events) ? readFileSync(events, 'utf8').trim().split('\n') : [];
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-pg-e2e-'));
  mkdirSync(join(work, 'data'), { mode: 0o700 });
  events = join(work, 'events.log');
  const storage = { kind: 'postgres' as const, postgres: { url: PG_URL, schema } };
  gw = await startTestGateway(
    {
      storage,
      upstreams: {
        work: {
          type: 'stdio',
          command: process.execPath,
          args: ['--import', 'tsx', TOOL_SERVER],
          cwd: ROOT,
          env: { TOOL_SERVER_EVENTS: events },
          pool: { warm: 0 },
        },
      },
    },
    { dataDir: join(work, 'data'), keepDataDir: true },
  );
  // What the CLI verbs need to find the same store (a config file; JSON is YAML).
  cliConfig = join(work, 'gatehouse.yaml');
  writeFileSync(
    cliConfig,
    JSON.stringify({ storage, upstreams: { work: { type: 'http', url: 'http://127.0.0.1/unused' } } }),
  );
});

after(async () => {
  await gw?.close();
  rmSync(work, { recursive: true, force: true });
  await dropSchemas(schema);
});

test('T26, T27: a grant on PostgreSQL: call, revoke from another process, refused; readyz reports the store; audit verify passes', async () => {
  const client: Client = await connectClient(gw.url);
  const ok = await client.callTool({ name: 'work__search_code', arguments: { q: 'todo' } });
  assert.deepEqual(ok.content, [{ type: 'text', text: 'found todo' }]);

  const ready = await fetch(`${gw.origin}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(((await ready.json()) as { store: unknown }).store, { kind: 'postgres', ok: true });

  // Another process's view of the same schema: the session's grant is there.
  const other = new PostgresStorage({ url: PG_URL, schema });
  let grantId: string;
  try {
    const live = await other.grants.listLive(Date.now());
    assert.equal(live.length, 1);
    grantId = (live[0] as { id: string }).id;
  } finally {
    await other.close();
  }

  // A call in flight when the grant is revoked in another process: the gateway notices on its next
  // poll of the store (250 ms), cancels it and answers grant_ended; the session goes with the grant.
  const inFlight = client.callTool({ name: 'work__slow', arguments: { ms: 60_000 } }).then(
    () => assert.fail('the slow call completed'),
    (e: unknown) => e,
  );
  await eventually('the upstream started the slow call', () => seen().includes('called slow'));
  const revoked = await gatehouse(
    'grants',
    'revoke',
    grantId,
    '--config',
    cliConfig,
    '--data-dir',
    gw.dataDir,
  );
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, new RegExp(`revoked 1 grant\\(s\\):\\n  ${grantId}`));
  const err = await inFlight;
  assert.ok(err instanceof McpError, String(err));
  assert.equal(err.code, -32022, err.message);
  await eventually('the upstream saw notifications/cancelled', () => seen().includes('cancelled slow'));
  await assert.rejects(client.callTool({ name: 'work__search_code', arguments: { q: 'again' } }));
  await client.close().catch(() => {});
  await gw.close();

  const verified = await gatehouse(
    'audit',
    'verify',
    '--json',
    '--config',
    cliConfig,
    '--data-dir',
    gw.dataDir,
  );
  assert.equal(verified.code, 0, verified.err);
  const result = JSON.parse(verified.out) as { ok: boolean; checked: number; breaks: unknown[] };
  assert.equal(result.ok, true);
  assert.deepEqual(result.breaks, []);
  assert.ok(result.checked >= 4, `records checked: ${result.checked}`);

  const found = await gatehouse(
    'audit',
    'query',
    '--json',
    '--tool',
    'work__search_code',
    '--config',
    cliConfig,
    '--data-dir',
    gw.dataDir,
  );
  assert.equal(found.code, 0, found.err);
  assert.match(found.out, /work__search_code/);

  const status = await gatehouse('migrate', '--status', '--config', cliConfig);
  assert.equal(status.code, 0, status.err);
  assert.match(status.out, new RegExp(`postgres schema ${schema}: version 1, this build needs 1`));
});

test('check-config --connect: a reachable store is ok; an unreachable one names storage.postgres.url', async () => {
  const good = await gatehouse('check-config', cliConfig, '--connect');
  assert.equal(good.code, 0, good.err);
  assert.match(good.out, /: ok\n$/);
  const badConfig = join(work, 'unreachable.yaml');
  writeFileSync(
    badConfig,
    JSON.stringify({
      storage: { kind: 'postgres', postgres: { url: 'postgres://postgres@127.0.0.1:1/postgres' } },
      upstreams: { work: { type: 'http', url: 'http://127.0.0.1/unused' } },
    }),
  );
  const bad = await gatehouse('check-config', badConfig, '--connect');
  assert.equal(bad.code, 1);
  assert.match(bad.err, /storage\.postgres\.url: /);
  // Without --connect the file alone is checked: no connection is attempted.
  assert.equal((await gatehouse('check-config', badConfig)).code, 0);
});

test('migrate: manual through the real CLI: start refuses a schema behind, gatehouse migrate applies, start serves', async () => {
  const fresh = randomSchema();
  const manualConfig = join(work, 'manual.yaml');
  writeFileSync(
    manualConfig,
    JSON.stringify({
      auth: { mode: 'none' },
      storage: { kind: 'postgres', postgres: { url: PG_URL, schema: fresh, migrate: 'manual' } },
      upstreams: { work: { type: 'http', url: 'http://127.0.0.1/unused' } },
    }),
  );
  const dataDir = join(work, 'manual-data');
  try {
    const check = await gatehouse('check-config', manualConfig, '--connect');
    assert.equal(check.code, 1);
    assert.match(
      check.err,
      /storage\.postgres\.migrate: schema `gh_test_\w+` is at version 0, this build needs 1/,
    );
    const refused = await gatehouse('start', '--config', manualConfig, '--port', '0', '--data-dir', dataDir);
    assert.equal(refused.code, 1, 'start fails closed');
    assert.match(refused.err, /is at version 0, this build needs 1: run `gatehouse migrate`/);
    const status = await gatehouse('migrate', '--status', '--config', manualConfig);
    assert.equal(status.code, 1, 'behind');
    const applied = await gatehouse('migrate', '--config', manualConfig);
    assert.equal(applied.code, 0, applied.err);
    assert.match(applied.out, new RegExp(`postgres schema ${fresh}: applied 1 \\(version 0 -> 1\\)`));
    const again = await gatehouse('migrate', '--config', manualConfig);
    assert.match(again.out, /up to date at version 1/);
    const gw2 = await startCliGateway(['--config', manualConfig, '--data-dir', dataDir]);
    try {
      const ready = await fetch(`${gw2.origin}/readyz`);
      assert.deepEqual(((await ready.json()) as { store: unknown }).store, { kind: 'postgres', ok: true });
    } finally {
      gw2.child.kill('SIGTERM');
      await new Promise((r) => gw2.child.once('exit', r));
    }
  } finally {
    await dropSchemas(fresh);
  }
});
