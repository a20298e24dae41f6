/**
 * Three local Gatehouse replicas against PostgreSQL and Redis, behind a small round-robin balancer
 * (no stickiness), for trying cluster mode on one machine (docs/deploy.md):
 *
 *   node --import tsx scripts/cluster-local.ts [--replicas 3] [--port 8080] [--pg URL] [--redis URL]
 *
 * Each replica is `gatehouse start` with its own data dir under .gatehouse/cluster/<id> and the same
 * config: the `everything` demo server over stdio, auth.mode none (loopback only), every call allowed
 * by policy, storage in the
 * PostgreSQL schema `gatehouse_local`, the Redis bus under the prefix `gatehouse-local:`. Ctrl-C stops
 * them all. Connect an MCP client to http://127.0.0.1:<port>/mcp.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '3' },
    port: { type: 'string', default: '8080' },
    pg: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
  },
});
const count = Number(values.replicas);
const port = Number(values.port);
const everything = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-everything/dist/index.js',
);
const publicUrl = `http://127.0.0.1:${port}`;
// A cluster secret for this run only (never stored).
const secret = randomBytes(32).toString('base64url');

function config(id: string, dir: string): object {
  // Every call allowed (a local trial); see examples/ for real policies.
  const policy = join(dir, 'allow-all.cedar');
  writeFileSync(policy, '@id("local-allow-all")\npermit (principal, action, resource);\n');
  return {
    policy: { files: [policy] },
    server: { host: '127.0.0.1', port: 0, publicUrl },
    auth: { mode: 'none' },
    // A local trial, like the demo: tools are trusted on first sight (production quarantines them).
    pinning: { newTools: 'trust' },
    upstreams: { everything: { type: 'stdio', command: process.execPath, args: [everything, 'stdio'] } },
    storage: { kind: 'postgres', postgres: { url: values.pg, schema: 'gatehouse_local' } },
    bus: { kind: 'redis', url: values.redis, prefix: 'gatehouse-local:', replicaId: id, secret },
  };
}

function start(id: string): Promise<{ child: ChildProcess; origin: string }> {
  const dir = join(ROOT, '.gatehouse', 'cluster', id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'gatehouse.json');
  writeFileSync(file, JSON.stringify(config(id, dir), null, 2), { mode: 0o600 });
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/index.ts'),
      'start',
      '--config',
      file,
      '--data-dir',
      join(dir, 'data'),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /MCP endpoint: +(http:\/\/[^\s/]+)/.exec(out);
      if (m?.[1]) resolve({ child, origin: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`replica ${id} exited (${code})`)));
  });
}

// One at a time: the first migrates the schema.
const replicas: { child: ChildProcess; origin: string }[] = [];
for (let i = 0; i < count; i++) replicas.push(await start(`local-${i}`));

let next = 0;
const balancer = http.createServer((req, res) => {
  const backend = replicas[next++ % replicas.length] as { origin: string };
  const out = http.request(new URL(req.url ?? '/', backend.origin), {
    method: req.method,
    headers: req.headers,
  });
  out.on('response', (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    res.flushHeaders();
    up.pipe(res);
  });
  out.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
  res.on('close', () => out.destroy());
  req.pipe(out);
});
balancer.listen(port, '127.0.0.1', () => {
  process.stdout.write(
    `${count} replicas (${replicas.map((r) => r.origin).join(', ')})\nbalancer (round robin): ${publicUrl}/mcp\n`,
  );
});

const stop = (): void => {
  for (const r of replicas) r.child.kill('SIGTERM');
  balancer.close();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
