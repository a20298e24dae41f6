/**
 * Upstream secrets from the store, injected at the last hop and never shown to the agent: a real
 * stdio server (server-everything) whose `get-env` tool prints its environment.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { ConfigError } from '../../src/config/load.ts';
import { startGateway } from '../../src/gateway.ts';
import { openSecretStore } from '../../src/secrets/store.ts';
import { connectClient, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

/** An obviously fake canary. */
const CANARY = 'canary-upstream-api-key-not-real-7f3a9c';
const everything = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-everything/dist/index.js',
);

let dataDir: string;
let gw: TestGateway;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-secrets-e2e-'));
  const { store } = openSecretStore(dataDir);
  await store.set('demo-api-key', CANARY, { service: 'demo' });
  await store.close();
  gw = await startTestGateway(
    {
      upstreams: {
        everything: {
          type: 'stdio',
          command: process.execPath,
          args: [everything, 'stdio'],
          env: {
            DEMO_API_KEY: { secret: 'demo-api-key' },
            DEMO_AUTH_HEADER: { secret: 'demo-api-key', format: 'Bearer {}' },
          },
        },
      },
    },
    { dataDir },
  );
});

after(async () => {
  await gw?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('T20: a secret injected into a stdio upstream is redacted from what the agent sees', async () => {
  const client = await connectClient(gw.url);
  try {
    const r = await client.callTool({ name: 'everything__get-env', arguments: {} });
    const text = JSON.stringify(r);
    assert.ok(!text.includes(CANARY), 'the secret never reaches the agent');
    assert.ok(!text.includes(Buffer.from(CANARY).toString('base64')), 'nor its base64 form');
    // The upstream did receive it (that is why it was redacted), in both configured forms.
    assert.match(text, /DEMO_API_KEY[^,]*\[REDACTED:demo-api-key\]/);
    assert.match(text, /DEMO_AUTH_HEADER[^,]*Bearer \[REDACTED:demo-api-key\]/);
    // The upstream's environment holds only what the config gives it, not the gateway's.
    assert.ok(!text.includes('GATEHOUSE_'), 'no gateway environment leaks into the upstream');
  } finally {
    await client.close();
  }
});

test('T20: a config naming a secret that is not in the store does not start, and says which key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-secrets-missing-'));
  try {
    await assert.rejects(
      startGateway({
        config: {
          auth: { mode: 'none' },
          server: { host: '127.0.0.1', port: 0 },
          upstreams: {
            up: {
              type: 'http',
              url: 'http://127.0.0.1:1/mcp',
              headers: { authorization: { secret: 'nope' } },
            },
          },
        },
        dataDir: dir,
        logger: pino({ level: 'silent' }),
      }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.problems.some((p) => p.path === 'upstreams.up.headers.authorization' && /`nope`/.test(p.message)),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('T20: check-config fails on a secret that is not in the store, naming the key and never a value', async () => {
  const { spawnSync } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const yaml = join(dataDir, 'check.yaml');
  writeFileSync(
    yaml,
    [
      'upstreams:',
      '  up:',
      '    type: http',
      '    url: http://127.0.0.1:1/mcp',
      '    headers:',
      '      authorization: { secret: demo-api-key, format: "Bearer {}" }',
      '      x-other: { secret: missing-one }',
      '',
    ].join('\n'),
  );
  const cli = join(new URL('../..', import.meta.url).pathname, 'src/cli/index.ts');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', cli, 'check-config', yaml, '--data-dir', dataDir],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /upstreams\.up\.headers\.x-other: secret `missing-one` is not in the store/);
  assert.doesNotMatch(r.stderr, /authorization/, 'the secret that exists is fine');
  assert.ok(!(r.stdout + r.stderr).includes(CANARY));
});

test('T20: a stored secret an agent sends or an upstream returns is redacted in the audit log too', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const client = await connectClient(gw.url);
  try {
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: `leak ${CANARY}` } });
    assert.ok(!JSON.stringify(r).includes(CANARY));
  } finally {
    await client.close();
  }
  const dir = join(dataDir, 'audit');
  const log = readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('');
  assert.match(log, /leak \[REDACTED:demo-api-key\]/, 'the call is recorded, redacted');
  assert.ok(!log.includes(CANARY), 'no audit record holds the secret');
});
