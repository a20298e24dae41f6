/**
 * examples/github-like.yaml through the real CLI (`secrets set`, `users add`, `start`, `token`,
 * `credentials revoke`): a per-user OAuth connection and a static key side by side, against a fake
 * GitHub-like SaaS (its own oidc-provider, an API, an MCP server). The example's three loopback origins
 * are rewritten to the fake's ports; everything else is the file as shipped.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { type FakeSaas, startFakeSaas } from '../fixtures/saas/index.ts';
import { completeConnectLink } from '../helpers/browser.ts';
import { allTools, type CliGateway, refusedOnceRevoked, startCliGateway } from '../helpers/gateway.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const SEARCH_KEY = `fake-canary-search-key-${randomBytes(8).toString('hex')}`;
const AGENT_SECRET = `fake-canary-coding-agent-${randomBytes(8).toString('hex')}`;
const ALICE = { username: 'alice', password: 'fake-canary-password-alice' };

let saas: FakeSaas;
let work: string;
let dataDir: string;
let configFile: string;
let gw: CliGateway;
let origin: string;

function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), ...args, '--data-dir', dataDir],
      { cwd: ROOT, env: { ...process.env, CODING_AGENT_SECRET: AGENT_SECRET } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
    p.stdin?.end(input ?? '');
  });
}

before(async () => {
  saas = await startFakeSaas({ accessTokenRevocation: 'token' });
  work = mkdtempSync(join(tmpdir(), 'gatehouse-github-like-'));
  dataDir = join(work, 'data');
  cpSync(join(ROOT, 'examples'), join(work, 'examples'), { recursive: true });
  configFile = join(work, 'examples/github-like.yaml');
  let yaml = readFileSync(configFile, 'utf8');
  for (const [from, to] of [
    ['http://127.0.0.1:9410', saas.issuer],
    ['http://127.0.0.1:9411/v1', saas.apiUrl],
    ['http://127.0.0.1:9412/mcp', saas.mcpUrl],
  ] as const) {
    assert.ok(yaml.includes(from), `the example names ${from}`);
    yaml = yaml.replaceAll(from, to);
  }
  writeFileSync(configFile, yaml);

  // The operator's steps from the example's header.
  for (const [args, input] of [
    [['secrets', 'set', 'github-oauth-client', '--service', 'github'], saas.clientSecret],
    [['secrets', 'set', 'search-api-key', '--service', 'search'], SEARCH_KEY],
  ] as const) {
    const r = await cli([...args], `${input}\n`);
    assert.equal(r.code, 0, r.stderr);
  }
  // A config that names a missing secret fails check-config; this one passes.
  const checked = await cli(['check-config', configFile]);
  assert.equal(checked.code, 0, checked.stderr);

  gw = await startCliGateway(['--config', configFile, '--data-dir', dataDir], {
    env: { CODING_AGENT_SECRET: AGENT_SECRET },
  });
  origin = gw.origin;
  saas.setRedirectUris([`${origin}/connect/callback`]);
  const added = await cli(['users', 'add', 'alice'], `${ALICE.password}\n`);
  assert.equal(added.code, 0, added.stderr);
});

after(async () => {
  gw?.child.kill('SIGTERM');
  await saas?.close();
  rmSync(work, { recursive: true, force: true });
});

async function aliceClient(): Promise<Client> {
  const t = await cli([
    'token',
    '--client',
    'coding-agent',
    '--user',
    'alice',
    '--url',
    origin,
    '--config',
    configFile,
  ]);
  assert.equal(t.code, 0, t.stderr);
  const client = new Client(
    { name: 'github-like-e2e', version: '1' },
    { capabilities: { elicitation: { url: {} } } },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${t.stdout.trim()}` } },
    }),
  );
  return client;
}

test('examples/github-like.yaml: the static key and the per-user connection, side by side', async () => {
  const client = await aliceClient();
  try {
    const tools = await allTools(client);
    assert.ok(
      tools.includes('github__list_records') && tools.includes('search__get-env'),
      `${tools.join(',')}\n${gw.stderr()}`,
    );

    // Static key: injected into the stdio server's environment, never shown to the agent.
    const env = JSON.stringify(await client.callTool({ name: 'search__get-env', arguments: {} }));
    assert.match(env, /SEARCH_API_KEY[^,]*\[REDACTED:search-api-key\]/);
    assert.ok(!env.includes(SEARCH_KEY));

    // Per-user: the first call asks alice to connect her account (URL-mode elicitation).
    const err = await client.callTool({ name: 'github__list_records', arguments: {} }).then(
      () => assert.fail('the call ran without a connection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof McpError && err.code === -32042, String(err));
    const link = (err.data as { elicitations: { url: string }[] }).elicitations[0]?.url as string;
    const done = await completeConnectLink(
      link,
      ALICE,
      (url) => saas.authorize(url, 'alice'),
      (html) => assert.match(html, /coding-agent/, 'the consent page names the agent'),
    );
    assert.equal(done.status, 200);

    const r = await client.callTool({ name: 'github__list_records', arguments: {} });
    assert.notEqual(r.isError, true, JSON.stringify(r));
    assert.match(JSON.stringify(r), /alice/);
    assert.equal(saas.apiRequests.at(-1)?.sub, 'alice');
    assert.equal(saas.apiRequests.at(-1)?.scope, 'records:read');

    // The refresh token is in the store under a connection name, never printed.
    const secrets = await cli(['secrets', 'list']);
    assert.match(secrets.stdout, /conn\.github\.[0-9a-f]{24}/);

    // Revoking alice's credentials ends her leases: the next call is refused.
    const revoked = await cli(['credentials', 'revoke', '--user', 'alice']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked 2 lease/);
    assert.equal((await refusedOnceRevoked(client, 'github__list_records')).code, -32024);
  } finally {
    await client.close();
  }
  assert.ok(
    !gw.stderr().includes(SEARCH_KEY) && !gw.stderr().includes(saas.clientSecret),
    'no secret in the gateway logs',
  );
});
