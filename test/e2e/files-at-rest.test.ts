/**
 * T20/T27 files at rest, end to end: a full run of the real CLI (`gatehouse start` as a child, the
 * verbs as child processes) under umask 000, which every child inherits, so nothing stays private
 * unless Gatehouse gives it an owner-only mode itself. The run touches every writer of the data
 * dir (embedded AS keys and demo client secret, both databases with their -wal/-shm, the master
 * key file, audit segments and signing key, an audit export written into the data dir), then the
 * whole tree is walked while the gateway runs and again after it stopped. A data dir left open to
 * group/other is repaired at start-up, with a warning; one that is not a directory is refused.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startGateway } from '../../src/gateway.ts';
import { type CliGateway, startCliGateway } from '../helpers/gateway.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = ['--import', 'tsx', join(ROOT, 'src/cli/index.ts')];

let savedUmask: number;
let root: string;

before(() => {
  // The most permissive umask: children inherit it, and a mode left to the umask shows up as 0666/0777.
  savedUmask = process.umask(0o000);
  root = mkdtempSync(join(tmpdir(), 'gatehouse-files-e2e-'));
});

after(() => {
  process.umask(savedUmask);
  rmSync(root, { recursive: true, force: true });
});

/** Runs a `gatehouse` verb to completion, `input` on its stdin. */
function gatehouse(args: string[], input = ''): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI, ...args], { input, encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Entry {
  rel: string;
  kind: 'dir' | 'file' | 'link';
  mode: number;
}

/** Every entry below `dir`, lstat'ed (symlinks are reported, not followed). */
function walk(dir: string, base = dir): Entry[] {
  const out: Entry[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatSync(path);
    const kind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file';
    out.push({ rel: relative(base, path), kind, mode: st.mode & 0o777 });
    if (kind === 'dir') out.push(...walk(path, base));
  }
  return out;
}

/** Asserts the data dir and everything in it are owner-only: dirs 0700, files 0600. */
function assertOwnerOnly(dataDir: string, when: string): Entry[] {
  assert.equal(lstatSync(dataDir).mode & 0o777, 0o700, `${when}: the data dir itself`);
  const entries = walk(dataDir);
  const wrong = entries.filter((e) => e.kind === 'link' || e.mode !== (e.kind === 'dir' ? 0o700 : 0o600));
  assert.deepEqual(
    wrong.map((e) => `${e.rel} ${e.kind} ${e.mode.toString(8)}`),
    [],
    `${when}: entries that are not owner-only`,
  );
  return entries;
}

async function stop(gw: CliGateway): Promise<void> {
  if (gw.child.exitCode !== null) return;
  const exited = new Promise((resolve) => gw.child.once('exit', resolve));
  gw.child.kill('SIGTERM');
  await exited;
}

test('T20 files at rest: after a full run under umask 000 every entry of the data dir is owner-only', async () => {
  const dataDir = join(root, 'full', 'data'); // missing: Gatehouse creates it, and its parent
  const gw = await startCliGateway(['--data-dir', dataDir]);
  try {
    const dd = ['--data-dir', dataDir];
    const user = gatehouse(['users', 'add', 'alice', ...dd], 'correct horse battery staple\n');
    assert.equal(user.status, 0, user.stderr);
    const secret = gatehouse(
      ['secrets', 'set', 'demo-api-key', ...dd],
      'files-at-rest-secret-value-0123456789\n',
    );
    assert.equal(secret.status, 0, secret.stderr);
    // OAuth: client credentials, and a token exchange for the local user (reads the AS signing key).
    const token = gatehouse(['token', '--client', 'demo-agent', '--url', gw.origin, ...dd]);
    assert.equal(token.status, 0, token.stderr);
    const forUser = gatehouse([
      'token',
      '--client',
      'demo-agent',
      '--user',
      'alice',
      '--url',
      gw.origin,
      ...dd,
    ]);
    assert.equal(forUser.status, 0, forUser.stderr);
    // A real session with tool calls: sessions, grants and audit records in the database and segments.
    const client = new Client({ name: 'files-at-rest', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gw.url), {
        requestInit: { headers: { Authorization: `Bearer ${token.stdout.trim()}` } },
      }),
    );
    try {
      for (const message of ['one', 'two']) {
        const r = await client.callTool({ name: 'everything__echo', arguments: { message } });
        assert.match(JSON.stringify(r), new RegExp(`Echo: ${message}`));
      }
    } finally {
      await client.close();
    }
    const exported = gatehouse(['audit', 'export', '--out', join(dataDir, 'export.jsonl'), ...dd]);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(readFileSync(join(dataDir, 'export.jsonl'), 'utf8'), /everything__echo|"echo"/);
    const verified = gatehouse(['audit', 'verify', ...dd]);
    assert.equal(verified.status, 0, verified.stdout + verified.stderr);

    // While the gateway runs: the WAL and shared-memory files of its database exist too.
    const running = assertOwnerOnly(dataDir, 'running');
    const names = new Set(running.map((e) => e.rel));
    for (const expected of [
      'demo-agent.secret',
      'oauth-keys.json',
      'audit-key.pem',
      'gatehouse.db',
      'gatehouse.db-wal',
      'gatehouse.db-shm',
      'audit',
      'secrets.db',
      'master-keys.json',
      'export.jsonl',
    ]) {
      assert.ok(names.has(expected), `the run wrote ${expected} (found: ${[...names].join(', ')})`);
    }
    assert.ok(
      running.some((e) => /^audit\/\d{16}\.log$/.test(e.rel)),
      'the run wrote an audit segment',
    );
    assert.ok(!/made owner-only/.test(gw.stderr()), 'nothing needed repairing (no CLI or log warning)');
  } finally {
    await stop(gw);
  }
  assert.equal(lstatSync(join(root, 'full')).mode & 0o777, 0o700, 'a parent Gatehouse created');
  assertOwnerOnly(dataDir, 'after stop');
});

test('T20 files at rest: start-up repairs a data dir open to group/other and warns, symlinks left alone', async () => {
  const dataDir = join(root, 'loose');
  // State an older version (or a restore, or a hand-made directory) left with loose modes.
  const user = gatehouse(['users', 'add', 'bob', '--data-dir', dataDir], 'correct horse battery staple\n');
  assert.equal(user.status, 0, user.stderr);
  writeFileSync(join(dataDir, 'demo-agent.secret'), 'a-demo-secret-restored-from-a-backup\n');
  const outside = join(root, 'outside.txt');
  writeFileSync(outside, 'not gatehouse state\n');
  symlinkSync(outside, join(dataDir, 'notes.txt'));
  for (const e of walk(dataDir))
    if (e.kind !== 'link') chmodSync(join(dataDir, e.rel), e.kind === 'dir' ? 0o755 : 0o644);
  chmodSync(dataDir, 0o755);
  chmodSync(outside, 0o644);

  const gw = await startCliGateway(['--data-dir', dataDir]);
  try {
    const warning =
      /gatehouse: warning: data dir (.*) was open to group or others; made owner-only: (.*)/.exec(
        gw.stderr(),
      );
    assert.ok(warning, `a warning names the repair:\n${gw.stderr()}`);
    assert.match(warning[2] ?? '', /(^|, )\. \(0755 -> 0700\)/);
    assert.match(warning[2] ?? '', /demo-agent\.secret \(0644 -> 0600\)/);
    assert.match(warning[2] ?? '', /gatehouse\.db \(0644 -> 0600\)/);
    assert.match(warning[2] ?? '', /audit \(0755 -> 0700\)/);
    const entries = walk(dataDir);
    for (const e of entries) {
      if (e.kind === 'link') continue;
      assert.equal(e.mode, e.kind === 'dir' ? 0o700 : 0o600, e.rel);
    }
    assert.equal(lstatSync(dataDir).mode & 0o777, 0o700);
    assert.ok(
      entries.some((e) => e.rel === 'notes.txt' && e.kind === 'link'),
      'the symlink stays',
    );
    assert.equal(lstatSync(outside).mode & 0o777, 0o644, 'its target is not followed');
  } finally {
    await stop(gw);
  }
});

test('T20 files at rest: a data dir that is not a directory is refused with a clear error', () => {
  const file = join(root, 'not-a-dir');
  writeFileSync(file, '');
  const r = gatehouse(['start', '--port', '0', '--data-dir', file]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /gatehouse: data dir .*not-a-dir is not a directory/);
});

test('T20 files at rest: startGateway (the library entry point) repairs the data dir too and logs a warning', async () => {
  const dataDir = join(root, 'library');
  const first = gatehouse(['users', 'add', 'carol', '--data-dir', dataDir], 'correct horse battery staple\n');
  assert.equal(first.status, 0, first.stderr);
  chmodSync(dataDir, 0o750);
  chmodSync(join(dataDir, 'gatehouse.db'), 0o640);
  let logs = '';
  const gw = await startGateway({
    config: {
      auth: { mode: 'none' },
      server: { host: '127.0.0.1', port: 0 },
      pinning: { newTools: 'trust' },
      upstreams: { up: { type: 'http', url: 'http://127.0.0.1:1/mcp' } },
    },
    dataDir,
    logDestination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs += chunk.toString();
        cb();
      },
    }),
  });
  try {
    const line = logs.split('\n').find((l) => l.includes('made owner-only'));
    assert.ok(line, `a warning is logged:\n${logs}`);
    const entry = JSON.parse(line) as { level: number; repaired: string[]; msg: string };
    assert.equal(entry.level, 40, 'warn');
    assert.deepEqual(entry.repaired.map((p) => relative(dataDir, p)).sort(), ['', 'gatehouse.db']);
    assertOwnerOnly(dataDir, 'library start');
  } finally {
    await gw.close();
  }
});
