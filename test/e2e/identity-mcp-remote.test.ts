/**
 * mcp-remote (npm), a real third-party MCP client, completes its OAuth flow
 * against Gatehouse's embedded authorization server (discovery, dynamic
 * registration, PKCE, loopback callback) and calls a tool. Its "browser" is a
 * BROWSER script that logs in and consents headlessly.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { demoConfig } from '../../src/cli/demo.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { seedUser } from '../helpers/oauth.ts';

const require = createRequire(import.meta.url);
const MCP_REMOTE = require.resolve('mcp-remote/dist/proxy.js');
const ROOT = new URL('../..', import.meta.url).pathname;
const USER = { username: 'bob', password: 'fake-canary-password-bob' };

let gw: TestGateway;
let work: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-mcp-remote-'));
  const dataDir = join(work, 'data');
  await seedUser(dataDir, USER);
  const demo = demoConfig(dataDir);
  gw = await startTestGateway({ ...demo, auth: { ...demo.auth, mode: 'embedded' } }, { dataDir });
});
after(async () => {
  await gw.close();
  rmSync(work, { recursive: true, force: true });
});

test('mcp-remote completes discovery → DCR → PKCE → loopback callback and calls a tool', {
  timeout: 90_000,
}, async () => {
  const browser = join(work, 'browser.sh');
  writeFileSync(
    browser,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(join(ROOT, 'test/fixtures/browser-cli.ts'))} "$1" >>${JSON.stringify(join(work, 'browser.log'))} 2>&1\n`,
  );
  chmodSync(browser, 0o755);
  const callbackPort = 40_000 + Math.floor(Math.random() * 10_000);
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MCP_REMOTE, gw.url, String(callbackPort)],
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: work,
      MCP_REMOTE_CONFIG_DIR: join(work, 'mcp-auth'),
      // No desktop: the bundled xdg-open falls back to $BROWSER.
      BROWSER: browser,
      TEST_BROWSER_USER: USER.username,
      TEST_BROWSER_PASSWORD: USER.password,
    },
    stderr: 'pipe',
  });
  let log = '';
  transport.stderr?.on('data', (c: Buffer) => {
    log += c.toString();
  });
  const client = new Client({ name: 'via-mcp-remote', version: '1' });
  try {
    await client.connect(transport);
    const tools = await client.listTools();
    assert.ok(
      tools.tools.some((t) => t.name === 'everything__echo'),
      log.slice(-2000),
    );
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'via mcp-remote' } });
    assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: via mcp-remote' }]);
  } catch (err) {
    assert.fail(`${String(err)}\n--- mcp-remote log ---\n${log.slice(-3000)}`);
  } finally {
    await client.close();
  }
});
