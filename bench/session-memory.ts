// RSS per idle session through one Streamable HTTP upstream (issue #20 closing figure).
//
// usage: node --import tsx bench/session-memory.ts [--sessions N] [--warmup W]
//
// Starts the SDK HTTP upstream fixture (test/fixtures/http-upstream.ts) and `gatehouse start` as a
// child process, opens W sessions (initialize + notifications/initialized) to warm the gateway up,
// reads the gateway's RSS, opens N more, lets them settle, reads it again and prints one JSON line:
// the RSS delta divided by N. Every session stays idle (no calls) and holds its upstream session and,
// because the upstream declares listChanged, its upstream GET stream. Not part of `npm test`.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startHttpUpstream } from '../test/fixtures/http-upstream.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VERSION = '2025-11-25';
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

const { values } = parseArgs({
  options: { sessions: { type: 'string', default: '1000' }, warmup: { type: 'string', default: '50' } },
});
const N = Number(values.sessions);
const W = Number(values.warmup);

/** Resident set size of process `pid` in bytes. */
function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m?.[1]) return Number(m[1]) * 1024;
  } catch {
    // not Linux: ask ps
  }
  return (
    Number(
      execFileSync('ps', ['-o', 'rss=', '-p', String(pid)])
        .toString()
        .trim(),
    ) * 1024
  );
}

async function openSession(url: string): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
    }),
  });
  const sid = res.headers.get('mcp-session-id');
  const body = await res.text();
  if (!sid || !body.includes('"result"')) throw new Error(`initialize failed: ${body}`);
  const note = await fetch(url, {
    method: 'POST',
    headers: { ...HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': VERSION },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await note.text();
}

async function openMany(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, n - i) }, () => openSession(url)));
  }
}

async function main(): Promise<void> {
  const upstream = await startHttpUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-session-memory-'));
  let gw: ChildProcess | undefined;
  try {
    const policy = join(dir, 'allow.cedar');
    writeFileSync(policy, 'permit (principal, action, resource);\n');
    const config = join(dir, 'gatehouse.yaml');
    writeFileSync(
      config,
      [
        'auth: { mode: none }',
        'logging: { level: warn }',
        `policy: { files: [${JSON.stringify(policy)}] }`,
        `limits: { maxSessions: ${N + W + 10}, maxSessionsPerUpstream: ${N + W + 10} }`,
        'pinning: { newTools: trust }',
        `upstreams: { web: { type: http, url: ${JSON.stringify(upstream.url)} } }`,
        '',
      ].join('\n'),
    );
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'src/cli/index.ts'),
        'start',
        '--config',
        config,
        '--data-dir',
        dir,
        '--port',
        '0',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    gw = child;
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /MCP endpoint: +(http:\/\/\S+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`gateway exited ${code}`)));
    });
    const pid = child.pid as number;
    await openMany(url, W);
    await sleep(2000);
    const before = rss(pid);
    const upBefore = rss(upstream.child.pid as number);
    await openMany(url, N);
    await sleep(2000);
    const after = rss(pid);
    const upAfter = rss(upstream.child.pid as number);
    process.stdout.write(
      `${JSON.stringify({
        sessions: N,
        gateway_rss_before_mb: +(before / 2 ** 20).toFixed(1),
        gateway_rss_after_mb: +(after / 2 ** 20).toFixed(1),
        gateway_rss_per_session_kb: +((after - before) / N / 1024).toFixed(1),
        upstream_rss_per_session_kb: +((upAfter - upBefore) / N / 1024).toFixed(1),
      })}\n`,
    );
  } finally {
    if (gw && gw.exitCode === null) {
      const exited = new Promise((r) => gw?.once('exit', r));
      gw.kill();
      await exited;
    }
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
