/**
 * T20/T27 files at rest, piece by piece (the whole run is test/e2e/files-at-rest.test.ts): every
 * writer of the data dir creates owner-only entries whatever the umask, and `secureDataDir`
 * repairs a directory left open to group or others, without following symlinks, and refuses what
 * it cannot repair. The umask is 000 here, so only a mode Gatehouse sets explicitly keeps an entry
 * private.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { loadAuditKey } from '../../src/audit/keys.ts';
import { auditCommand } from '../../src/cli/audit.ts';
import { SqliteSecretRepo } from '../../src/secrets/sqlite-repo.ts';
import { AuditSegments } from '../../src/storage/audit-segments.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { DataDirError, describeRepairs, secureDataDir } from '../../src/util/data-dir.ts';

let savedUmask: number;
let root: string;

before(() => {
  savedUmask = process.umask(0o000);
  root = mkdtempSync(join(tmpdir(), 'gatehouse-files-'));
});

after(() => {
  process.umask(savedUmask);
  rmSync(root, { recursive: true, force: true });
});

function mode(path: string): number {
  return lstatSync(path).mode & 0o777;
}

/** Every entry below `dir` (lstat, no symlink followed) with its permission bits. */
function walk(dir: string): { path: string; kind: 'dir' | 'file' | 'link'; mode: number }[] {
  const out: { path: string; kind: 'dir' | 'file' | 'link'; mode: number }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    const kind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file';
    out.push({ path, kind, mode: st.mode & 0o777 });
    if (kind === 'dir') out.push(...walk(path));
  }
  return out;
}

function fresh(name: string): string {
  return join(root, name);
}

test('T20 files at rest: a database, its -wal and -shm are 0600 under umask 000 (both stores)', () => {
  const dir = fresh('db');
  const db = openDatabase(join(dir, 'new', 'gatehouse.db'));
  try {
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1);');
    assert.equal(mode(join(dir, 'new')), 0o700, 'its directory is created 0700');
    for (const f of ['gatehouse.db', 'gatehouse.db-wal', 'gatehouse.db-shm'])
      assert.equal(mode(join(dir, 'new', f)), 0o600, f);
  } finally {
    db.close();
  }
  const secrets = new SqliteSecretRepo(join(dir, 'secrets.db'));
  try {
    for (const f of ['secrets.db', 'secrets.db-wal', 'secrets.db-shm'])
      assert.equal(mode(join(dir, f)), 0o600, f);
  } finally {
    void secrets.close();
  }
});

test('T20 files at rest: opening a database repairs the database, -wal and -shm an older run left 0644', () => {
  const path = join(fresh('db-loose'), 'gatehouse.db');
  const first = openDatabase(path);
  try {
    first.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1);');
    for (const f of [path, `${path}-wal`, `${path}-shm`]) chmodSync(f, 0o644);
    // A second connection while the first holds the WAL open: the files exist when it opens.
    const second = openDatabase(path);
    second.close();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) assert.equal(mode(f), 0o600, f);
  } finally {
    first.close();
  }
});

test('T27 files at rest: audit segments are 0600, new, reopened and rewritten by prune', async () => {
  const dir = join(fresh('segments'), 'audit');
  const row = (seq: number) => ({
    seq,
    prevHash: '',
    hash: String(seq).padStart(64, '0'),
    body: `{"seq":${seq}}`,
    eventId: '',
    time: 0,
    type: '',
    requestId: undefined,
    grantId: undefined,
    sessionId: undefined,
    agent: undefined,
    user: undefined,
    jti: undefined,
    server: undefined,
    tool: undefined,
    decision: undefined,
  });
  let segs = new AuditSegments(dir, { segmentBytes: 100 });
  await segs.append([row(1)]);
  await segs.append([row(2)]);
  segs.close();
  assert.equal(mode(dir), 0o700);
  // A segment left 0644 (an older version, a restore) is tightened when it is reopened for appending.
  const files = readdirSync(dir).map((n) => join(dir, n));
  const last = files.sort().at(-1) ?? assert.fail('no segment');
  chmodSync(last, 0o644);
  segs = new AuditSegments(dir, { segmentBytes: 1_000_000 });
  await segs.append([row(3)]);
  assert.equal(mode(last), 0o600, 'reopened segment');
  // prune rewrites the segment holding the floor into a new file.
  segs.prune(3);
  assert.ok(!readdirSync(dir).includes(last.slice(dir.length + 1)), 'the old segment is gone');
  segs.close();
  const entries = walk(dir);
  assert.ok(entries.length > 0);
  for (const e of entries) assert.equal(e.mode, 0o600, e.path);
});

test('T20 files at rest: a missing data dir is created 0700, nested parents included', () => {
  const dir = join(fresh('create'), 'a', 'b');
  assert.deepEqual(secureDataDir(dir), []);
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(join(fresh('create'), 'a')), 0o700);
  // A verb that only reads leaves a mistyped path missing.
  assert.deepEqual(secureDataDir(join(root, 'typo'), { create: false }), []);
  assert.throws(() => lstatSync(join(root, 'typo')));
});

test('T20 files at rest: a data dir open to group/other is repaired recursively, symlinks not followed', () => {
  const dir = fresh('loose');
  const outside = join(root, 'outside.txt');
  writeFileSync(outside, 'not gatehouse', { mode: 0o644 });
  mkdirSync(join(dir, 'audit', 'deep'), { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'gatehouse.db'), '', { mode: 0o644 });
  writeFileSync(join(dir, 'audit', '0000000000000001.log'), '', { mode: 0o664 });
  writeFileSync(join(dir, 'audit', 'deep', 'x'), '', { mode: 0o606 });
  writeFileSync(join(dir, 'readonly.pem'), '', { mode: 0o444 });
  writeFileSync(join(dir, 'fine'), '', { mode: 0o600 });
  symlinkSync(outside, join(dir, 'link'));
  const repairs = secureDataDir(dir);
  assert.deepEqual(
    repairs.map((r) => [r.path.slice(dir.length), r.from, r.to]).sort(),
    [
      ['', 0o755, 0o700],
      ['/audit', 0o755, 0o700],
      ['/audit/0000000000000001.log', 0o664, 0o600],
      ['/audit/deep', 0o755, 0o700],
      ['/audit/deep/x', 0o606, 0o600],
      ['/gatehouse.db', 0o644, 0o600],
      // Owner bits are kept: a read-only key stays read-only.
      ['/readonly.pem', 0o444, 0o400],
    ].sort(),
  );
  for (const e of walk(dir)) if (e.kind !== 'link') assert.equal(e.mode & 0o077, 0, e.path);
  assert.equal(mode(outside), 0o644, 'the symlink target is not ours to change');
  assert.match(describeRepairs(dir, repairs), /made owner-only: .*gatehouse\.db \(0644 -> 0600\)/);
  assert.deepEqual(secureDataDir(dir), [], 'nothing left to repair');
});

test('T20 files at rest: a data dir that is not a directory, or cannot be repaired, is refused', (t) => {
  const file = join(root, 'not-a-dir');
  writeFileSync(file, '');
  assert.throws(() => secureDataDir(file), DataDirError);
  // An entry whose mode cannot be changed (immutable: EPERM even for root).
  const dir = fresh('stuck');
  mkdirSync(dir, { mode: 0o700 });
  const stuck = join(dir, 'stuck.key');
  writeFileSync(stuck, '', { mode: 0o644 });
  const chattr = spawnSync('chattr', ['+i', stuck]);
  if (chattr.status !== 0) {
    t.skip('chattr +i is not available here');
    return;
  }
  try {
    assert.throws(
      () => secureDataDir(dir),
      (err: Error) => err instanceof DataDirError && err.message.includes(stuck) && /EPERM/.test(err.message),
    );
  } finally {
    spawnSync('chattr', ['-i', stuck]);
  }
});

test('T27 files at rest: audit export --out makes the export 0600, an existing 0644 file too', async () => {
  const dir = fresh('export');
  const storage = new SqliteStorage(join(dir, 'gatehouse.db'), { auditDir: join(dir, 'audit') });
  await storage.close();
  const sink = () =>
    new Writable({
      write(_c, _e, cb) {
        cb();
      },
    });
  // Outside the data dir, which the verb's start-up check would repair anyway.
  const out = join(root, 'export.jsonl');
  writeFileSync(out, 'old contents\n', { mode: 0o644 });
  const code = await auditCommand(['export', '--data-dir', dir, '--out', out], {
    stdout: sink(),
    stderr: sink(),
  });
  assert.equal(code, 0);
  assert.equal(mode(out), 0o600);
  assert.equal(readFileSync(out, 'utf8'), '', 'truncated: the log is empty');
  const created = join(root, 'new-export.jsonl');
  assert.equal(
    await auditCommand(['export', '--data-dir', dir, '--out', created], { stdout: sink(), stderr: sink() }),
    0,
  );
  assert.equal(mode(created), 0o600);
});

test('T27 files at rest: a CLI verb repairs the data dir before reading the key in it, and warns', async () => {
  const dir = fresh('cli-verb');
  const storage = new SqliteStorage(join(dir, 'gatehouse.db'), { auditDir: join(dir, 'audit') });
  await storage.close();
  loadAuditKey(dir, { create: true });
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'audit-key.pem'), 0o644);
  let stderr = '';
  const io = {
    stdout: new Writable({
      write(_c, _e, cb) {
        cb();
      },
    }),
    stderr: new Writable({
      write(c: Buffer, _e, cb) {
        stderr += c.toString();
        cb();
      },
    }),
  };
  assert.equal(await auditCommand(['verify', '--data-dir', dir], io), 0, stderr);
  assert.match(
    stderr,
    /gatehouse: warning: data dir .* made owner-only: \. \(0755 -> 0700\), audit-key\.pem \(0644 -> 0600\)/,
  );
  assert.equal(mode(join(dir, 'audit-key.pem')), 0o600);
});
