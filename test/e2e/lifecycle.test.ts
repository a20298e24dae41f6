/**
 * Upstreams that crash, hang or flood; graceful shutdown. A client never hangs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connectClient, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const FIXTURE = new URL('../fixtures/misbehaving-server.ts', import.meta.url).pathname;
const ROOT = new URL('../..', import.meta.url).pathname;

function text(result: unknown): string {
  return ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('');
}

describe('misbehaving upstreams', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      limits: { callTimeoutMs: 1500, maxResultBytes: 256 * 1024 },
      upstreams: {
        bad: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', FIXTURE], cwd: ROOT },
      },
    });
  });
  after(async () => gw.close());

  test('an upstream that crashes mid-call yields a JSON-RPC error; its session and the next get fresh processes', async () => {
    const client = await connectClient(gw.url);
    const pid = text(await client.callTool({ name: 'bad__pid', arguments: {} }));
    await assert.rejects(client.callTool({ name: 'bad__crash', arguments: {} }), /exited/);
    // Restarted for the session (test/e2e/upstream-restart.test.ts has the details).
    const restarted = text(await client.callTool({ name: 'bad__pid', arguments: {} }));
    assert.notEqual(restarted, pid);
    await client.close();
    const next = await connectClient(gw.url);
    const pid2 = text(await next.callTool({ name: 'bad__pid', arguments: {} }));
    assert.notEqual(pid2, pid);
    await next.close();
  });

  test('an upstream that hangs gets a timeout error and a notifications/cancelled', async () => {
    const client = await connectClient(gw.url);
    await assert.rejects(
      client.callTool({ name: 'bad__hang', arguments: {} }),
      /did not answer tools\/call within 1500 ms/,
    );
    const cancelled = JSON.parse(
      text(await client.callTool({ name: 'bad__cancelled', arguments: {} })),
    ) as string[];
    assert.equal(cancelled.length, 1, 'the upstream saw the cancellation');
    await client.close();
  });

  test('T30 an upstream that reports progress forever is cut at limits.maxCallMs', async () => {
    const g = await startTestGateway({
      limits: { callTimeoutMs: 1000, maxCallMs: 1500 },
      upstreams: {
        bad: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', FIXTURE], cwd: ROOT },
      },
    });
    try {
      const client = await connectClient(g.url);
      let progress = 0;
      await assert.rejects(
        client.callTool({ name: 'bad__endless-progress', arguments: {} }, undefined, {
          onprogress: () => {
            progress++;
          },
          resetTimeoutOnProgress: true,
          timeout: 60_000,
        }),
        /limits.maxCallMs/,
      );
      assert.ok(progress > 3, 'progress kept flowing past callTimeoutMs before the total cap hit');
      await client.close();
    } finally {
      await g.close();
    }
  });

  test('T30 a result over limits.maxResultBytes becomes result_too_large; the process and session survive', async () => {
    const client = await connectClient(gw.url);
    await assert.rejects(
      client.callTool({ name: 'bad__big', arguments: { bytes: 1024 * 1024 } }),
      /exceeds limits.maxResultBytes/,
    );
    assert.equal(text(await client.callTool({ name: 'bad__big', arguments: { bytes: 10 } })), 'x'.repeat(10));
    await client.close();
  });

  test("a client cancellation reaches the upstream with the upstream's request id", async () => {
    const client = await connectClient(gw.url);
    const ctrl = new AbortController();
    const call = client.callTool({ name: 'bad__hang', arguments: {} }, undefined, { signal: ctrl.signal });
    await new Promise((r) => setTimeout(r, 300));
    ctrl.abort('user gave up');
    await assert.rejects(call);
    await new Promise((r) => setTimeout(r, 200));
    const cancelled = JSON.parse(
      text(await client.callTool({ name: 'bad__cancelled', arguments: {} })),
    ) as string[];
    assert.equal(cancelled.length, 1);
    await client.close();
  });
});

test('an idle session is reaped: its upstream process stops and its id answers 404', async () => {
  // Generous idle timeout: the client must get its session before the sweeper can take it,
  // even on a loaded machine; nothing here asserts how long reaping takes.
  const gw = await startTestGateway({
    limits: { sessionIdleTimeoutMs: 3000 },
    upstreams: {
      bad: {
        type: 'stdio',
        command: process.execPath,
        args: ['--import', 'tsx', FIXTURE],
        cwd: ROOT,
        pool: { warm: 0 },
      },
    },
  });
  try {
    const client = await connectClient(gw.url);
    const session = [...gw.parts.registry.all()][0];
    const pid = session?.links.get('bad')?.transport.pid;
    assert.ok(pid, 'the session has its own upstream process');
    assert.equal(gw.managers.get('bad')?.processes, 1);
    const deadline = Date.now() + 30_000;
    while (gw.parts.registry.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(gw.parts.registry.size, 0, 'session reaped');
    while ((gw.managers.get('bad')?.processes ?? 0) > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(gw.managers.get('bad')?.processes, 0, 'process stopped');
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the child is gone');
    await assert.rejects(client.callTool({ name: 'bad__pid', arguments: {} }), /session/);
    await client.close();
  } finally {
    await gw.close();
  }
});

test('SIGTERM drains in-flight calls and exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sigterm-'));
  const cfg = join(dir, 'gatehouse.yaml');
  writeFileSync(join(dir, 'allow-all.cedar'), 'permit (principal, action, resource);\n');
  writeFileSync(
    cfg,
    `auth:\n  mode: none\npolicy:\n  files: [allow-all.cedar]\nlimits:\n  drainTimeoutMs: 1000\npinning:\n  newTools: trust\nupstreams:\n  bad:\n    type: stdio\n    command: ${JSON.stringify(process.execPath)}\n    args: ["--import", "tsx", ${JSON.stringify(FIXTURE)}]\n    cwd: ${JSON.stringify(ROOT)}\n`,
  );
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/index.ts'),
      'start',
      '--config',
      cfg,
      '--port',
      '0',
      '--data-dir',
      dir,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /MCP endpoint:\s+(\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once('exit', () => reject(new Error(`gateway exited early: ${out}`)));
  });
  const client = await connectClient(url);
  const pending = client.callTool({ name: 'bad__hang', arguments: {} }).catch((e: Error) => e);
  await new Promise((r) => setTimeout(r, 200));
  const code = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  child.kill('SIGTERM');
  assert.equal(await code, 0);
  const err = await pending;
  assert.ok(err instanceof Error, 'the in-flight call was answered with an error, not left hanging');
  assert.match(err.message, /shutting down/, 'answered by the drain, not refused up front');
});
