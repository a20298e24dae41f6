/**
 * Approval gating through the real stack (THREATS T25, "approval bypass / forged consent"): the real
 * SDK client, a real gateway with JWT identities (alice and bob, through agent-a), Cedar's
 * `@approval("required")`, a stdio MCP server (test/fixtures/approval-server.ts), the real SQLite
 * store, and the `gatehouse approvals` CLI code deciding in that store while the gateway runs.
 * Negative tests are named after T25: an approval is bound to (grant, tool, definition, arguments),
 * single use, expiring, and only an approver other than the requester can give it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import pino from 'pino';
import { ApprovalWebhooks, verifyWebhook } from '../../src/approvals/webhook.ts';
import { approvalsCommand } from '../../src/cli/approvals.ts';
import type { CliIo } from '../../src/cli/shared.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { type RunningGateway, startGateway } from '../../src/gateway.ts';
import { OutboundError } from '../../src/secrets/outbound.ts';
import type { ApprovalRecord } from '../../src/storage/types.ts';
import { auditEvents, bankUpstream, callError, eventually } from '../helpers/gateway.ts';
import { connectWithBearer } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const AUDIENCE = 'https://gatehouse.test/mcp';
const TRANSFER = 'bank__transfer';

/** @approval("required") on bank__transfer (shared with test/e2e/console.test.ts). */
const POLICY = readFileSync(join(ROOT, 'test/fixtures/policies/bank-approval.cedar'), 'utf8');

/** A tiny issuer: a JWKS endpoint and ES256 access tokens for (agent, user). */
interface Issuer {
  readonly url: string;
  token(agent: string, user: string): Promise<string>;
  close(): Promise<void>;
}

async function startIssuer(): Promise<Issuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token: (agent, user) =>
      new SignJWT({ client_id: agent, scope: 'mcp' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(url)
        .setAudience(AUDIENCE)
        .setSubject(user)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('1h')
        .sign(privateKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Gw {
  readonly gw: RunningGateway;
  readonly dataDir: string;
  readonly configFile: string;
  readonly events: string;
}

let issuer: Issuer;
let work: string;

function gatewayConfig(dataDir: string, approvals: Record<string, unknown>): GatehouseConfigInput {
  const policyFile = join(dataDir, 'bank.cedar');
  writeFileSync(policyFile, POLICY);
  return {
    auth: {
      mode: 'external',
      external: { issuer: issuer.url, audience: AUDIENCE, jwksUri: `${issuer.url}/jwks` },
    },
    policy: {
      files: [policyFile],
      roles: { users: { 'bank-admins': ['alice', 'dave'] } },
      tools: { [TRANSFER]: { risk: 'high', sideEffect: 'external' } },
    },
    approvals: { approvers: ['carol', 'role:bank-admins'], ...approvals },
    pinning: { newTools: 'trust' },
    upstreams: {
      bank: bankUpstream(join(dataDir, 'transfers.log')),
    },
  };
}

/** A gateway on `dataDir` (kept after close, so it can start again on the same store). */
async function start(dataDir: string, approvals: Record<string, unknown>): Promise<Gw> {
  const config = gatewayConfig(dataDir, approvals);
  const configFile = join(dataDir, 'gatehouse.json');
  // The CLI reads the same approvers (YAML is a superset of JSON).
  writeFileSync(configFile, JSON.stringify({ ...config, server: { host: '127.0.0.1', port: 0 } }));
  const gw = await startGateway({
    config: { ...config, server: { host: '127.0.0.1', port: 0 } },
    dataDir,
    logger: pino({ level: process.env.GATEHOUSE_TEST_LOG ?? 'silent' }, pino.destination(2)),
  });
  return { gw, dataDir, configFile, events: join(dataDir, 'transfers.log') };
}

/** A gateway for the enclosing describe block (started before its tests, closed after). */
function gatewayFor(prefix: string, approvals: Record<string, unknown>): () => Gw {
  let g: Gw | undefined;
  before(async () => {
    g = await start(mkdtempSync(join(work, prefix)), approvals);
  });
  after(async () => {
    await g?.gw.close();
  });
  return () => {
    assert.ok(g, 'gateway started');
    return g;
  };
}

/** No transfer to `to` ran upstream. */
function noTransferTo(g: Gw, to: string): void {
  assert.deepEqual(
    transfers(g).filter((l) => l.includes(`"to":"${to}"`)),
    [],
    `a transfer to ${to} reached the upstream`,
  );
}

function collect(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    }),
    text: () => text,
  };
}

/** `gatehouse approvals ARGS --data-dir … --config …` (the CLI's own code, in process). */
async function cli(g: Gw, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = collect();
  const err = collect();
  const io: CliIo = { stdin: process.stdin, stdout: out.stream, stderr: err.stream, env: process.env };
  const code = await approvalsCommand([...args, '--data-dir', g.dataDir, '--config', g.configFile], io);
  return { code, stdout: out.text(), stderr: err.text() };
}

async function connect(g: Gw, user: string, agent = 'agent-a'): Promise<Client> {
  return connectWithBearer(g.gw.url, await issuer.token(agent, user));
}

/** Runs `fn` with a client of `user` (through agent-a), closed however `fn` ends. */
async function withClient(g: Gw, user: string, fn: (c: Client) => Promise<void>): Promise<void> {
  const c = await connect(g, user);
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

/** A call answered approval_pending (hold 0): the id of the request it waits for. */
async function pendingId(client: Client, args: Record<string, unknown>): Promise<string> {
  const err = await callError(client, TRANSFER, args);
  const data = err.data as { gatehouse?: string; approval?: string };
  assert.equal(err.code, -32027, err.message);
  assert.equal(data.gatehouse, 'approval_pending');
  assert.match(data.approval ?? '', /^apr_[A-Za-z0-9_-]{22}$/);
  return data.approval as string;
}

function transfers(g: Gw): string[] {
  return existsSync(g.events) ? readFileSync(g.events, 'utf8').trim().split('\n').filter(Boolean) : [];
}

before(async () => {
  issuer = await startIssuer();
  work = mkdtempSync(join(tmpdir(), 'gatehouse-approvals-'));
});

after(async () => {
  await issuer.close();
  rmSync(work, { recursive: true, force: true });
});

describe('approvals: retry later (hold 0: the call is answered approval_pending at once)', () => {
  const gw = gatewayFor('later-', { holdSec: 0 });

  test('T25 approve, then the identical call is released once; one argument changed is held again; a consumed approval is refused', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const id = await pendingId(bob, { amount: 5, to: 'carol' });
      const listed = await cli(g, 'list');
      assert.equal(listed.code, 0);
      assert.match(listed.stdout, new RegExp(`${id}\\s+pending\\s+agent-a for bob\\s+${TRANSFER}`));
      const shown = await cli(g, 'show', id);
      assert.match(shown.stdout, /"amount": 5/);
      assert.match(shown.stdout, /policies\s+transfer-needs-approval, bank-users/);
      assert.match(shown.stdout, /definition\s+sha256:[0-9a-f]{64}/);
      const ok = await cli(g, 'approve', id, '--as', 'carol', '--reason', 'invoice 42');
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual(transfers(g), [], 'approving runs nothing by itself');

      // One argument changed: a new request, nothing runs.
      const other = await pendingId(bob, { amount: 500, to: 'carol' });
      assert.notEqual(other, id);
      assert.deepEqual(transfers(g), []);

      // The identical call consumes the approval and runs, once.
      const r = await bob.callTool({ name: TRANSFER, arguments: { amount: 5, to: 'carol' } });
      assert.deepEqual(r.content, [{ type: 'text', text: 'sent 5 to carol' }]);
      assert.deepEqual(transfers(g), ['transfer {"amount":5,"to":"carol"}']);

      // Replayed: the approval was single use, so the same call is held again under a new request.
      const again = await pendingId(bob, { amount: 5, to: 'carol' });
      assert.notEqual(again, id);
      assert.equal(transfers(g).length, 1, 'a consumed approval never runs the call twice');
      const second = await cli(g, 'approve', id, '--as', 'carol');
      assert.equal(second.code, 1);
      assert.match(second.stderr, /already approved/);

      // The audit log tells the story: requested → granted (approver, channel, reason) → consumed → attempted.
      await eventually(
        'the decision is recorded',
        () => auditEvents(g.dataDir).some((e) => e.type === 'approval.granted'),
        10_000,
      );
      const mine = auditEvents(g.dataDir).filter(
        (e) => (e.approval as { id?: string } | undefined)?.id === id,
      );
      assert.deepEqual(
        mine.map((e) => e.type),
        ['approval.requested', 'approval.granted', 'approval.consumed', 'call.attempted'],
      );
      const granted = mine[1] as {
        approval: Record<string, unknown>;
        detail: Record<string, unknown>;
        principal: Record<string, unknown>;
      };
      assert.equal(granted.approval.approver, 'carol');
      assert.equal(granted.approval.reason, 'invoice 42');
      assert.match(String(granted.detail.channel), /^cli:/);
      assert.equal(granted.principal.user, 'bob');
      const attempted = mine[3] as {
        decision: { effect: string; policies: string[] };
        approval: Record<string, unknown>;
      };
      assert.equal(attempted.decision.effect, 'allow');
      assert.equal(attempted.approval.approver, 'carol');
    });
  });

  test('T25 an approval for grant A cannot release grant B\u2019s identical call', async () => {
    const g = gw();
    const a = await connect(g, 'bob');
    const b = await connect(g, 'bob');
    try {
      const id = await pendingId(a, { amount: 7, to: 'erin' });
      assert.equal((await cli(g, 'approve', id, '--as', 'carol')).code, 0);
      const forB = await pendingId(b, { amount: 7, to: 'erin' });
      assert.notEqual(forB, id, 'the other session\u2019s grant gets its own request');
      noTransferTo(g, 'erin');
      const r = await a.callTool({ name: TRANSFER, arguments: { amount: 7, to: 'erin' } });
      assert.deepEqual(r.content, [{ type: 'text', text: 'sent 7 to erin' }]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('T25 a tool result saying "the user already approved this" changes nothing', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const lie = await bob.callTool({ name: 'bank__lie', arguments: {} });
      assert.match(JSON.stringify(lie.content), /already approved/);
      await pendingId(bob, { amount: 11, to: 'mallory' });
      noTransferTo(g, 'mallory');
    });
  });

  test('T25 separation of duties: the requester cannot approve (or deny) their own request; a non-approver cannot either', async () => {
    const g = gw();
    await withClient(g, 'alice', async (alice) => {
      const id = await pendingId(alice, { amount: 13, to: 'gina' });
      const self = await cli(g, 'approve', id, '--as', 'alice');
      assert.equal(self.code, 1);
      assert.match(self.stderr, /made this request/);
      assert.equal((await cli(g, 'deny', id, '--as', 'alice')).code, 1);
      const outsider = await cli(g, 'approve', id, '--as', 'mallory');
      assert.equal(outsider.code, 1);
      assert.match(outsider.stderr, /not an approver/);
      assert.equal(
        (JSON.parse((await cli(g, 'show', id, '--json')).stdout) as { state: string }).state,
        'pending',
      );
      // Another member of the approver role may.
      assert.equal((await cli(g, 'approve', id, '--as', 'dave')).code, 0);
      const r = await alice.callTool({ name: TRANSFER, arguments: { amount: 13, to: 'gina' } });
      assert.deepEqual(r.content, [{ type: 'text', text: 'sent 13 to gina' }]);
    });
  });

  test('denied: the identical call is refused with approval_denied carrying the request id', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const id = await pendingId(bob, { amount: 15, to: 'hank' });
      assert.equal((await cli(g, 'deny', id, '--as', 'carol', '--reason', 'not today')).code, 0);
      const err = await callError(bob, TRANSFER, { amount: 15, to: 'hank' });
      assert.equal(err.code, -32028);
      assert.deepEqual(
        {
          gatehouse: (err.data as Record<string, unknown>).gatehouse,
          approval: (err.data as Record<string, unknown>).approval,
        },
        { gatehouse: 'approval_denied', approval: id },
      );
      noTransferTo(g, 'hank');
    });
  });
  test('T27 docs/audit.md documents every detail field of the approval events written above', () => {
    const g = gw();
    const doc = readFileSync(join(ROOT, 'docs/audit.md'), 'utf8');
    const table = doc.slice(doc.indexOf('`detail` by event type'));
    const documented = (type: string): Set<string> => {
      const row = table
        .split('\n')
        .find((l) => l.startsWith('| ') && (l.split('|')[1] ?? '').includes(`\`${type}\``));
      return new Set([...(row ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? ''));
    };
    const written = auditEvents(g.dataDir).filter((e) => String(e.type).startsWith('approval.'));
    assert.deepEqual([...new Set(written.map((e) => String(e.type)))].sort(), [
      'approval.consumed',
      'approval.denied',
      'approval.granted',
      'approval.requested',
    ]);
    const missing = written.flatMap((e) =>
      Object.keys(e.detail ?? {})
        .filter((k) => !documented(String(e.type)).has(k))
        .map((k) => `${String(e.type)}: detail.${k}`),
    );
    assert.deepEqual([...new Set(missing)], []);
  });

  // Last in this block: it leaves a new pinned definition of bank__transfer, which the fresh upstream
  // processes of later sessions (still serving the old one) would meet as a quarantined change.
  test('T25 a tool definition changed after approval: the approval no longer applies', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const id = await pendingId(bob, { amount: 9, to: 'frank' });
      assert.equal((await cli(g, 'approve', id, '--as', 'carol')).code, 0);
      await bob.callTool({ name: 'bank__change_definition', arguments: {} });
      // Tool-definition pinning comes first (test/e2e/pinning.test.ts): the changed definition is
      // quarantined until an admin approves it with `gatehouse tools approve`.
      const quarantined = await callError(bob, TRANSFER, { amount: 9, to: 'frank' });
      assert.equal((quarantined.data as { gatehouse?: string }).gatehouse, 'tool_quarantined');
      const pinned = spawnSync(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), 'tools', 'approve', TRANSFER].concat([
          '--data-dir',
          g.dataDir,
          '--config',
          g.configFile,
        ]),
        { encoding: 'utf8' },
      );
      assert.equal(pinned.status, 0, pinned.stderr);
      await eventually('the new definition is the pin', async () => {
        const e = await callError(bob, TRANSFER, { amount: 9, to: 'frank' });
        return (e.data as { gatehouse?: string }).gatehouse !== 'tool_quarantined';
      });
      // Then the approval given under the old definition does not apply to the new one.
      const again = await pendingId(bob, { amount: 9, to: 'frank' });
      assert.notEqual(again, id, 'held again under the new definition');
      noTransferTo(g, 'frank');
      const before = JSON.parse((await cli(g, 'show', id, '--json')).stdout) as {
        definitionHash: string;
        state: string;
      };
      const after = JSON.parse((await cli(g, 'show', again, '--json')).stdout) as { definitionHash: string };
      assert.notEqual(after.definitionHash, before.definitionHash);
      assert.equal(before.state, 'approved', 'the old approval is left unused');
    });
  });
});

describe('approvals: held calls (the call waits for the decision)', () => {
  const gw = gatewayFor('held-', { holdSec: 60, progressIntervalSec: 1 });

  /** Calls transfer with a progressToken; `decide` runs with the approval id from the first progress. */
  async function held(
    client: Client,
    args: Record<string, unknown>,
    decide: (id: string) => Promise<void>,
  ): Promise<{ result?: unknown; error?: McpError; id: string }> {
    let id = '';
    let decided: Promise<void> | undefined;
    try {
      const result = await client.callTool({ name: TRANSFER, arguments: args }, undefined, {
        resetTimeoutOnProgress: true,
        onprogress: (p) => {
          const m = /waiting for approval (apr_[A-Za-z0-9_-]+)/.exec(p.message ?? '');
          if (m?.[1] && id === '') {
            id = m[1];
            decided = decide(id);
          }
        },
      });
      await decided;
      return { result, id };
    } catch (err) {
      await decided;
      assert.ok(err instanceof McpError, String(err));
      return { error: err, id };
    }
  }

  test('approved while held: the waiting call completes, with progress naming the approval', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const { result, id } = await held(bob, { amount: 21, to: 'ivy' }, async (id) => {
        assert.equal((await cli(g, 'approve', id, '--as', 'carol')).code, 0);
      });
      assert.match(id, /^apr_/);
      assert.deepEqual((result as { content: unknown }).content, [{ type: 'text', text: 'sent 21 to ivy' }]);
      assert.deepEqual(transfers(g), ['transfer {"amount":21,"to":"ivy"}']);
    });
  });

  test('denied while held: approval_denied with the approval id', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const { error, id } = await held(bob, { amount: 22, to: 'jack' }, async (id) => {
        assert.equal((await cli(g, 'deny', id, '--as', 'carol')).code, 0);
      });
      assert.equal(error?.code, -32028);
      assert.equal((error?.data as { approval?: string } | undefined)?.approval, id);
      noTransferTo(g, 'jack');
    });
  });
  test('T25 two identical calls held at once share one request; its approval releases exactly one, the other is held again', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const args = { amount: 23, to: 'kate' };
      const seen: string[][] = [[], []];
      let first = '';
      const decisions: Promise<unknown>[] = [];
      const onId = (i: number, id: string): void => {
        const mine = seen[i] as string[];
        if (mine.includes(id)) return;
        mine.push(id);
        if (first === '') first = id;
        if (id !== first) decisions.push(cli(g, 'deny', id, '--as', 'carol'));
        else if (seen.every((ids) => ids.includes(first)))
          decisions.push(cli(g, 'approve', first, '--as', 'carol'));
      };
      const call = (i: number) =>
        bob
          .callTool({ name: TRANSFER, arguments: args }, undefined, {
            resetTimeoutOnProgress: true,
            onprogress: (p) => {
              const m = /waiting for approval (apr_[A-Za-z0-9_-]+)/.exec(p.message ?? '');
              if (m?.[1]) onId(i, m[1]);
            },
          })
          .then(
            (r) => ({ ok: r.content as unknown }),
            (err: unknown) => ({ err: err as McpError }),
          );
      const results = await Promise.all([call(0), call(1)]);
      await Promise.all(decisions);
      const ok = results.filter((r) => 'ok' in r);
      const refused = results.flatMap((r) => ('err' in r ? [r.err] : []));
      assert.equal(ok.length, 1, JSON.stringify(results));
      assert.equal(refused.length, 1);
      assert.equal(refused[0]?.code, -32028, 'the second is held under a new request (denied here)');
      assert.notEqual((refused[0]?.data as { approval?: string } | undefined)?.approval, first);
      assert.deepEqual(
        transfers(g).filter((l) => l.includes('"to":"kate"')),
        ['transfer {"amount":23,"to":"kate"}'],
      );
    });
  });
});

describe('approvals: expiry', () => {
  const gw = gatewayFor('expiry-', { holdSec: 30, ttlSec: 1 });

  test('T25 expired: the held call gets approval_expired, the request can no longer be approved, a retry asks anew', async () => {
    const g = gw();
    await withClient(g, 'bob', async (bob) => {
      const err = await callError(bob, TRANSFER, { amount: 31, to: 'kim' });
      assert.equal(err.code, -32029, err.message);
      const id = (err.data as { approval?: string }).approval as string;
      assert.match(id, /^apr_/);
      const late = await cli(g, 'approve', id, '--as', 'carol');
      assert.equal(late.code, 1);
      assert.match(late.stderr, /expired/);
      await eventually(
        'the expiry is recorded',
        () =>
          auditEvents(g.dataDir).some(
            (e) => e.type === 'approval.expired' && (e.approval as { id?: string }).id === id,
          ),
        10_000,
      );
      // The retry is a new request (which expires in turn): the expired one is never used.
      const retry = await callError(bob, TRANSFER, { amount: 31, to: 'kim' });
      assert.equal(retry.code, -32029);
      assert.notEqual((retry.data as { approval?: string }).approval, id);
      assert.deepEqual(transfers(g), []);
    });
  });
});

describe('approvals: restart', () => {
  test('T25 a pending approval survives a gateway restart and can be approved after it (the decision is audited by the new gateway)', async () => {
    const dataDir = mkdtempSync(join(work, 'restart-'));
    let g = await start(dataDir, { holdSec: 0 });
    let id: string;
    const bob = await connect(g, 'bob');
    try {
      id = await pendingId(bob, { amount: 41, to: 'lee' });
    } finally {
      await bob.close();
      await g.gw.close();
    }
    g = await start(dataDir, { holdSec: 0 });
    try {
      assert.match((await cli(g, 'list')).stdout, new RegExp(`${id}\\s+pending`));
      assert.equal((await cli(g, 'approve', id, '--as', 'carol')).code, 0);
      await eventually(
        'the restarted gateway records the decision',
        () =>
          auditEvents(dataDir).some(
            (e) => e.type === 'approval.granted' && (e.approval as { id?: string }).id === id,
          ),
        10_000,
      );
      // The session's grant ended with the old gateway: a new session's identical call is a new request.
      const again = await connect(g, 'bob');
      try {
        assert.notEqual(await pendingId(again, { amount: 41, to: 'lee' }), id);
      } finally {
        await again.close();
      }
    } finally {
      await g.gw.close();
    }
  });
});

describe('approvals: signed webhook', () => {
  const SECRET = 'canary-webhook-secret-not-real-0001';
  interface Delivery {
    headers: Record<string, string | string[] | undefined>;
    body: string;
    status: number;
  }
  const deliveries: Delivery[] = [];
  const seenIds = new Set<string>();
  let receiver: Server;
  let hookUrl = '';
  let g: Gw | undefined;

  before(async () => {
    // Refuses the first try of every message (503), accepts the retry.
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        const id = String(req.headers['gatehouse-delivery']);
        const status = seenIds.has(id) ? 204 : 503;
        seenIds.add(id);
        deliveries.push({ headers: req.headers, body, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', () => resolve()));
    hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    g = await start(mkdtempSync(join(work, 'webhook-')), {
      holdSec: 0,
      webhooks: [{ url: hookUrl, secret: SECRET, allowLoopbackHttp: true }],
      webhookRetry: { attempts: 3, baseMs: 20 },
    });
  });
  after(async () => {
    await g?.gw.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  });

  const accepted = (type: string): Delivery[] =>
    deliveries.filter((d) => d.status === 204 && d.headers['gatehouse-event'] === type);

  test('each approval event is delivered signed (HMAC-SHA256 over timestamp and body), retried after a failure, and never carries a way to decide', async () => {
    assert.ok(g);
    const gw = g;
    let id = '';
    await withClient(gw, 'bob', async (bob) => {
      id = await pendingId(bob, { amount: 51, to: 'olga' });
    });
    assert.equal((await cli(gw, 'approve', id, '--as', 'carol', '--reason', 'ok')).code, 0);
    await eventually(
      'the request and the decision reach the webhook',
      () => accepted('approval.requested').length === 1 && accepted('approval.granted').length === 1,
      10_000,
    );
    for (const type of ['approval.requested', 'approval.granted']) {
      const ok = accepted(type)[0] as Delivery;
      const verdict = verifyWebhook(SECRET, ok.body, {
        signature: ok.headers['gatehouse-signature'] as string,
        timestamp: ok.headers['gatehouse-timestamp'] as string,
      });
      assert.equal(verdict, 'ok', type);
      // The refused first try and the accepted retry are the same message (same delivery id and body).
      const tries = deliveries.filter(
        (d) => d.headers['gatehouse-delivery'] === ok.headers['gatehouse-delivery'],
      );
      assert.deepEqual(
        tries.map((d) => d.status),
        [503, 204],
      );
      assert.equal(tries[0]?.body, ok.body);
      const msg = JSON.parse(ok.body) as { type: string; approval: Record<string, unknown> };
      assert.equal(msg.type, type);
      assert.equal(msg.approval.id, id);
      assert.deepEqual(msg.approval.arguments, { amount: 51, to: 'olga' });
      assert.deepEqual(
        Object.keys(msg.approval).sort(),
        [
          'approver',
          'arguments',
          'attributes',
          'channel',
          'createdAt',
          'decision',
          'definitionHash',
          'expiresAt',
          'grant',
          'id',
          'owner',
          'policies',
          'reason',
          'requester',
          'server',
          'state',
          'tool',
        ].filter((k) => k in msg.approval),
        'no token, link or anything else that could decide',
      );
    }
    const granted = JSON.parse((accepted('approval.granted')[0] as Delivery).body) as {
      approval: Record<string, unknown>;
    };
    assert.equal(granted.approval.approver, 'carol');
  });

  test('an old signed body replayed later is detectable by its timestamp; a changed body or another key fails', () => {
    const ok = accepted('approval.requested')[0] as Delivery;
    const headers = {
      signature: ok.headers['gatehouse-signature'] as string,
      timestamp: ok.headers['gatehouse-timestamp'] as string,
    };
    const ts = Number(headers.timestamp);
    assert.equal(verifyWebhook(SECRET, ok.body, headers, { now: ts + 301 }), 'stale');
    assert.equal(verifyWebhook(SECRET, ok.body, headers, { now: ts + 299 }), 'ok');
    assert.equal(verifyWebhook(SECRET, ok.body.replace('olga', 'mallory'), headers), 'bad_signature');
    assert.equal(verifyWebhook('another-key', ok.body, headers), 'bad_signature');
    assert.equal(
      verifyWebhook(SECRET, ok.body, { ...headers, timestamp: String(ts + 1) }),
      'bad_signature',
      'the timestamp is signed: moving it forward breaks the signature',
    );
    assert.equal(
      verifyWebhook(SECRET, ok.body, { signature: headers.signature, timestamp: undefined }),
      'malformed',
    );
  });

  test('T07 a webhook on a private or loopback address is refused unless allowed (no connection is made); http needs the development flag', async () => {
    const before = deliveries.length;
    const record = JSON.parse((await cli(g as Gw, 'list', '--all', '--json')).stdout)[0] as ApprovalRecord;
    const log = pino({ level: 'silent' });
    const connects: string[] = [];
    const send = (url: string, resolve?: (h: string) => Promise<string[]>) =>
      new ApprovalWebhooks(
        [{ url, secret: SECRET, allowLoopbackHttp: false }],
        { attempts: 3, retryBaseMs: 10, ...(resolve ? { resolve } : {}) },
        log,
      ).send('approval.requested', record);
    const port = (receiver.address() as AddressInfo).port;
    const refused = async (url: string, code: string, resolve?: (h: string) => Promise<string[]>) => {
      await assert.rejects(send(url, resolve), (err: unknown) => {
        assert.ok(err instanceof OutboundError, String(err));
        assert.equal(err.code, code, url);
        return true;
      });
    };
    await refused(`https://127.0.0.1:${port}/hook`, 'blocked_address');
    await refused('https://10.1.2.3/hook', 'blocked_address');
    await refused('https://[::ffff:169.254.169.254]/hook', 'blocked_address');
    await refused('https://chat.example/hook', 'blocked_address', async (h) => {
      connects.push(h);
      return ['192.168.1.20'];
    });
    await refused(hookUrl, 'scheme');
    assert.deepEqual(connects, ['chat.example'], 'names are resolved and their addresses checked');
    assert.equal(deliveries.length, before, 'the receiver saw nothing');
    assert.throws(
      () =>
        parseConfig({
          ...gatewayConfig((g as Gw).dataDir, { webhooks: [{ url: hookUrl, secret: SECRET }] }),
        }),
      /must be https/,
    );
  });
});
