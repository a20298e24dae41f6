/**
 * `gatehouse secrets` (src/cli/secrets.ts). Every call's stdout and stderr is
 * searched for the canary (T20): values go in through stdin or a file, never argv,
 * and never come out.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, test } from 'node:test';
import { secretsCommand } from '../../src/cli/secrets.ts';
import { masterKeyFilePath } from '../../src/secrets/keys.ts';
import { openSecretStore } from '../../src/secrets/store.ts';

const CANARY = 'canary-secret-not-real-cli-4c7e1b';
const KEY = Buffer.alloc(32, 0x5c).toString('base64');

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-secrets-cli-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the verb in process; asserts no output contains the canary (or its base64). */
async function run(argv: string[], stdin = '', env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  err.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await secretsCommand(argv, {
    stdin: Readable.from([Buffer.from(stdin)]),
    stdout: out,
    stderr: err,
    env,
  });
  for (const text of [stdout, stderr]) {
    assert.ok(!text.includes(CANARY), `T20: value printed by \`secrets ${argv.join(' ')}\`: ${text}`);
    assert.ok(!text.includes(Buffer.from(CANARY).toString('base64').slice(0, 20)), 'no base64 form either');
  }
  return { code, stdout, stderr };
}

async function value(dir: string, name: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { store } = openSecretStore(dir, { env });
  try {
    return (await store.get(name)).toString();
  } finally {
    await store.close();
  }
}

test('T20 secrets set reads stdin (one trailing newline trimmed), warns about the generated key, never echoes', async () => {
  const dir = tmp();
  const r = await run(['set', 'github-token', '--service', 'github', '--data-dir', dir], `${CANARY}\n`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /stored `github-token` \(\d+ bytes, master key mk_[0-9a-f]{16}\)/);
  assert.match(r.stderr, /warning: .*production should supply its own key/);
  assert.equal(await value(dir, 'github-token'), CANARY);
  assert.equal(statSync(masterKeyFilePath(dir)).mode & 0o777, 0o600);
  // Only one newline is trimmed; CRLF counts as one.
  await run(['set', 'two-newlines', '--data-dir', dir], `${CANARY}\n\n`);
  assert.equal(await value(dir, 'two-newlines'), `${CANARY}\n`);
  await run(['set', 'crlf', '--data-dir', dir], `${CANARY}\r\n`);
  assert.equal(await value(dir, 'crlf'), CANARY);
});

test('T20 secrets set --from-file; GATEHOUSE_MASTER_KEY used and no key file generated', async () => {
  const dir = tmp();
  const file = join(tmp(), 'value.txt');
  writeFileSync(file, `${CANARY}\n`, { mode: 0o600 });
  const env = { GATEHOUSE_MASTER_KEY: KEY };
  const r = await run(['set', 'from-file', '--from-file', file, '--data-dir', dir], '', env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '', 'no warning with a supplied key');
  assert.equal(await value(dir, 'from-file', env), CANARY);
  assert.throws(() => statSync(masterKeyFilePath(dir)), /ENOENT/);
  // A short value is stored, with a warning that the leak guard cannot redact it.
  const short = await run(['set', 'pin', '--data-dir', dir], '1234', env);
  assert.equal(short.code, 0);
  assert.match(short.stderr, /shorter than 8 bytes: the leak guard cannot redact it/);
});

test('T20 secrets set refuses a value given as an argument, without echoing it', async () => {
  const dir = tmp();
  for (const argv of [
    ['set', 'github-token', CANARY, '--data-dir', dir],
    ['set', 'github-token', `--value=${CANARY}`, '--data-dir', dir],
    ['set', 'github-token', `--${CANARY}`, '--data-dir', dir],
    ['set', '--data-dir', dir, 'github-token', CANARY],
  ]) {
    const r = await run(argv, 'unused-stdin-value');
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(
      r.stderr,
      /refusing a secret value on the command line|values are never accepted as arguments/,
    );
  }
  // Nothing was stored.
  assert.equal((await run(['list', '--data-dir', dir])).code, 1, 'no database was even created');
});

test('T20 secrets list prints metadata only (table and --json), never values', async () => {
  const dir = tmp();
  await run(['set', 'b-token', '--service', 'slack', '--data-dir', dir], CANARY);
  await run(['set', 'a-token', '--data-dir', dir], `${CANARY}-2`);
  await value(dir, 'a-token'); // sets last used
  const table = await run(['list', '--data-dir', dir]);
  assert.equal(table.code, 0);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^NAME\s+SERVICE\s+CREATED\s+UPDATED\s+LAST USED\s+MASTER KEY$/);
  assert.match(lines[1] ?? '', /^a-token\s+-\s+\d{4}-\d\d-\d\dT\S+Z\s+\S+Z\s+\S+Z\s+mk_/);
  assert.match(lines[2] ?? '', /^b-token\s+slack\s+\S+Z\s+\S+Z\s+-\s+mk_/);
  const json = await run(['list', '--json', '--data-dir', dir]);
  const parsed = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
  assert.deepEqual(
    parsed.map((s) => Object.keys(s).sort()),
    [
      ['createdAt', 'keyId', 'lastUsedAt', 'name', 'updatedAt'],
      ['createdAt', 'keyId', 'name', 'service', 'updatedAt'],
    ],
  );
});

test('secrets rm removes; rm of a missing name and a wrong --data-dir fail', async () => {
  const dir = tmp();
  await run(['set', 'gone', '--data-dir', dir], CANARY);
  const r = await run(['rm', 'gone', '--data-dir', dir]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /removed `gone`/);
  assert.equal((await run(['rm', 'gone', '--data-dir', dir])).code, 1);
  assert.match((await run(['list', '--data-dir', dir])).stdout, /no secrets/);
  const typo = await run(['list', '--data-dir', join(dir, 'typo')]);
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /no secrets database/);
  assert.equal((await run(['rm', '--data-dir', dir])).code, 2);
  assert.equal((await run(['frobnicate'])).code, 2);
  const badName = await run(['set', 'Bad/Name', '--data-dir', dir], CANARY);
  assert.equal(badName.code, 1);
  assert.match(badName.stderr, /invalid secret name/);
});

test('T20 secrets rotate-key re-wraps every secret; a wrong master key fails closed in the CLI', async () => {
  const dir = tmp();
  await run(['set', 'one', '--data-dir', dir], CANARY);
  await run(['set', 'two', '--data-dir', dir], `${CANARY}-2`);
  const before = JSON.parse((await run(['list', '--json', '--data-dir', dir])).stdout) as Array<{
    keyId: string;
  }>;
  const r = await run(['rotate-key', '--prune', '--data-dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /re-wrapped 2 data key\(s\) under master key (mk_[0-9a-f]{16}); forgot mk_/);
  const afterList = JSON.parse((await run(['list', '--json', '--data-dir', dir])).stdout) as Array<{
    keyId: string;
  }>;
  assert.notEqual(afterList[0]?.keyId, before[0]?.keyId);
  assert.equal(await value(dir, 'two'), `${CANARY}-2`);
  // A different key through the environment: rotation refuses and changes nothing.
  const wrong = await run(['rotate-key', '--data-dir', dir], '', { GATEHOUSE_MASTER_KEY: KEY });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /rotation stopped, nothing changed: secret `one`: wrapped under master key mk_/);
  assert.equal(await value(dir, 'one'), CANARY);
  const bad = await run(['set', 'x-token', '--data-dir', dir], CANARY, { GATEHOUSE_MASTER_KEY: 'short' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /GATEHOUSE_MASTER_KEY must be 32 bytes/);
});

test('T20 gatehouse secrets through the real binary: set from a stdin pipe, refused argument, list', async () => {
  const dir = tmp();
  const cli = (args: string[], input?: string): Promise<Run> =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', 'src/cli/index.ts', 'secrets', ...args, '--data-dir', dir],
        { cwd: new URL('../..', import.meta.url).pathname, env: { PATH: process.env['PATH'] ?? '' } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(input ?? '');
    });
  const set = await cli(['set', 'piped'], `${CANARY}\n`);
  assert.equal(set.code, 0, set.stderr);
  const arg = await cli(['set', 'piped', CANARY]);
  assert.equal(arg.code, 2);
  const list = await cli(['list']);
  assert.match(list.stdout, /^piped\s/m);
  for (const r of [set, arg, list]) assert.ok(!`${r.stdout}${r.stderr}`.includes(CANARY));
  assert.equal(await value(dir, 'piped'), CANARY);
});
