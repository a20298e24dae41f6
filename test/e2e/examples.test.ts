/**
 * examples/least-privilege.yaml through the real CLI (`gatehouse start --config`): the read-only agent,
 * the agent limited to one repository by an argument rule, a task token for two tools only, and an
 * atomic policy reload on SIGHUP.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { type CliGateway, startCliGateway } from '../helpers/gateway.ts';
import { clientCredentialsToken, connectWithBearer, exchangeToken } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SECRETS: Record<string, string> = {
  reporter: 'canary-example-reporter-not-real',
  triage: 'canary-example-triage-not-real',
  'ops-bot': 'canary-example-ops-bot-not-real',
};

let work: string;
let gw: CliGateway;
let url: string;
let origin: string;

const agent = (id: string) => ({ id, secret: SECRETS[id] as string });
const token = (id: string): Promise<string> => clientCredentialsToken(origin, agent(id), url);
const connect = (bearer: string): Promise<Client> => connectWithBearer(url, bearer);

async function refused(client: Client, name: string, args: Record<string, unknown>): Promise<number> {
  try {
    await client.callTool({ name, arguments: args });
  } catch (err) {
    assert.ok(err instanceof McpError, String(err));
    return err.code;
  }
  assert.fail(`${name} ${JSON.stringify(args)} was allowed`);
}

async function sighup(): Promise<void> {
  const before = gw.stderr().length;
  gw.child.kill('SIGHUP');
  for (let i = 0; i < 100 && !gw.stderr().slice(before).includes('SIGHUP'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-examples-'));
  // A copy, so the reload test can edit the policies; paths in the YAML are relative to it.
  cpSync(join(ROOT, 'examples'), join(work, 'examples'), { recursive: true });
  gw = await startCliGateway(
    ['--config', join(work, 'examples/least-privilege.yaml'), '--data-dir', join(work, 'data')],
    // cwd: the example's upstream path is relative to the repository root
    {
      env: {
        REPORTER_SECRET: SECRETS.reporter as string,
        TRIAGE_SECRET: SECRETS.triage as string,
        OPS_BOT_SECRET: SECRETS['ops-bot'] as string,
      },
    },
  );
  url = gw.url;
  origin = gw.origin;
});

after(() => {
  gw?.child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
});

describe('examples/least-privilege.yaml', () => {
  test('T16-17: a read-only agent (policies/readonly-agent.cedar) sees and calls only read tools; a lying readOnlyHint is not believed', async () => {
    const client = await connect(await token('reporter'));
    try {
      const listed = (await client.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(listed, ['github__read_file', 'github__search_code']);
      const r = await client.callTool({ name: 'github__read_file', arguments: { path: 'README.md' } });
      assert.notEqual(r.isError, true);
      assert.equal(await refused(client, 'github__write_file', { path: 'x', content: 'y' }), -32020);
      // delete_repo claims readOnlyHint: true (listed above it is not), but the github server is not trusted.
      assert.equal(await refused(client, 'github__delete_repo', { repo: 'acme/widgets' }), -32020);
    } finally {
      await client.close();
    }
  });

  test('an agent limited to one repository by an argument rule (policies/one-repo.cedar)', async () => {
    const client = await connect(await token('triage'));
    try {
      const ok = await client.callTool({
        name: 'github__create_issue',
        arguments: { repo: 'acme/widgets', title: 'flaky test' },
      });
      assert.notEqual(ok.isError, true);
      assert.equal(
        await refused(client, 'github__create_issue', { repo: 'acme/secret', title: 'x' }),
        -32020,
      );
      assert.equal(await refused(client, 'github__search_code', { q: 'password' }), -32020);
      const scoped = await client.callTool({
        name: 'github__search_code',
        arguments: { q: 'todo', repo: 'acme/widgets' },
      });
      assert.notEqual(scoped.isError, true);
    } finally {
      await client.close();
    }
  });

  test('a task token for two tools only (policies/task-agent.cedar)', async () => {
    const own = await token('ops-bot');
    const { status, body } = await exchangeToken(origin, agent('ops-bot'), own, {
      resource: url,
      scope: 'mcp tool:github__search_code tool:github__create_issue',
    });
    assert.equal(status, 200, JSON.stringify(body));
    const client = await connect(String(body.access_token));
    try {
      const listed = (await client.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(listed, ['github__create_issue', 'github__search_code']);
      assert.equal(await refused(client, 'github__write_file', { path: 'x', content: 'y' }), -32020);
      const r = await client.callTool({ name: 'github__search_code', arguments: { q: 'x' } });
      assert.notEqual(r.isError, true);
    } finally {
      await client.close();
    }
  });

  test('SIGHUP reloads policies atomically; a broken file keeps the current set', async () => {
    const client = await connect(await token('reporter'));
    try {
      await client.callTool({ name: 'github__read_file', arguments: { path: 'a' } });
      const file = join(work, 'examples/policies/readonly-agent.cedar');
      // Take the reporter's call permission away.
      writeFileSync(
        file,
        '@id("reporter-list")\npermit (principal == Gatehouse::Agent::"reporter", action == Gatehouse::Action::"list_tools", resource);\n',
      );
      await sighup();
      assert.match(gw.stderr(), /policies reloaded/);
      assert.equal(await refused(client, 'github__read_file', { path: 'a' }), -32020);
      // A broken set is refused as a whole: the reporter stays denied, and the error names the file.
      writeFileSync(file, 'permit (principal, action, resource) when { nonsense };\n');
      await sighup();
      assert.match(gw.stderr(), /policies NOT reloaded/);
      assert.match(gw.stderr(), /readonly-agent\.cedar:1/);
      assert.equal(await refused(client, 'github__read_file', { path: 'a' }), -32020);
    } finally {
      await client.close();
    }
  });
});
