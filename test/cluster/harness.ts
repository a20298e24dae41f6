/**
 * The cluster proof's harness: Gatehouse replicas as real `gatehouse start` processes on loopback, a
 * small round-robin HTTP balancer written for the tests, a JWKS issuer for agents' tokens, the real
 * PostgreSQL (a schema per run, dropped after) and Redis (a key prefix per run, deleted after).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import pg from 'pg';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { bankUpstream, type CliGateway, startCliGateway } from '../helpers/gateway.ts';

export const PG_URL = process.env.GATEHOUSE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const AUDIENCE = 'https://gatehouse.test/mcp';
/** An obvious fake: the HMAC key of the hop between replicas in these tests only. */
export const TEST_CLUSTER_SECRET = 'FAKE-test-cluster-secret-not-a-real-one-0000';
const ROOT = join(import.meta.dirname, '..', '..');
const POLICY = readFileSync(join(ROOT, 'test/fixtures/policies/bank-approval.cedar'), 'utf8');

/** A JWKS endpoint and ES256 access tokens for (agent, user). */
export interface Issuer {
  readonly url: string;
  token(agent: string, user: string, extra?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

export async function startIssuer(): Promise<Issuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  const url = await listen(server);
  return {
    url,
    token: (agent, user, extra = {}) =>
      new SignJWT({ client_id: agent, scope: 'mcp', ...extra })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(url)
        .setAudience(AUDIENCE)
        .setSubject(user)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey),
    close: () => close(server),
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * Round robin over the replicas, as a cloud load balancer without stickiness: each request goes to the
 * next backend; one that refuses the connection is skipped (its health check would have taken it out)
 * and the request, buffered, goes to the next. Responses are streamed (SSE included).
 */
export class Balancer {
  backends: string[] = [];
  private next = 0;
  /** Which backend served each request, in order (the test checks that a session moved). */
  readonly served: string[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.url = await listen(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    for (let tries = 0; tries < this.backends.length; tries++) {
      const backend = this.backends[this.next++ % this.backends.length] as string;
      const ok = await this.send(backend, req, body, res);
      if (ok) {
        this.served.push(backend);
        return;
      }
    }
    res.writeHead(502).end('no backend');
  }

  /** False when the backend could not be reached (nothing was written to `res`). */
  private send(backend: string, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<boolean> {
    return new Promise((resolve) => {
      const headers = { ...req.headers };
      delete headers.connection;
      const out = http.request(new URL(req.url ?? '/', backend), { method: req.method, headers });
      out.on('response', (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        res.flushHeaders();
        up.pipe(res);
        up.on('error', () => res.destroy());
        resolve(true);
      });
      out.on('error', () => {
        if (res.headersSent) res.destroy();
        resolve(res.headersSent);
      });
      res.on('close', () => {
        if (!res.writableFinished) out.destroy();
      });
      out.end(body);
    });
  }

  async close(): Promise<void> {
    if (this.server) await close(this.server);
  }
}

/** One run's PostgreSQL schema and Redis prefix, both removed by `drop()`. */
export interface ClusterEnv {
  readonly schema: string;
  readonly prefix: string;
  readonly redis: Redis;
  drop(): Promise<void>;
}

export async function clusterEnv(): Promise<ClusterEnv> {
  const tag = randomBytes(5).toString('hex');
  const schema = `gh_cluster_${tag}`;
  const prefix = `ghtest:${tag}:`;
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  return {
    schema,
    prefix,
    redis,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await c.end();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}

/** The config every replica runs (only `bus.replicaId` differs). */
export function replicaConfig(
  env: ClusterEnv,
  issuer: Issuer,
  dir: string,
  replicaId: string,
  publicUrl: string,
  extra: { holdSec?: number } = {},
): GatehouseConfigInput {
  const policyFile = join(dir, 'bank.cedar');
  writeFileSync(policyFile, POLICY);
  return {
    server: { host: '127.0.0.1', port: 0, publicUrl },
    auth: {
      mode: 'external',
      external: { issuer: issuer.url, audience: AUDIENCE, jwksUri: `${issuer.url}/jwks` },
    },
    policy: { files: [policyFile], tools: { bank__transfer: { risk: 'high', sideEffect: 'external' } } },
    approvals: { approvers: ['carol'], holdSec: extra.holdSec ?? 30 },
    // The bank's tools are trusted on first sight (the default, quarantine, holds them for an admin).
    pinning: { newTools: 'trust' },
    // One bank process per replica, shared by its sessions (a cold Node server per session would
    // swamp the 2-core machine); it appends each transfer that ran to transfers.log.
    upstreams: { bank: { ...bankUpstream(join(dir, 'transfers.log')), isolation: 'shared' } },
    storage: { kind: 'postgres', postgres: { url: PG_URL, schema: env.schema, pool: { max: 4 } } },
    bus: { kind: 'redis', url: REDIS_URL, prefix: env.prefix, replicaId, secret: TEST_CLUSTER_SECRET },
  } as GatehouseConfigInput;
}

export interface Replica {
  readonly id: string;
  readonly dir: string;
  readonly configFile: string;
  readonly gw: CliGateway;
}

/** `gatehouse start --config …` for replica `id` (its own data dir under `work`). */
export async function startReplica(
  work: string,
  id: string,
  config: (dir: string) => GatehouseConfigInput,
  /** The audit checkpoint key every replica signs with (a Kubernetes Secret in docs/deploy.md). */
  auditKey?: string,
): Promise<Replica> {
  const dir = join(work, id);
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  if (auditKey !== undefined) writeFileSync(join(dir, 'data', 'audit-key.pem'), auditKey, { mode: 0o600 });
  const configFile = join(dir, 'gatehouse.json');
  writeFileSync(configFile, JSON.stringify(config(dir)));
  const gw = await startCliGateway(['--config', configFile, '--data-dir', join(dir, 'data')]);
  return { id, dir, configFile, gw };
}

/** A real SDK client with a bearer token. */
export async function connectClient(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'gatehouse-cluster-test', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

/** The gateway's JSON log lines (stderr) with this `msg`. */
export function logLines(gw: CliGateway, msg: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of gw.stderr().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (o.msg === msg) out.push(o);
    } catch {
      // a partial last line
    }
  }
  return out;
}

/** p-th percentile (nearest rank) of `xs`. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}
