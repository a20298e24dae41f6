/**
 * Cluster mode, proven (issue #15): three Gatehouse replicas on loopback behind a round-robin balancer
 * written for the test (no stickiness), on the real PostgreSQL (a schema of its own) and Redis (a key
 * prefix of its own). r0 runs in this process (so a revocation and an approval can be made *on* it, as
 * its console does: through its grant manager and its store); r1 and r2 are real `gatehouse start`
 * processes. Agents are real SDK clients with ES256 tokens from a test issuer; the upstream is the
 * bank fixture over stdio.
 *
 * Measured and printed: revocation propagation from r0 to r1 and r2 (p50/p99), approval release
 * across replicas. GATEHOUSE_CLUSTER_ROUNDS sets the number of revocation rounds (default 20).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import pino from 'pino';
import { decideApproval } from '../../src/approvals/decide.ts';
import { auditCommand } from '../../src/cli/audit.ts';
import { grantsCommand } from '../../src/cli/grants.ts';
import { hopMac } from '../../src/cluster/route.ts';
import { GatehouseError } from '../../src/errors.ts';
import { type RunningGateway, startGateway } from '../../src/gateway.ts';
import { eventually } from '../helpers/gateway.ts';
import {
  Balancer,
  type ClusterEnv,
  clusterEnv,
  connectClient,
  type Issuer,
  logLines,
  PG_URL,
  percentile,
  type Replica,
  replicaConfig,
  startIssuer,
  startReplica,
  TEST_CLUSTER_SECRET,
} from './harness.ts';

const ROUNDS = Number(process.env.GATEHOUSE_CLUSTER_ROUNDS ?? 20);

let issuer: Issuer;
let env: ClusterEnv;
let work: string;
const balancer = new Balancer();
/** r0, in this process. */
let r0: RunningGateway;
let r1: Replica;
let r2: Replica;
const clients: Client[] = [];

function text(r: unknown): string {
  const c = (r as { content?: { type: string; text?: string }[] }).content?.[0];
  return c?.type === 'text' ? (c.text ?? '') : '';
}

async function client(url: string, user: string, agent = 'agent-a'): Promise<Client> {
  const c = await connectClient(url, await issuer.token(agent, user));
  clients.push(c);
  return c;
}

/** Where the directory says session `id` lives. */
async function ownerOf(id: string | undefined): Promise<string | undefined> {
  const v = await env.redis.get(`${env.prefix}session:${id}`);
  return v === null ? undefined : (JSON.parse(v) as { replica: string }).replica;
}

/** A second SDK client on an existing session (as a client whose next request lands elsewhere). */
async function connectClientToSession(url: string, user: string, sessionId: string): Promise<Client> {
  const c = new Client({ name: 'gatehouse-cluster-test', version: '1' });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      sessionId,
      requestInit: { headers: { authorization: `Bearer ${await issuer.token('agent-a', user)}` } },
    }),
  );
  clients.push(c);
  return c;
}

function sessionOf(c: Client): string | undefined {
  return (c as unknown as { transport: { sessionId?: string } }).transport.sessionId;
}

function lineTime(o: Record<string, unknown>): number {
  return typeof o.time === 'number' ? o.time : Date.parse(String(o.time));
}

before(async () => {
  issuer = await startIssuer();
  env = await clusterEnv();
  work = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'));
  await balancer.start();
  const cfg = (id: string) => (dir: string) => replicaConfig(env, issuer, dir, id, balancer.url);
  // r0 first: it migrates the schema (the others would wait on the advisory lock anyway).
  const r0Dir = join(work, 'r0');
  r0 = await startGateway({
    config: cfg('r0')(mkdtempSync(join(work, 'r0-'))),
    dataDir: r0Dir,
    logger: pino({ level: process.env.GATEHOUSE_TEST_LOG ?? 'silent' }, pino.destination(2)),
  });
  // One audit key for the cluster (as a mounted Secret): `audit verify` checks every chain with it.
  const auditKey = readFileSync(join(r0Dir, 'audit-key.pem'), 'utf8');
  [r1, r2] = await Promise.all([
    startReplica(work, 'r1', cfg('r1'), auditKey),
    startReplica(work, 'r2', cfg('r2'), auditKey),
  ]);
  balancer.backends = [r0.origin, r1.gw.origin, r2.gw.origin];
});

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  for (const r of [r1, r2]) {
    if (r && r.gw.child.exitCode === null) {
      r.gw.child.kill('SIGTERM');
      await new Promise((resolve) => r.gw.child.once('exit', resolve));
    }
  }
  await r0?.close();
  await balancer.close();
  await issuer?.close();
  await env?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('cluster: any replica serves any session', () => {
  test('a real SDK client session keeps working while its requests land on different replicas', async () => {
    const c = await client(`${balancer.url}/mcp`, 'alice');
    const session = (c as unknown as { transport: { sessionId?: string } }).transport.sessionId;
    const owner = await ownerOf(session);
    assert.ok(owner, 'the session is in the directory');
    const before = balancer.served.length;
    const tools = await c.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'bank__balance'));
    for (let i = 0; i < 6; i++)
      assert.equal(text(await c.callTool({ name: 'bank__balance', arguments: {} })), 'balance 100');
    // Each replica reports its store and its bus.
    const ready = (await (await fetch(`${r1.gw.origin}/readyz`)).json()) as Record<string, unknown>;
    assert.deepEqual(ready.store, { kind: 'postgres', ok: true });
    assert.deepEqual(ready.bus, { kind: 'redis', replica: 'r1', connected: true });
    const landed = new Set(balancer.served.slice(before));
    assert.equal(landed.size, 3, `requests landed on ${[...landed].join(', ')}`);
  });

  test('T12 on the forwarding replica; the hop: per-call latency direct to the owner vs forwarded (printed)', async () => {
    // The same session, reached directly at its owner (r1) and through r2, which forwards every request.
    const direct = await client(r1.gw.url, 'hop-latency');
    const id = sessionOf(direct);
    assert.equal(await ownerOf(id), 'r1');
    const viaR2 = await connectClientToSession(r2.gw.url, 'hop-latency', id as string);
    const time = async (c: Client): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        assert.equal(text(await c.callTool({ name: 'bank__balance', arguments: {} })), 'balance 100');
        out.push(performance.now() - t);
      }
      return out.slice(5); // the first calls warm the connections
    };
    // T12: the forwarding replica checks Host and Origin itself (the owner trusts the hop for them).
    const rebinding = await fetch(r2.gw.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': id as string,
        origin: 'https://evil.example',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    assert.equal(rebinding.status, 403);
    assert.equal(
      ((await rebinding.json()) as { error: { data: { gatehouse: string } } }).error.data.gatehouse,
      'origin_forbidden',
    );
    const d = await time(direct);
    const f = await time(viaR2);
    console.log(
      `tools/call latency, owner direct: p50 ${percentile(d, 50).toFixed(2)} ms, p99 ${percentile(d, 99).toFixed(2)} ms; ` +
        `forwarded by another replica: p50 ${percentile(f, 50).toFixed(2)} ms, p99 ${percentile(f, 99).toFixed(2)} ms`,
    );
  });

  test('T10-11: a forged or stale hop header between replicas is refused before anything runs', async () => {
    const c = await client(r1.gw.url, 'mallory');
    const session = (c as unknown as { transport: { sessionId?: string } }).transport.sessionId ?? '';
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const post = (hop: string) =>
      fetch(r1.gw.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': session,
          'gatehouse-hop': hop,
        },
        body,
      });
    const now = String(Date.now());
    const forged = await post(
      `v1.${now}.r0.${hopMac('not-the-cluster-secret-000000000000', now, 'r0', 'POST', '/mcp', session)}`,
    );
    assert.equal(forged.status, 403);
    assert.equal(
      ((await forged.json()) as { error: { data: { gatehouse: string } } }).error.data.gatehouse,
      'cluster_hop_forbidden',
    );
    const old = String(Date.now() - 120_000);
    const stale = await post(
      `v1.${old}.r0.${hopMac(TEST_CLUSTER_SECRET, old, 'r0', 'POST', '/mcp', session)}`,
    );
    assert.equal(stale.status, 403);
    // A hop for another session id than the one sent: the MAC does not match.
    const other = await post(
      `v1.${now}.r0.${hopMac(TEST_CLUSTER_SECRET, now, 'r0', 'POST', '/mcp', 'another')}`,
    );
    assert.equal(other.status, 403);
  });

  test('a request for a session whose owner is gone is answered 404 (the client initializes again)', async () => {
    await env.redis.set(
      `${env.prefix}session:gone-session-id`,
      JSON.stringify({ replica: 'r9', url: 'http://127.0.0.1:9' }),
    );
    const res = await fetch(r1.gw.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': 'gone-session-id',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    assert.equal(res.status, 404);
    assert.equal(
      await env.redis.get(`${env.prefix}session:gone-session-id`),
      null,
      'the stale entry is removed',
    );
  });
});

describe('cluster: revocation and approvals reach every replica', () => {
  test('a grant revoked on r0 is refused on r1 and r2 within 1 s (propagation p50/p99 printed)', async () => {
    const delays: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const user = `rev-${i}`;
      const [c1, c2] = [await client(r1.gw.url, user), await client(r2.gw.url, user)];
      assert.equal(text(await c1.callTool({ name: 'bank__balance', arguments: {} })), 'balance 100');
      assert.equal(text(await c2.callTool({ name: 'bank__balance', arguments: {} })), 'balance 100');
      const t0 = Date.now();
      // As r0's console does (src/admin/actions.ts): the store, then this replica; the bus tells the rest.
      await r0.parts.grants.revoke({ user }, 'revoked by the cluster test');
      for (const r of [r1, r2]) {
        const grant = logLines(r.gw, 'grant created').find((l) => l.user === user)?.grant;
        assert.ok(grant, `${r.id} made a grant for ${user}`);
        let ended: Record<string, unknown> | undefined;
        await eventually(`${r.id} ends ${user}'s grant`, () => {
          ended = logLines(r.gw, 'grant ended').find((l) => l.grant === grant);
          return ended !== undefined;
        });
        delays.push(lineTime(ended as Record<string, unknown>) - t0);
      }
      for (const c of [c1, c2])
        await assert.rejects(
          c.callTool({ name: 'bank__balance', arguments: {} }),
          'the revoked session is refused',
        );
    }
    const p50 = percentile(delays, 50);
    const p99 = percentile(delays, 99);
    console.log(
      `revocation propagation r0 -> r1,r2 over ${delays.length} grants: p50 ${p50} ms, p99 ${p99} ms, max ${Math.max(...delays)} ms`,
    );
    assert.ok(
      Math.max(...delays) < 1000,
      `every replica ended the grant within 1 s (max ${Math.max(...delays)} ms)`,
    );
  });

  test('a task grant made on r0 opens sessions on r1 (its token names it); revoked on r0, refused on r1', async () => {
    await client(r0.url, 'tasker');
    const principal = [...r0.parts.registry.all()].find((s) => s.principal.user === 'tasker')?.principal;
    assert.ok(principal);
    const made = r0.parts.grants.create({
      kind: 'task',
      principal,
      createdBy: 'cluster-test',
      tools: ['bank__balance'],
    });
    assert.ok(!(made instanceof GatehouseError));
    await made.persisted;
    const token = await issuer.token('agent-a', 'tasker', { gatehouse_grant: made.grant.id });
    let c1: Client | undefined;
    await eventually('r1 accepts the task token', async () => {
      c1 = await connectClient(r1.gw.url, token).catch(() => undefined);
      return c1 !== undefined;
    });
    clients.push(c1 as Client);
    assert.equal(
      text(await (c1 as Client).callTool({ name: 'bank__balance', arguments: {} })),
      'balance 100',
    );
    await assert.rejects(
      (c1 as Client).callTool({ name: 'bank__transfer', arguments: { amount: 1, to: 'x' } }),
    );
    await r0.parts.grants.revoke({ id: made.grant.id }, 'revoked by the cluster test');
    await eventually('r1 refuses the revoked task grant', async () => {
      const r = await (c1 as Client)
        .callTool({ name: 'bank__balance', arguments: {} })
        .catch((e: unknown) => e);
      return r instanceof Error;
    });
  });

  test('gatehouse grants revoke (the CLI on the cluster config) reaches r1 and r2 through the bus', async () => {
    const user = 'cli-revoked';
    const [c1, c2] = [await client(r1.gw.url, user), await client(r2.gw.url, user)];
    assert.equal(text(await c1.callTool({ name: 'bank__balance', arguments: {} })), 'balance 100');
    assert.equal(text(await c2.callTool({ name: 'bank__balance', arguments: {} })), 'balance 100');
    const t0 = Date.now();
    const code = await grantsCommand([
      'revoke',
      '--user',
      user,
      '--config',
      r1.configFile,
      '--data-dir',
      join(r1.dir, 'data'),
    ]);
    assert.equal(code, 0);
    const delays: number[] = [];
    for (const r of [r1, r2]) {
      const grant = logLines(r.gw, 'grant created').find((l) => l.user === user)?.grant;
      let ended: Record<string, unknown> | undefined;
      await eventually(`${r.id} ends the grant`, () => {
        ended = logLines(r.gw, 'grant ended').find((l) => l.grant === grant);
        return ended !== undefined;
      });
      delays.push(lineTime(ended as Record<string, unknown>) - t0);
    }
    console.log(
      `gatehouse grants revoke -> r1, r2: ${delays.join(' ms, ')} ms (the CLI's store write included)`,
    );
    for (const c of [c1, c2]) await assert.rejects(c.callTool({ name: 'bank__balance', arguments: {} }));
    assert.ok(Math.max(...delays) < 1000, `within 1 s (${delays.join(', ')} ms)`);
  });

  test('an approval granted through r0 releases a call held on r2', async () => {
    const c = await client(r2.gw.url, 'bob');
    const held = c.callTool({ name: 'bank__transfer', arguments: { amount: 5, to: 'zed' } }, undefined, {
      timeout: 60_000,
    });
    let id: string | undefined;
    await eventually('the held call has a pending approval request', async () => {
      const pending = await r0.storage.approvals.list({ states: ['pending'] });
      id = pending.find((p) => p.user === 'bob')?.id;
      return id !== undefined;
    });
    const t0 = Date.now();
    const res = await decideApproval(r0.storage.approvals, r0.config, {
      id: id as string,
      approver: 'carol',
      state: 'approved',
      reason: 'cluster test',
      channel: 'console',
      now: Date.now(),
    });
    assert.ok(res.ok, res.ok ? '' : res.message);
    assert.equal(text(await held), 'sent 5 to zed');
    console.log(`approval on r0 released the call held on r2 after ${Date.now() - t0} ms`);
    assert.match(readFileSync(join(r2.dir, 'transfers.log'), 'utf8'), /"to":"zed"/);
  });
});

describe('cluster: a replica stops mid-load', () => {
  test('no acknowledged call loses its audit record; clients of the other replicas see no errors', async () => {
    // Clients through the balancer: their sessions land on the three replicas in turn.
    const cs: { c: Client; owner: string; user: string }[] = [];
    const count = (onR2: boolean) => cs.filter((x) => (x.owner === 'r2') === onR2).length;
    for (let i = 0; i < 15 && (count(true) < 2 || count(false) < 3); i++) {
      // A request in between moves the round robin on, so sessions start on every replica in turn.
      await fetch(`${balancer.url}/healthz`);
      const user = `load-${i}`;
      const c = await client(`${balancer.url}/mcp`, user);
      const owner = await ownerOf(sessionOf(c));
      cs.push({ c, owner: owner ?? '?', user });
    }
    assert.ok(
      cs.some((x) => x.owner === 'r2') && cs.some((x) => x.owner !== 'r2'),
      'sessions on r2 and elsewhere',
    );
    const acknowledged = new Map<string, number>();
    const errors: { user: string; owner: string; err: string }[] = [];
    let stop = false;
    const load = cs.map(async ({ c, owner, user }) => {
      for (let n = 0; n < 400 && !stop; n++) {
        try {
          const r = await c.callTool({ name: 'bank__balance', arguments: {} });
          if (text(r) === 'balance 100') acknowledged.set(user, (acknowledged.get(user) ?? 0) + 1);
        } catch (err) {
          errors.push({ user, owner, err: String(err) });
          if (owner === 'r2') return; // its session died with r2: expected
        }
      }
    });
    await eventually(
      'load is running',
      () => [...acknowledged.values()].reduce((a, b) => a + b, 0) >= 30,
      30_000,
    );
    // The orchestrator's kill: SIGTERM (drain), as Kubernetes does before SIGKILL.
    r2.gw.child.kill('SIGTERM');
    await new Promise((resolve) => r2.gw.child.once('exit', resolve));
    balancer.backends = balancer.backends.filter((b) => b !== r2.gw.origin);
    const after = [...acknowledged.values()].reduce((a, b) => a + b, 0);
    await eventually(
      'load goes on after r2 stopped',
      () => [...acknowledged.values()].reduce((a, b) => a + b, 0) >= after + 30,
      30_000,
    );
    stop = true;
    await Promise.all(load);
    assert.deepEqual(
      errors.filter((e) => e.owner !== 'r2'),
      [],
      'clients whose sessions live on r0 and r1 saw no error',
    );
    const total = [...acknowledged.values()].reduce((x, y) => x + y, 0);
    console.log(
      `kill mid-load: ${cs.length} sessions (${cs.filter((x) => x.owner === 'r2').length} on r2), ${total} calls acknowledged, ` +
        `errors: ${errors.filter((e) => e.owner === 'r2').length} on r2's sessions, ${errors.filter((e) => e.owner !== 'r2').length} elsewhere`,
    );
    // `gatehouse audit verify` covers the cluster: one chain per replica, each with its checkpoints.
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const verified = await auditCommand(
      ['verify', '--config', r1.configFile, '--data-dir', join(r1.dir, 'data')],
      { stdout: sink, stderr: sink },
    );
    assert.equal(verified, 0, out);
    for (const id of ['r0', 'r1', 'r2'])
      assert.match(out, new RegExp(`^chain ${id}: ok: seq 1\\.\\.\\d+`, 'm'), out);
    console.log(out.trim());
    // A client whose session died with r2 initializes again (through the balancer) and goes on.
    const again = await client(`${balancer.url}/mcp`, 'load-again');
    assert.equal(text(await again.callTool({ name: 'bank__balance', arguments: {} })), 'balance 100');
    // Every acknowledged call has its write-ahead record (call.attempted) in some replica's chain.
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    try {
      const rows = await db.query<{ user_name: Buffer; n: string }>(
        `SELECT user_name, count(*) AS n FROM ${pg.escapeIdentifier(env.schema)}.audit_log
          WHERE type = $1 AND tool IS NOT NULL GROUP BY user_name`,
        [Buffer.from('call.attempted')],
      );
      const recorded = new Map(rows.rows.map((r) => [r.user_name.toString('utf8'), Number(r.n)]));
      for (const { user } of cs) {
        const acked = acknowledged.get(user) ?? 0;
        assert.ok(
          (recorded.get(user) ?? 0) >= acked,
          `${user}: ${acked} acknowledged, ${recorded.get(user) ?? 0} recorded`,
        );
      }
      const chains = await db.query<{ chain: string }>(
        `SELECT DISTINCT chain FROM ${pg.escapeIdentifier(env.schema)}.audit_log ORDER BY chain`,
      );
      assert.deepEqual(
        chains.rows.map((r) => r.chain),
        ['r0', 'r1', 'r2'],
        'one audit chain per replica',
      );
    } finally {
      await db.end();
    }
  });
});
