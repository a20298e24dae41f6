/**
 * CLI verbs: `users add|list|rm` and `token` against a running AS.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { demoAuthClients } from '../../src/auth/as/index.ts';
import { verifyPassword } from '../../src/auth/as/passwords.ts';
import { authCommand } from '../../src/cli/auth.ts';
import type { CliIo } from '../../src/cli/shared.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { startAs, verifyAccessToken } from './as-harness.ts';

function io(stdin = ''): CliIo & { out(): string; err(): string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += String(d)));
  stderr.on('data', (d) => (err += String(d)));
  return { stdin: Readable.from([stdin]), stdout, stderr, env: {}, out: () => out, err: () => err };
}

test('cli: users add reads the password from stdin, stores an scrypt hash; list and rm', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
  const add = io('s3cret-password\n');
  assert.equal(await authCommand('users', ['add', 'bob', '--data-dir', dataDir], add), 0, add.err());
  const dup = io('another-password\n');
  assert.equal(await authCommand('users', ['add', 'bob', '--data-dir', dataDir], dup), 1);
  assert.match(dup.err(), /already exists/);
  const short = io('short\n');
  assert.equal(await authCommand('users', ['add', 'carol', '--data-dir', dataDir], short), 1);
  assert.match(short.err(), /at least 8 characters/);

  const storage = new SqliteStorage(join(dataDir, 'gatehouse.db'));
  const bob = await storage.users.get('bob');
  await storage.close();
  assert.ok(bob);
  assert.match(bob.passwordHash, /^scrypt\$\d+\$\d+\$\d+\$[\w-]+\$[\w-]+$/);
  assert.ok(await verifyPassword('s3cret-password', bob.passwordHash));
  assert.equal(await verifyPassword('s3cret-passwore', bob.passwordHash), false);

  const list = io();
  assert.equal(await authCommand('users', ['list', '--data-dir', dataDir], list), 0);
  assert.match(list.out(), /^bob\t/m);
  const rm = io();
  assert.equal(await authCommand('users', ['rm', 'bob', '--data-dir', dataDir], rm), 0);
  const rm2 = io();
  assert.equal(await authCommand('users', ['rm', 'bob', '--data-dir', dataDir], rm2), 1);
  const usage = io();
  assert.equal(await authCommand('users', ['add', '--data-dir', dataDir], usage), 2);
});

test('cli: the demo agent secret is generated once (0600) and token prints a client_credentials token', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
  const clients = demoAuthClients(dataDir);
  assert.deepEqual(
    clients.map((c) => c.clientId),
    ['demo-agent'],
  );
  assert.deepEqual(clients[0]?.clientSecret, { file: join(dataDir, 'demo-agent.secret') });
  assert.equal(statSync(join(dataDir, 'demo-agent.secret')).mode & 0o777, 0o600);
  assert.deepEqual(demoAuthClients(dataDir), clients, 'stable across calls');
  const t = await startAs({ dataDir, config: { clients } });
  try {
    const out = io();
    const code = await authCommand(
      'token',
      ['--client', 'demo-agent', '--url', t.issuer, '--data-dir', dataDir],
      out,
    );
    assert.equal(code, 0, out.err());
    const claims = await verifyAccessToken(t, out.out().trim());
    assert.equal(claims.sub, 'demo-agent');
    assert.equal(claims['scope'], 'mcp');

    // --user: a local user's subject token minted with the data dir key, then exchanged.
    const add = io('correct horse battery\n');
    assert.equal(await authCommand('users', ['add', 'alice', '--data-dir', dataDir], add), 0);
    const asUser = io();
    const code2 = await authCommand(
      'token',
      ['--client', 'demo-agent', '--user', 'alice', '--url', t.issuer, '--data-dir', dataDir],
      asUser,
    );
    assert.equal(code2, 0, asUser.err());
    const acting = await verifyAccessToken(t, asUser.out().trim());
    assert.equal(acting.sub, 'alice');
    assert.equal(acting['client_id'], 'demo-agent');
    assert.deepEqual(acting['act'], { sub: 'demo-agent' });

    const unknown = io();
    assert.equal(
      await authCommand('token', ['--client', 'nope', '--url', t.issuer, '--data-dir', dataDir], unknown),
      1,
    );
  } finally {
    await t.close();
  }
});
