/**
 * Config `bus` (cluster mode): validated at start-up and by `check-config`, each problem naming the
 * key; `check-config --connect` reaches the real Redis on 127.0.0.1:6379.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { PG_URL, REDIS_URL } from './harness.ts';

const CLI = ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'src', 'cli', 'index.ts')];
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bus-cfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const upstreams = { demo: { type: 'http', url: 'http://127.0.0.1:9/mcp' } };
const postgres = { kind: 'postgres', postgres: { url: PG_URL } };
const SECRET = 'FAKE-cluster-secret-for-config-tests-0000';

function problems(input: Record<string, unknown>): string[] {
  try {
    parseConfig({ upstreams, ...input });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

test('bus defaults to none: one process, nothing to configure', () => {
  assert.equal(parseConfig({ upstreams }).bus.kind, 'none');
});

test('bus redis needs a url, a secret of at least 32 characters and the PostgreSQL store, each named', () => {
  const p = problems({ bus: { kind: 'redis' } });
  assert.ok(p.includes('bus.url: required when kind is redis'), p.join('\n'));
  assert.ok(p.includes('bus.secret: required when kind is redis'), p.join('\n'));
  assert.ok(
    p.some((x) => x.startsWith('bus.kind: redis (cluster mode) needs storage.kind postgres')),
    p.join('\n'),
  );
  assert.deepEqual(problems({ storage: postgres, bus: { kind: 'redis', url: REDIS_URL, secret: 'short' } }), [
    'bus.secret: must be at least 32 characters',
  ]);
  assert.ok(
    problems({
      storage: postgres,
      bus: { kind: 'redis', url: 'http://127.0.0.1:6379', secret: SECRET },
    })[0]?.startsWith('bus.url:'),
  );
  assert.ok(
    problems({
      storage: postgres,
      bus: { kind: 'redis', url: REDIS_URL, secret: SECRET, prefix: 'a b' },
    })[0]?.startsWith('bus.prefix:'),
  );
  assert.deepEqual(
    problems({ storage: postgres, bus: { kind: 'redis', url: REDIS_URL, secret: { env: 'GATEHOUSE_X' } } }),
    [],
  );
});

function checkConfig(config: object, ...args: string[]): { status: number | null; out: string } {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ upstreams, storage: postgres, ...config }));
  const r = spawnSync(process.execPath, [...CLI, 'check-config', file, ...args], {
    encoding: 'utf8',
    env: { ...process.env, GATEHOUSE_TEST_CLUSTER_SECRET: SECRET },
  });
  return { status: r.status, out: (r.stdout + r.stderr).replaceAll(file, 'FILE') };
}

test('check-config reads the cluster secret and, with --connect, pings Redis', () => {
  const bus = { kind: 'redis', url: REDIS_URL, secret: { env: 'GATEHOUSE_TEST_CLUSTER_SECRET' } };
  const ok = checkConfig({ bus }, '--connect');
  assert.equal(ok.status, 0, ok.out);
  const unset = checkConfig({ bus: { ...bus, secret: { env: 'GATEHOUSE_TEST_UNSET_SECRET' } } });
  assert.equal(unset.status, 1);
  assert.match(unset.out, /bus\.secret: environment variable GATEHOUSE_TEST_UNSET_SECRET is not set/);
  // Nothing listens on port 9: the problem names the key.
  const down = checkConfig({ bus: { ...bus, url: 'redis://127.0.0.1:9' } }, '--connect');
  assert.equal(down.status, 1, down.out);
  assert.match(down.out, /FILE: bus\.url: /);
});
