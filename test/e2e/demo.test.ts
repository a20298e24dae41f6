/**
 * The README's first command: `gatehouse start` without a config runs the
 * embedded demo with authentication on, and the instructions it prints take a
 * new user from zero to an authenticated tool call with a real client.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = ['--import', 'tsx', join(ROOT, 'src/cli/index.ts')];

/** Runs a printed `npx gatehouse …` line as the CLI from source, with the given environment. */
function runPrinted(
  line: string,
  env: Record<string, string> = {},
): { status: number | null; stdout: string; stderr: string } {
  const m = /npx gatehouse (\S+) (.*)$/.exec(line.trim());
  assert.ok(m?.[1] && m[2] !== undefined, `not a gatehouse command: ${line}`);
  // The printed lines use single quotes around JSON and no other shell features.
  const args = [...m[2].matchAll(/'([^']*)'|(\S+)/g)].map((x) => x[1] ?? x[2] ?? '');
  const r = spawnSync(process.execPath, [...CLI, m[1], ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the embedded demo (README: npm start)', () => {
  let child: ChildProcess;
  let banner = '';
  let dataDir: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-demo-'));
    child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data-dir', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`demo did not start:\n${banner}`)), 30_000);
      child.stdout?.on('data', (c: Buffer) => {
        banner += c.toString();
        if (banner.includes('users add')) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`demo exited ${code}:\n${banner}`)));
    });
  });
  after(() => {
    child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('starts with authentication on and says how to connect', () => {
    assert.match(banner, /authentication: embedded OAuth server/);
    assert.match(banner, /MCP endpoint: +http:\/\/127\.0\.0\.1:\d+\/mcp/);
  });

  test('the printed commands get a token and make an authenticated tool call with the MCP SDK client', async () => {
    const lines = banner.split('\n');
    const tokenLine = lines.find((l) => l.includes('gatehouse token'));
    const callLine = lines.find((l) => l.includes('gatehouse call'));
    assert.ok(tokenLine && callLine, banner);
    const tokenCmd = /\$\((npx gatehouse token [^)]*)\)/.exec(tokenLine)?.[1] ?? '';
    const token = runPrinted(tokenCmd);
    assert.equal(token.status, 0, token.stderr);
    const accessToken = token.stdout.trim();
    assert.match(accessToken, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT access token');
    const call = runPrinted(callLine, { GATEHOUSE_TOKEN: accessToken });
    assert.equal(call.status, 0, call.stderr);
    assert.match(call.stdout, /Echo: hello/);
    // Without the token, the same call is refused.
    const anon = runPrinted(callLine, { GATEHOUSE_TOKEN: '' });
    assert.notEqual(anon.status, 0);
    assert.match(anon.stderr, /unauthorized|authentication required/);
  });

  test('a high-risk tool waits for a human: the printed approvals commands release the held call', async () => {
    const lines = banner.split('\n');
    const tokenCmd = /\$\((npx gatehouse token [^)]*)\)/.exec(
      lines.find((l) => l.includes('gatehouse token')) ?? '',
    )?.[1];
    const callLine = lines.find((l) => l.includes('everything__gzip-file-as-resource'));
    const listLine = lines.find((l) => l.includes('gatehouse approvals list'));
    const approveLine = lines.find((l) => l.includes('gatehouse approvals approve'));
    assert.ok(tokenCmd && callLine && listLine && approveLine, banner);
    assert.match(banner, /console: http:\/\/127\.0\.0\.1:\d+\/admin\//);
    const token = runPrinted(tokenCmd).stdout.trim();
    // The call waits (held for approval) while the approver acts in another terminal.
    const m = /npx gatehouse (\S+) (.*)$/.exec(callLine.trim());
    const args = [...(m?.[2] ?? '').matchAll(/'([^']*)'|(\S+)/g)].map((x) => x[1] ?? x[2] ?? '');
    const call = spawn(process.execPath, [...CLI, m?.[1] ?? '', ...args], {
      env: { ...process.env, GATEHOUSE_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    call.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    call.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => call.once('exit', resolve));
    let id = '';
    for (let i = 0; i < 100 && !id; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const list = runPrinted(`${listLine.trim()} --json`);
      assert.equal(list.status, 0, list.stderr);
      id = (JSON.parse(list.stdout) as { id: string; tool: string }[])[0]?.id ?? '';
    }
    assert.match(id, /^apr_/, `no pending request: ${out}`);
    const approve = runPrinted(approveLine.replace(' ID ', ` ${id} `));
    assert.equal(approve.status, 0, approve.stderr);
    assert.match(approve.stdout, new RegExp(`approved ${id} as alice`));
    assert.equal(await exited, 0, out);
  });

  test('the demo agent secret is generated into the data dir, readable by the owner only', () => {
    const mode = statSync(join(dataDir, 'demo-agent.secret')).mode & 0o777;
    assert.equal(mode, 0o600);
  });
});
