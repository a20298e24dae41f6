/**
 * End-to-end: the real MCP SDK client through Gatehouse to real MCP servers
 * from npm, over stdio and over Streamable HTTP.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { demoConfig } from '../../src/cli/demo.ts';
import { connectClient, nodeServer, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const require = createRequire(import.meta.url);
const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const FILESYSTEM = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js');
const MEMORY = require.resolve('@modelcontextprotocol/server-memory/dist/index.js');

function text(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('');
}

describe('server-everything over stdio (the demo upstream)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ ...demoConfig(), auth: { mode: 'none' }, policy: undefined });
  });
  after(async () => gw.close());

  test('tools, prompts, resources and templates are listed with the server prefix and callable', async () => {
    const client = await connectClient(gw.url);
    const tools = await client.listTools();
    const names = tools.tools.map((t) => t.name);
    assert.ok(names.includes('everything__echo'), names.join(','));
    assert.ok(
      names.every((n) => /^[A-Za-z0-9_.-]{1,128}$/.test(n)),
      'names stay within the MCP tool-name charset',
    );
    assert.equal(
      text(await client.callTool({ name: 'everything__echo', arguments: { message: 'hi' } })),
      'Echo: hi',
    );
    const sum = await client.callTool({ name: 'everything__get-sum', arguments: { a: 2, b: 3 } });
    assert.match(text(sum), /5/);

    const prompts = await client.listPrompts();
    assert.ok(prompts.prompts.some((p) => p.name === 'everything__simple-prompt'));
    const prompt = await client.getPrompt({ name: 'everything__args-prompt', arguments: { city: 'Lisbon' } });
    assert.match(JSON.stringify(prompt.messages), /Lisbon/);

    const resources = await client.listResources();
    const first = resources.resources[0];
    assert.ok(first);
    const read = await client.readResource({ uri: first.uri });
    assert.equal(read.contents[0]?.uri, first.uri, 'resource URIs are not rewritten');

    const templates = await client.listResourceTemplates();
    const tpl = templates.resourceTemplates.find((t) => t.uriTemplate.includes('dynamic/text'));
    assert.ok(tpl, 'a dynamic text template is listed');
    const dyn = await client.readResource({ uri: tpl.uriTemplate.replace('{resourceId}', '7') });
    assert.match(JSON.stringify(dyn.contents), /7/);

    const completion = await client.complete({
      ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
      argument: { name: 'department', value: 'E' },
    });
    assert.ok(Array.isArray(completion.completion.values));
    await client.close();
  });

  test('/metrics serves Prometheus counters of calls and sessions, and honours the Host allow-list', async () => {
    const client = await connectClient(gw.url);
    await client.callTool({ name: 'everything__echo', arguments: { message: 'count me' } });
    const res = await fetch(`${gw.origin}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const body = await res.text();
    assert.match(body, /gatehouse_calls_total\{[^}]*server="everything"[^}]*\} [1-9]/);
    assert.match(body, /gatehouse_active_sessions [1-9]/);
    await client.close();
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.origin}/metrics`, { headers: { host: 'evil.example' } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.once('error', reject);
      req.end();
    });
    assert.equal(status, 403, 'T12: a rebinding page cannot read /metrics');
  });

  test('progress notifications reach the client by progressToken', async () => {
    const client = await connectClient(gw.url);
    const seen: number[] = [];
    const result = await client.callTool(
      { name: 'everything__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (p) => seen.push(p.progress) },
    );
    assert.match(text(result), /completed/);
    assert.deepEqual(seen, [1, 2, 3]);
    await client.close();
  });

  test('server-to-client requests: sampling, elicitation and roots are routed to the client and back', async () => {
    const client = await connectClient(gw.url, {
      capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } },
      setup: (c) => {
        c.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
          role: 'assistant',
          model: 'test-model',
          content: { type: 'text', text: `sampled: ${JSON.stringify(req.params.messages[0]?.content)}` },
        }));
        c.setRequestHandler(ElicitRequestSchema, async () => ({
          action: 'accept',
          content: { name: 'Ada Lovelace', email: 'ada@example.com' },
        }));
        c.setRequestHandler(ListRootsRequestSchema, async () => ({
          roots: [{ uri: 'file:///tmp/root-a', name: 'root-a' }],
        }));
      },
    });
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(
      names.includes('everything__trigger-sampling-request'),
      'the upstream saw the client capabilities',
    );
    const sampled = await client.callTool({
      name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'hello', maxTokens: 10 },
    });
    assert.match(text(sampled), /sampled: .*hello/);
    const elicited = await client.callTool({
      name: 'everything__trigger-elicitation-request',
      arguments: {},
    });
    assert.match(text(elicited), /Ada Lovelace/);
    const roots = await client.callTool({ name: 'everything__get-roots-list', arguments: {} });
    assert.match(text(roots), /root-a/);
    await client.close();
  });

  test('logging notifications and logging/setLevel pass through', async () => {
    const client = await connectClient(gw.url);
    const logs: unknown[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params);
    });
    await client.setLoggingLevel('debug');
    await client.callTool({ name: 'everything__toggle-simulated-logging', arguments: {} });
    const deadline = Date.now() + 10_000;
    while (logs.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(logs.length > 0, 'a log notification arrived');
    await client.close();
  });

  test('a stdio upstream process is never shared between sessions and stops with its session', async () => {
    const a = await connectClient(gw.url);
    const b = await connectClient(gw.url);
    const pids = [...gw.parts.registry.all()].map((s) => s.links.get('everything')?.transport.pid);
    assert.equal(new Set(pids).size, pids.length, 'one process per session');
    const before = gw.managers.get('everything')?.processes ?? 0;
    for (const c of [a, b]) {
      await (c.transport as StreamableHTTPClientTransport).terminateSession();
      await c.close();
    }
    // The SDK client's close() does not end the session; DELETE does (terminateSession).
    const after = gw.managers.get('everything')?.processes ?? 0;
    assert.ok(after < before, `processes went from ${before} to ${after}`);
  });
});

describe('server-filesystem and server-memory federated behind one endpoint', () => {
  let gw: TestGateway;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-fs-'));
    writeFileSync(join(dir, 'hello.txt'), 'hello from disk');
    gw = await startTestGateway({
      upstreams: {
        fs: { type: 'stdio', ...nodeServer(FILESYSTEM, dir) },
        memory: {
          type: 'stdio',
          ...nodeServer(MEMORY),
          env: { MEMORY_FILE_PATH: join(dir, 'memory.jsonl') },
        },
        everything: { type: 'stdio', ...nodeServer(EVERYTHING, 'stdio') },
      },
    });
  });
  after(async () => {
    await gw.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('tools of every server are merged and routed back by prefix', async () => {
    const client = await connectClient(gw.url);
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor ? { cursor } : undefined);
      names.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
    } while (cursor);
    for (const n of ['fs__read_text_file', 'memory__create_entities', 'everything__echo'])
      assert.ok(names.includes(n), n);

    const read = await client.callTool({
      name: 'fs__read_text_file',
      arguments: { path: join(dir, 'hello.txt') },
    });
    assert.match(text(read), /hello from disk/);
    await client.callTool({
      name: 'fs__write_file',
      arguments: { path: join(dir, 'out.txt'), content: 'written via gatehouse' },
    });
    assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'written via gatehouse');
    const outside = await client.callTool({
      name: 'fs__read_text_file',
      arguments: { path: '/etc/hostname' },
    });
    assert.equal(outside.isError, true, 'the upstream keeps enforcing its own sandbox');

    await client.callTool({
      name: 'memory__create_entities',
      arguments: { entities: [{ name: 'Gatehouse', entityType: 'project', observations: ['guards MCP'] }] },
    });
    const graph = await client.callTool({ name: 'memory__read_graph', arguments: {} });
    assert.match(text(graph), /guards MCP/);
    await client.close();
  });

  test('an unknown tool name is a precise JSON-RPC error and the session keeps working', async () => {
    const client = await connectClient(gw.url);
    await assert.rejects(
      client.callTool({ name: 'nosuch__tool', arguments: {} }),
      /tool `nosuch__tool` not found/,
    );
    await assert.rejects(client.callTool({ name: 'fs__', arguments: {} }), /not found/);
    assert.match(
      text(await client.callTool({ name: 'everything__echo', arguments: { message: 'still here' } })),
      /still here/,
    );
    await client.close();
  });
});

describe('HTTP upstream (server-everything over Streamable HTTP)', () => {
  let gw: TestGateway;
  let upstream: ChildProcess;
  let port = 0;
  before(async () => {
    // A port the OS just handed out (a random one sometimes collided with another listener).
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    upstream = spawn(process.execPath, [EVERYTHING, 'streamableHttp'], {
      env: { ...process.env, PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('upstream did not start')), 20_000);
      upstream.stderr?.on('data', (c: Buffer) => {
        if (c.toString().includes('listening')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    gw = await startTestGateway({
      upstreams: { web: { type: 'http', url: `http://127.0.0.1:${port}/mcp` } },
    });
  });
  after(async () => {
    await gw.close();
    upstream.kill();
  });

  test('calls, progress and list_changed work through an HTTP upstream', async () => {
    const client = await connectClient(gw.url);
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    assert.equal(
      text(await client.callTool({ name: 'web__echo', arguments: { message: 'over http' } })),
      'Echo: over http',
    );
    const seen: number[] = [];
    await client.callTool(
      { name: 'web__trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 } },
      undefined,
      { onprogress: (p) => seen.push(p.progress) },
    );
    assert.deepEqual(seen, [1, 2]);
    assert.ok(changed >= 0);
    await client.close();
  });

  test('/readyz reports the HTTP upstream reachable', async () => {
    const res = await fetch(`${gw.origin}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      status: 'ready',
      upstreams: { web: true },
      store: { kind: 'sqlite', ok: true },
    });
  });
});
