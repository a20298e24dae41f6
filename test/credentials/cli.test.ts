/**
 * `gatehouse credentials list|revoke|unblock` (src/cli/credentials.ts), run as the real CLI in child
 * processes against a data dir whose SQLite store (src/storage/sqlite/index.ts) the test seeds with leases.
 * Proves that `list` shows the live leases only (and `--json` is JSON), that a revocation needs exactly
 * one target (exit 2, usage, nothing ended), that `revoke --service` ends that service's leases and no
 * other, that `revoke --secret` ends the secret's leases and blocks it until `unblock --secret` lifts
 * the block, that `--block` without `--service` is refused, and that an unknown data dir is an error
 * (exit 1) that does not create a database.
 *
 * Each CLI start costs seconds of CPU (tsx, the whole CLI's imports), so every command is started in
 * `before`, as many at a time as there are CPUs: the ones that must change nothing share one seeded
 * data dir, each one that changes the store gets its own; the tests then check outputs and stores.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import type { CredentialBlock, LeaseRecord } from '../../src/storage/types.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'index.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const dirs: string[] = [];

/** A new data dir whose store holds LEASES and EXPIRED. */
async function seeded(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-credentials-cli-'));
  dirs.push(dir);
  await withStorage(dir, async (s) => {
    for (const l of [...LEASES, EXPIRED]) await s.leases.insert(l);
  });
  return dir;
}

/** CLI starts are CPU-bound: about as many at once as there are CPUs (more only makes each slower). */
let freeSlots = Math.max(2, availableParallelism());
const waiting: (() => void)[] = [];

async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (freeSlots > 0) freeSlots--;
  else await new Promise<void>((r) => waiting.push(r));
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else freeSlots++;
  }
}

/** Runs `gatehouse credentials ...args --data-dir dir` in a child process. */
function credentials(dir: string, args: string[]): Promise<Run> {
  return limited(() => run(dir, args));
}

function run(dir: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, 'credentials', ...args, '--data-dir', dir],
      { cwd: ROOT, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Opens the data dir's store for `fn`, then closes it. */
async function withStorage<T>(dir: string, fn: (s: SqliteStorage) => Promise<T>): Promise<T> {
  const storage = new SqliteStorage(join(dir, 'gatehouse.db'));
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

const NOW = Date.now();
const HOUR = 3_600_000;

function lease(
  id: string,
  over: Pick<LeaseRecord, 'service' | 'credential' | 'kind' | 'grantId'> & Partial<LeaseRecord>,
): LeaseRecord {
  return {
    id,
    agent: 'agent-1',
    user: undefined,
    createdAt: NOW - 60_000,
    expiresAt: NOW + HOUR,
    endedAt: undefined,
    endReason: undefined,
    ...over,
  };
}

const LEASES: LeaseRecord[] = [
  lease('ls_rep1', { service: 'reports', credential: 'reports-refresh', kind: 'minted', grantId: 'gr_1' }),
  lease('ls_rep2', {
    service: 'reports',
    credential: 'reports-refresh',
    kind: 'minted',
    grantId: 'gr_2',
    agent: 'agent-2',
    user: 'alice',
  }),
  lease('ls_rec1', {
    service: 'records',
    credential: 'conn.records.0123456789abcdef01234567',
    kind: 'user',
    grantId: 'gr_1',
    user: 'alice',
  }),
  lease('ls_key1', {
    service: 'records-key',
    credential: 'records-api-key',
    kind: 'static',
    grantId: 'gr_1',
  }),
  lease('ls_key2', {
    service: 'records-key',
    credential: 'records-api-key',
    kind: 'static',
    grantId: 'gr_2',
  }),
];
/** Expired (with its grant) but never ended: not live, so not listed. */
const EXPIRED = lease('ls_old', {
  service: 'legacy',
  credential: 'legacy-key',
  kind: 'static',
  grantId: 'gr_0',
  createdAt: NOW - 2 * HOUR,
  expiresAt: NOW - HOUR,
});

const liveIds = (dir: string): Promise<string[]> =>
  withStorage(dir, async (s) => (await s.leases.listLive(Date.now())).map((l) => l.id).sort());
const blocksOf = (dir: string): Promise<CredentialBlock[]> => withStorage(dir, (s) => s.leases.blocks());
const ALL = LEASES.map((l) => l.id).sort();

/** The commands that must change nothing: one data dir for all of them. */
let readOnlyDir: string;
let missingDir: string;
let readOnly: Record<
  'list' | 'json' | 'noTarget' | 'twoTargets' | 'blockWithoutService' | 'unknownDir',
  Promise<Run>
>;
/** `revoke --service`, in its own data dir. */
let serviceDir: string;
let serviceRun: Promise<Run>;
/** `revoke --secret`, then `unblock --secret`, in a third one; the store is read in between. */
let secretDir: string;
let secretRuns: Promise<{ revoke: Run; liveAfter: string[]; blocksAfter: CredentialBlock[]; unblock: Run }>;

before(async () => {
  [readOnlyDir, serviceDir, secretDir] = await Promise.all([seeded(), seeded(), seeded()]);
  missingDir = join(readOnlyDir, 'no-such-dir');
  // The chain first: its second step queues behind every command started after it.
  secretRuns = credentials(secretDir, ['revoke', '--secret', 'records-api-key']).then(async (revoke) => ({
    revoke,
    liveAfter: await liveIds(secretDir),
    blocksAfter: await blocksOf(secretDir),
    unblock: await credentials(secretDir, ['unblock', '--secret', 'records-api-key']),
  }));
  serviceRun = credentials(serviceDir, [
    'revoke',
    '--service',
    'reports',
    '--reason',
    'rotating the service account',
  ]);
  readOnly = {
    list: credentials(readOnlyDir, ['list']),
    json: credentials(readOnlyDir, ['list', '--json']),
    noTarget: credentials(readOnlyDir, ['revoke']),
    twoTargets: credentials(readOnlyDir, ['revoke', '--service', 'reports', '--grant', 'gr_1']),
    blockWithoutService: credentials(readOnlyDir, ['revoke', '--grant', 'gr_1', '--block']),
    unknownDir: credentials(missingDir, ['list']),
  };
});

after(async () => {
  // Never leave children behind, even when a test failed early.
  await Promise.allSettled([...Object.values(readOnly ?? {}), serviceRun, secretRuns]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('list shows every live lease (not the expired one) as a table', async () => {
  const r = await readOnly.list;
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(
    lines[0] ?? '',
    /^LEASE\s+SERVICE\s+KIND\s+CREDENTIAL\s+GRANT\s+PRINCIPAL\s+AGE\s+EXPIRES IN$/,
  );
  assert.equal(lines.length, 1 + LEASES.length, r.stdout);
  for (const l of LEASES) {
    const row = lines.find((line) => line.startsWith(`${l.id} `));
    assert.ok(row, `${l.id} listed:\n${r.stdout}`);
    for (const cell of [l.service, l.kind, l.credential, l.grantId]) assert.ok(row.includes(cell), row);
  }
  assert.match(lines.find((l) => l.startsWith('ls_rep2 ')) ?? '', /agent-2 for alice/);
  assert.ok(!r.stdout.includes('ls_old'), 'an expired lease is not live');
  assert.ok(!r.stdout.includes('blocked:'), 'no blocks yet');
});

test('list --json is JSON: the live leases as stored, and the blocks', async () => {
  const r = await readOnly.json;
  assert.equal(r.code, 0, r.stderr);
  const parsed = JSON.parse(r.stdout) as { leases: LeaseRecord[]; blocks: unknown[] };
  assert.deepEqual(parsed.blocks, []);
  assert.deepEqual(parsed.leases.map((l) => l.id).sort(), LEASES.map((l) => l.id).sort());
  // Every field round-trips (undefined ones are left out of the JSON).
  const byId = new Map(parsed.leases.map((l) => [l.id, l]));
  for (const l of LEASES) assert.deepEqual(byId.get(l.id), JSON.parse(JSON.stringify(l)));
});

test('revoke needs exactly one target: zero or two exit 2 with the usage, and end nothing', async () => {
  for (const [label, r] of [
    ['no target', await readOnly.noTarget],
    ['two targets', await readOnly.twoTargets],
  ] as const) {
    assert.equal(r.code, 2, `${label}: ${r.stderr}`);
    assert.match(r.stderr, /gatehouse credentials revoke: give exactly one target/, label);
    assert.match(r.stderr, /credentials revoke LEASE_ID \| --service S/, `${label}: usage`);
    assert.equal(r.stdout, '', label);
  }
  await Promise.all(Object.values(readOnly));
  assert.deepEqual(await liveIds(readOnlyDir), ALL, 'nothing ended');
});

test('revoke --block without --service exits 2 and ends nothing', async () => {
  const r = await readOnly.blockWithoutService;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--block goes with --service/);
  await Promise.all(Object.values(readOnly));
  assert.deepEqual(await liveIds(readOnlyDir), ALL, 'gr_1 leases still live');
  assert.deepEqual(await blocksOf(readOnlyDir), []);
});

test('an unknown data dir fails with a clear message and exit 1, and creates no database', async () => {
  const r = await readOnly.unknownDir;
  assert.equal(r.code, 1, r.stderr);
  assert.ok(
    r.stderr.includes(`gatehouse: no database at ${join(missingDir, 'gatehouse.db')}`),
    `stderr: ${r.stderr}`,
  );
  assert.equal(existsSync(missingDir), false, 'the missing data dir was not created');
});

test('revoke --service ends the live leases of that service only', async () => {
  const r = await serviceRun;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^revoked 2 lease\(s\):\n/);
  assert.ok(r.stdout.includes('  ls_rep1\n') && r.stdout.includes('  ls_rep2\n'), r.stdout);
  assert.ok(!/is blocked/.test(r.stdout), 'no --block, no block');
  assert.deepEqual(await liveIds(serviceDir), ['ls_key1', 'ls_key2', 'ls_rec1']);
  const ended = await withStorage(serviceDir, (s) => s.leases.endedSince(0));
  assert.deepEqual(ended.map((e) => [e.id, e.endReason]).sort(), [
    ['ls_rep1', 'rotating the service account'],
    ['ls_rep2', 'rotating the service account'],
  ]);
  assert.deepEqual(await blocksOf(serviceDir), []);
});

test('revoke --secret ends the leases of the secret and blocks it; unblock --secret lifts the block', async () => {
  const { revoke: r, liveAfter, blocksAfter, unblock: u } = await secretRuns;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^revoked 2 lease\(s\):\n {2}ls_key\d\n {2}ls_key\d\n/);
  assert.match(
    r.stdout,
    /secret records-api-key is blocked: .*gatehouse credentials unblock --secret records-api-key/,
  );
  assert.deepEqual(liveAfter, ['ls_rec1', 'ls_rep1', 'ls_rep2'], 'only the leases of that secret ended');
  assert.deepEqual(
    blocksAfter.map((b) => [b.kind, b.name, b.reason]),
    [['secret', 'records-api-key', 'revoked by operator']],
  );

  assert.equal(u.code, 0, u.stderr);
  assert.equal(u.stdout, 'unblocked secret records-api-key\n');
  assert.deepEqual(await blocksOf(secretDir), []);
  assert.deepEqual(await liveIds(secretDir), liveAfter, 'unblocking does not bring ended leases back');
});
