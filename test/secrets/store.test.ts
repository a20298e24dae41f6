/**
 * The secret store (src/secrets/store.ts) and its key providers (keys.ts), on the
 * real SQLite repository in a temporary data directory. Canary values are fake and
 * every error message is checked not to contain them (T20).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  EMBEDDED_KEY_WARNING,
  EnvKeyProvider,
  FileKeyProvider,
  KeyError,
  masterKeyFilePath,
  masterKeyId,
  parseMasterKey,
} from '../../src/secrets/keys.ts';
import { LeakGuard } from '../../src/secrets/leak-guard.ts';
import { SqliteSecretRepo, secretsDbPath } from '../../src/secrets/sqlite-repo.ts';
import { openSecretStore, SecretError, SecretStore } from '../../src/secrets/store.ts';
import { repoContract } from './repo-contract.ts';

const CANARY = 'canary-secret-not-real-7f3a9c1e55';
const CANARY2 = 'canary-secret-not-real-second-0b42';
const KEY_A = Buffer.alloc(32, 0xa1).toString('base64');
const KEY_B = Buffer.alloc(32, 0xb2).toString('hex');

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'gh-secrets-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Asserts the promise rejects with a SecretError of `code` whose message names no canary. */
async function failsClosed(
  p: Promise<unknown>,
  code: SecretError['code'],
  nameInMessage?: string,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SecretError, String(err));
    assert.equal(err.code, code, err.message);
    assert.ok(!err.message.includes(CANARY) && !err.message.includes(CANARY2), 'no value in the message');
    if (nameInMessage) assert.ok(err.message.includes(nameInMessage), err.message);
    return true;
  });
}

function envStore(dir: string, env: NodeJS.ProcessEnv, guard?: LeakGuard): SecretStore {
  return new SecretStore(new SqliteSecretRepo(secretsDbPath(dir)), new EnvKeyProvider(env), {
    leakGuard: guard,
  });
}

repoContract('SqliteSecretRepo', () => new SqliteSecretRepo(secretsDbPath(tmp())));

test('round trip: set, get, list (metadata only), remove', async () => {
  const dir = tmp();
  let now = 1_700_000_000_000;
  const store = new SecretStore(
    new SqliteSecretRepo(secretsDbPath(dir)),
    new EnvKeyProvider({ GATEHOUSE_MASTER_KEY: KEY_A }),
    {
      now: () => now,
    },
  );
  await store.set('github-token', CANARY, { service: 'github' });
  await store.set('binary.key', Buffer.from([0, 1, 2, 255, 254, 253, 9, 10, 11]));
  assert.equal((await store.get('github-token')).toString(), CANARY);
  assert.deepEqual([...(await store.get('binary.key'))], [0, 1, 2, 255, 254, 253, 9, 10, 11]);
  now += 5000;
  await store.set('github-token', CANARY2, { service: 'github' });
  assert.equal((await store.get('github-token')).toString(), CANARY2);
  const list = await store.list();
  assert.deepEqual(
    list.map((s) => [s.name, s.service, s.createdAt, s.updatedAt]),
    [
      ['binary.key', undefined, 1_700_000_000_000, 1_700_000_000_000],
      ['github-token', 'github', 1_700_000_000_000, 1_700_000_005_000],
    ],
  );
  assert.equal(list[1]?.lastUsedAt, 1_700_000_000_000, 'last used recorded by get');
  assert.ok(!JSON.stringify(list).includes('canary'), 'list holds no value');
  assert.equal(await store.remove('github-token'), true);
  assert.equal(await store.remove('github-token'), false);
  await failsClosed(store.get('github-token'), 'not_found', 'github-token');
  await store.close();
});

test('T20 the database file holds no plaintext and is private (0600)', async () => {
  const dir = tmp();
  const store = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_A });
  await store.set('api-key', CANARY);
  await store.close();
  const bytes = Buffer.concat(
    ['secrets.db', 'secrets.db-wal']
      .map((f) => join(dir, f))
      .flatMap((p) => {
        try {
          return [readFileSync(p)];
        } catch {
          return [];
        }
      }),
  );
  assert.ok(bytes.length > 0);
  assert.equal(bytes.indexOf(CANARY), -1);
  assert.equal(bytes.indexOf(Buffer.from(CANARY).toString('base64')), -1);
  assert.equal(statSync(secretsDbPath(dir)).mode & 0o777, 0o600);
});

test('names are validated; empty and oversized values refused; errors never hold the value', async () => {
  const store = envStore(tmp(), { GATEHOUSE_MASTER_KEY: KEY_A });
  for (const bad of ['', 'Upper', '-lead', 'a/b', 'x'.repeat(65), 'sp ace', '../etc']) {
    await failsClosed(store.set(bad, CANARY), 'invalid_name');
  }
  await failsClosed(store.set('empty', ''), 'invalid_value', 'empty');
  await failsClosed(store.set('huge', Buffer.alloc(64 * 1024 + 1, 0x41)), 'invalid_value', 'huge');
  await store.close();
});

test('T20 wrong master key fails closed with a clear error naming the key ids', async () => {
  const dir = tmp();
  const a = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_A });
  await a.set('db-password', CANARY);
  await a.close();
  const b = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_B });
  await assert.rejects(b.get('db-password'), (err: unknown) => {
    assert.ok(err instanceof SecretError);
    assert.equal(err.code, 'unknown_master_key');
    const idA = masterKeyId(Buffer.from(KEY_A, 'base64'));
    assert.match(err.message, /db-password/);
    assert.ok(err.message.includes(idA), err.message);
    assert.ok(!err.message.includes(KEY_A) && !err.message.includes(KEY_B), 'no key material');
    assert.ok(!err.message.includes(CANARY));
    return true;
  });
  await b.close();
});

test('T20 tampered ciphertext, tampered wrapped key and a ciphertext moved to another name all fail closed', async () => {
  const dir = tmp();
  const env = { GATEHOUSE_MASTER_KEY: KEY_A };
  const store = envStore(dir, env);
  await store.set('alpha', CANARY);
  await store.set('beta', CANARY2);
  const db = new Database(secretsDbPath(dir));
  const row = (n: string) =>
    db.prepare('SELECT ciphertext, wrapped_key FROM secrets WHERE name = ?').get(n) as {
      ciphertext: Buffer;
      wrapped_key: Buffer;
    };
  const alpha = row('alpha');
  // Flip one ciphertext bit.
  const flipped = Buffer.from(alpha.ciphertext);
  flipped[14] = (flipped[14] ?? 0) ^ 1;
  db.prepare('UPDATE secrets SET ciphertext = ? WHERE name = ?').run(flipped, 'alpha');
  await failsClosed(store.get('alpha'), 'decrypt_failed', 'alpha');
  // Flip one bit of the wrapped data key.
  const wk = Buffer.from(alpha.wrapped_key);
  wk[20] = (wk[20] ?? 0) ^ 1;
  db.prepare('UPDATE secrets SET ciphertext = ?, wrapped_key = ? WHERE name = ?').run(
    alpha.ciphertext,
    wk,
    'alpha',
  );
  await failsClosed(store.get('alpha'), 'decrypt_failed', 'alpha');
  // Move beta's whole row (ciphertext and wrapped key) under alpha's name: the AAD is the name.
  const beta = row('beta');
  db.prepare('UPDATE secrets SET ciphertext = ?, wrapped_key = ? WHERE name = ?').run(
    beta.ciphertext,
    beta.wrapped_key,
    'alpha',
  );
  await failsClosed(store.get('alpha'), 'decrypt_failed', 'alpha');
  // Truncated ciphertext.
  db.prepare('UPDATE secrets SET ciphertext = ?, wrapped_key = ? WHERE name = ?').run(
    Buffer.alloc(5),
    alpha.wrapped_key,
    'alpha',
  );
  await failsClosed(store.get('alpha'), 'decrypt_failed', 'alpha');
  // beta itself still opens.
  assert.equal((await store.get('beta')).toString(), CANARY2);
  db.close();
  await store.close();
});

test('T20 GATEHOUSE_MASTER_KEY: base64 and hex accepted, malformed refused precisely without echoing it', () => {
  assert.equal(parseMasterKey(KEY_A, 'X').length, 32);
  assert.equal(parseMasterKey(KEY_B, 'X').length, 32);
  assert.equal(parseMasterKey(Buffer.alloc(32, 7).toString('base64url'), 'X').length, 32);
  for (const bad of ['c2hvcnQ=', 'zz'.repeat(32), `${KEY_B}00`, 'not a key!', 'canary-secret-not-real-key']) {
    assert.throws(
      () => new EnvKeyProvider({ GATEHOUSE_MASTER_KEY: bad }),
      (err: unknown) => {
        assert.ok(err instanceof KeyError);
        assert.equal(err.code, 'invalid_master_key');
        assert.match(err.message, /GATEHOUSE_MASTER_KEY must be 32 bytes as base64 \(44 characters\) or hex/);
        assert.ok(!err.message.includes(bad), 'the malformed key is not echoed');
        return true;
      },
    );
  }
  assert.throws(() => new EnvKeyProvider({ GATEHOUSE_MASTER_KEY: '' }), /not set/);
});

test('T20 key file: generated 0600 on first use; a 0644 key file is refused', async () => {
  const dir = tmp();
  const { store, warnings } = openSecretStore(dir, { env: {} });
  assert.deepEqual(warnings, [EMBEDDED_KEY_WARNING], 'start-up warning for the generated key');
  await store.set('token', CANARY);
  await store.close();
  const path = masterKeyFilePath(dir);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.ok(!readFileSync(path, 'utf8').includes(CANARY));
  chmodSync(path, 0o644);
  const again = openSecretStore(dir, { env: {} }).store;
  await assert.rejects(again.get('token'), (err: unknown) => {
    assert.ok(err instanceof KeyError, String(err));
    assert.equal(err.code, 'key_file');
    assert.match(err.message, /readable by group or others.*chmod 600/);
    return true;
  });
  chmodSync(path, 0o600);
  assert.equal((await again.get('token')).toString(), CANARY);
  await again.close();
});

test('T20 GATEHOUSE_MASTER_KEY_FILE: an operator key file (one key) is used, never created, 0600 enforced', async () => {
  const dir = tmp();
  const file = join(tmp(), 'master.key');
  const missing = openSecretStore(dir, { env: { GATEHOUSE_MASTER_KEY_FILE: file } });
  assert.deepEqual(missing.warnings, []);
  await assert.rejects(missing.store.set('x-token', CANARY), /no master key file/);
  await missing.store.close();
  writeFileSync(file, `${KEY_A}\n`, { mode: 0o600 });
  const { store } = openSecretStore(dir, { env: { GATEHOUSE_MASTER_KEY_FILE: file } });
  await store.set('x-token', CANARY);
  await store.close();
  // The same key through the environment opens it: the file is just another source.
  const viaEnv = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_A });
  assert.equal((await viaEnv.get('x-token')).toString(), CANARY);
  await viaEnv.close();
  chmodSync(file, 0o640);
  const loose = openSecretStore(dir, { env: { GATEHOUSE_MASTER_KEY_FILE: file } }).store;
  await assert.rejects(loose.get('x-token'), /readable by group or others/);
  await loose.close();
});

test('rotate-key (file ring): re-wraps every data key, new master key id recorded, old ciphertexts open, prune', async () => {
  const dir = tmp();
  const { store } = openSecretStore(dir, { env: {} });
  await store.set('one', CANARY);
  await store.set('two', CANARY2);
  const before = await store.list();
  const oldId = before[0]?.keyId;
  const ciphertextBefore = (await new SqliteSecretRepo(secretsDbPath(dir)).get('one'))?.ciphertext;
  // A second process (a running gateway) with the old ring in memory.
  const gateway = openSecretStore(dir, { env: {} }).store;
  assert.equal((await gateway.get('one')).toString(), CANARY);

  const r = await store.rotateKey();
  assert.notEqual(r.keyId, oldId);
  assert.equal(r.rewrapped, 2);
  assert.deepEqual(r.pruned, []);
  const after = await store.list();
  assert.deepEqual(
    after.map((s) => s.keyId),
    [r.keyId, r.keyId],
    'new master key id recorded on every row',
  );
  const repo = new SqliteSecretRepo(secretsDbPath(dir));
  assert.deepEqual((await repo.get('one'))?.ciphertext, ciphertextBefore, 'values were not re-encrypted');
  await repo.close();
  const ring = JSON.parse(readFileSync(masterKeyFilePath(dir), 'utf8')) as { current: string; keys: object };
  assert.equal(ring.current, r.keyId);
  assert.deepEqual(Object.keys(ring.keys).sort(), [oldId, r.keyId].sort(), 'old key kept until pruned');
  assert.equal(statSync(masterKeyFilePath(dir)).mode & 0o777, 0o600);
  // The running gateway reads rows wrapped under the new key without a restart.
  assert.equal((await gateway.get('two')).toString(), CANARY2);
  // A second rotation with prune forgets the keys no row uses.
  const r2 = await store.rotateKey({ prune: true });
  assert.deepEqual(r2.pruned.sort(), [oldId, r.keyId].sort());
  assert.equal((await store.get('one')).toString(), CANARY);
  await gateway.close();
  await store.close();
});

test('rotate-key (env): re-wraps under the new GATEHOUSE_MASTER_KEY using GATEHOUSE_MASTER_KEY_PREVIOUS', async () => {
  const dir = tmp();
  const old = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_A });
  await old.set('svc.secret', CANARY);
  await old.close();
  // Without the previous key: fails closed, and rotation changes nothing.
  const noPrev = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_B });
  await failsClosed(noPrev.rotateKey(), 'unknown_master_key', 'svc.secret');
  await noPrev.close();
  const rotating = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_B, GATEHOUSE_MASTER_KEY_PREVIOUS: KEY_A });
  const r = await rotating.rotateKey();
  assert.equal(r.keyId, masterKeyId(Buffer.from(KEY_B, 'hex')));
  assert.equal(r.rewrapped, 1);
  await rotating.close();
  const onlyNew = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_B });
  assert.equal((await onlyNew.get('svc.secret')).toString(), CANARY);
  await onlyNew.close();
  const onlyOld = envStore(dir, { GATEHOUSE_MASTER_KEY: KEY_A });
  await failsClosed(onlyOld.get('svc.secret'), 'unknown_master_key');
  await onlyOld.close();
});

test('T20 get registers the value with the leak guard; replaced and removed values stay registered', async () => {
  const guard = new LeakGuard();
  const store = envStore(tmp(), { GATEHOUSE_MASTER_KEY: KEY_A }, guard);
  await store.set('upstream-key', CANARY);
  assert.equal(guard.redact(`echo ${CANARY}`).value, `echo ${CANARY}`, 'not registered before use');
  await store.get('upstream-key');
  assert.equal(guard.redact(`echo ${CANARY}`).value, 'echo [REDACTED:upstream-key]');
  await store.set('upstream-key', CANARY2);
  await store.get('upstream-key');
  await store.remove('upstream-key');
  // An upstream that was handed either value may still echo it.
  assert.equal(guard.redact(`${CANARY} ${CANARY2}`).value, '[REDACTED:upstream-key] [REDACTED:upstream-key]');
  await store.close();
});

test('FileKeyProvider refuses a ring whose key does not match its id', async () => {
  const dir = tmp();
  const path = masterKeyFilePath(dir);
  writeFileSync(path, JSON.stringify({ version: 1, current: 'mk_0000', keys: { mk_0000: KEY_A } }), {
    mode: 0o600,
  });
  await assert.rejects(new FileKeyProvider(path).currentKeyId(), /does not match its id/);
});
