/**
 * The contract every {@link SecretRepo} backend must pass (SQLite today; a KMS- or
 * Vault-backed repository later). Call `repoContract(name, open)` from a test file.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SecretRepo, SecretRow } from '../../src/secrets/repo.ts';

function row(name: string, over: Partial<SecretRow> = {}): SecretRow {
  return {
    name,
    service: 'svc',
    keyId: 'mk_a',
    format: 1,
    ciphertext: Buffer.from(`ct-${name}`),
    wrappedKey: Buffer.from(`wk-${name}`),
    createdAt: 1000,
    updatedAt: 1000,
    lastUsedAt: undefined,
    ...over,
  };
}

export function repoContract(name: string, open: () => SecretRepo | Promise<SecretRepo>): void {
  test(`${name} contract: put/get/list/touch/remove`, async () => {
    const repo = await open();
    try {
      assert.equal(await repo.get('a'), undefined);
      await repo.put(row('b'));
      await repo.put(row('a', { service: undefined }));
      assert.deepEqual(await repo.get('b'), row('b'));
      await repo.touch('b', 2000);
      // A replacement keeps createdAt and lastUsedAt.
      await repo.put(row('b', { createdAt: 5000, updatedAt: 5000, ciphertext: Buffer.from('new') }));
      const b = await repo.get('b');
      assert.equal(b?.createdAt, 1000);
      assert.equal(b?.updatedAt, 5000);
      assert.equal(b?.lastUsedAt, 2000);
      assert.deepEqual(b?.ciphertext, Buffer.from('new'));
      const list = await repo.list();
      assert.deepEqual(
        list.map((s) => [s.name, s.service]),
        [
          ['a', undefined],
          ['b', 'svc'],
        ],
      );
      assert.ok(
        list.every((s) => !('ciphertext' in s) && !('wrappedKey' in s)),
        'list carries no ciphertext',
      );
      assert.equal(await repo.remove('a'), true);
      assert.equal(await repo.remove('a'), false);
      assert.deepEqual(
        (await repo.list()).map((s) => s.name),
        ['b'],
      );
    } finally {
      await repo.close();
    }
  });

  test(`${name} contract: rewrap is one compare-and-set transaction`, async () => {
    const repo = await open();
    try {
      await repo.put(row('a'));
      await repo.put(row('b'));
      const keys = await repo.wrappedKeys();
      assert.deepEqual(
        keys.map((k) => k.name),
        ['a', 'b'],
      );
      // b changes after it was read: its update is skipped, a's applies.
      await repo.put(row('b', { keyId: 'mk_new', wrappedKey: Buffer.from('fresh') }));
      const n = await repo.rewrap(
        keys.map((k) => ({
          name: k.name,
          old: { keyId: k.keyId, wrappedKey: k.wrappedKey },
          keyId: 'mk_b',
          wrappedKey: Buffer.from(`re-${k.name}`),
        })),
      );
      assert.equal(n, 1);
      assert.equal((await repo.get('a'))?.keyId, 'mk_b');
      assert.deepEqual((await repo.get('a'))?.wrappedKey, Buffer.from('re-a'));
      assert.deepEqual((await repo.get('a'))?.ciphertext, Buffer.from('ct-a'), 'ciphertext untouched');
      assert.equal((await repo.get('b'))?.keyId, 'mk_new');
    } finally {
      await repo.close();
    }
  });
}
