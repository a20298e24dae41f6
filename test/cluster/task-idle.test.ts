/**
 * A task grant in a cluster: its idle timeout counts uses on every replica. Two replicas in this
 * process (grants.idleTimeoutSec 1), the real PostgreSQL and Redis: the grant is made on A and used
 * only on B; A must not end it as idle while B uses it, and once nobody uses it, it ends everywhere.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import pino from 'pino';
import { GatehouseError } from '../../src/errors.ts';
import { type RunningGateway, startGateway } from '../../src/gateway.ts';
import { eventually } from '../helpers/gateway.ts';
import {
  type ClusterEnv,
  clusterEnv,
  connectClient,
  type Issuer,
  replicaConfig,
  startIssuer,
} from './harness.ts';

let issuer: Issuer;
let env: ClusterEnv;
let work: string;
let a: RunningGateway;
let b: RunningGateway;
const clients: Client[] = [];

async function replica(id: string): Promise<RunningGateway> {
  const dir = mkdtempSync(join(work, `${id}-`));
  const config = replicaConfig(env, issuer, dir, id, 'http://127.0.0.1:1');
  return startGateway({
    config: { ...config, grants: { idleTimeoutSec: 1 } },
    dataDir: join(dir, 'data'),
    logger: pino({ level: process.env.GATEHOUSE_TEST_LOG ?? 'silent' }, pino.destination(2)),
  });
}

before(async () => {
  issuer = await startIssuer();
  env = await clusterEnv();
  work = mkdtempSync(join(tmpdir(), 'gatehouse-task-idle-'));
  a = await replica('a');
  b = await replica('b');
});

after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await b?.close();
  await a?.close();
  await issuer?.close();
  await env?.drop();
  rmSync(work, { recursive: true, force: true });
});

test('a task grant used only on B is not ended as idle by A; unused, it ends on both', async () => {
  const opener = await connectClient(a.url, await issuer.token('agent-a', 'idler'));
  clients.push(opener);
  const principal = [...a.parts.registry.all()].find((s) => s.principal.user === 'idler')?.principal;
  assert.ok(principal);
  const made = a.parts.grants.create({ kind: 'task', principal, createdBy: 'cluster-test' });
  assert.ok(!(made instanceof GatehouseError));
  await made.persisted;
  await opener.close();
  const id = made.grant.id;
  const token = await issuer.token('agent-a', 'idler', { gatehouse_grant: id });
  let c: Client | undefined;
  await eventually('B accepts the task token', async () => {
    c = await connectClient(b.url, token).catch(() => undefined);
    return c !== undefined;
  });
  clients.push(c as Client);
  // Used on B for three idle timeouts and more than one sharing round (5 s): A has no session on it.
  const until = Date.now() + 7000;
  while (Date.now() < until) {
    const r = await (c as Client).callTool({ name: 'bank__balance', arguments: {} });
    assert.ok(!r.isError);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.ok(a.parts.grants.get(id), 'A keeps the grant B uses');
  assert.ok(b.parts.grants.get(id), 'B keeps it');
  // Nobody uses it: idle everywhere, it ends (on A's or B's next sharing round).
  await (c as Client).close();
  await eventually(
    'the idle task grant ends on both replicas',
    () => a.parts.grants.get(id) === undefined && b.parts.grants.get(id) === undefined,
    20_000,
  );
});
