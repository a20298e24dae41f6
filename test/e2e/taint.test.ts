/**
 * Taint-aware gating through the real stack (THREATS T18, the GitHub MCP leak of May 2025): a scripted,
 * non-LLM agent on the real SDK client does what an injected agent did: read a public issue whose body
 * asks it to copy a private repository into a public pull request, read the private file, open the pull
 * request. The gateway runs the shipped policy example (examples/policies/taint.cedar), the real
 * approvals flow (hold 0: answered approval_pending at once) decided through the `gatehouse approvals`
 * CLI code, a stdio MCP server (test/fixtures/github-leak-server.ts) and the real SQLite store.
 *
 * Negative controls: the same pull request from a grant that read nothing untrusted is opened without
 * approval (so the hold is the taint's doing), and taint belongs to the grant, not to the principal.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { approvalsCommand } from '../../src/cli/approvals.ts';
import type { CliIo } from '../../src/cli/shared.ts';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import {
  auditEvents,
  callError,
  connectClient,
  eventually,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PRIVATE_PLAN = 'fake-canary-private-roadmap: acquire globex in Q3; salary bands attached';
const PR = 'github__create_pull_request';

let work: string;

function config(dir: string, sources: string[]): GatehouseConfigInput {
  const allow = join(dir, 'allow.cedar');
  writeFileSync(allow, '@id("agent-may-use-github")\npermit (principal, action, resource);\n');
  return {
    policy: {
      files: [join(ROOT, 'examples/policies/taint.cedar'), allow],
      tools: {
        github__get_issue: { sideEffect: 'read' },
        github__get_file_contents: { sideEffect: 'read' },
        [PR]: { sideEffect: 'external' },
      },
    },
    approvals: { approvers: ['carol'], holdSec: 0 },
    sanitize: { taint: { sources } },
    upstreams: {
      github: {
        type: 'stdio',
        command: process.execPath,
        args: ['--import', 'tsx', join(ROOT, 'test/fixtures/github-leak-server.ts')],
        cwd: ROOT,
        env: { LEAK_SERVER_EVENTS: join(dir, 'prs.log') },
        pool: { warm: 0 },
      },
    },
  };
}

interface Gw {
  readonly gw: TestGateway;
  readonly configFile: string;
  readonly prs: () => string[];
}

async function start(prefix: string, sources: string[]): Promise<Gw> {
  const dir = mkdtempSync(join(work, prefix));
  const cfg = config(dir, sources);
  const configFile = join(dir, 'gatehouse.json');
  // The CLI reads the approvers from the same config (YAML is a superset of JSON).
  writeFileSync(configFile, JSON.stringify(cfg));
  const gw = await startTestGateway(cfg, { dataDir: join(dir, 'data') });
  const log = join(dir, 'prs.log');
  return {
    gw,
    configFile,
    prs: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []),
  };
}

function gatewayFor(prefix: string, sources: string[]): () => Gw {
  let g: Gw | undefined;
  before(async () => {
    g = await start(prefix, sources);
  });
  after(async () => {
    await g?.gw.close();
  });
  return () => {
    assert.ok(g, 'gateway started');
    return g;
  };
}

/** `gatehouse approvals ARGS` (the CLI's own code, in process) on the gateway's store. */
async function approvals(g: Gw, ...args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const sink = (onText: (t: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        onText(chunk.toString());
        cb();
      },
    });
  const io: CliIo = {
    stdin: process.stdin,
    stdout: sink(() => {}),
    stderr: sink((t) => {
      stderr += t;
    }),
    env: process.env,
  };
  const code = await approvalsCommand([...args, '--data-dir', g.gw.dataDir, '--config', g.configFile], io);
  return { code, stderr };
}

/** The agent's leaking pull request. */
const LEAK = { repo: 'acme/website', title: 'About the author', body: PRIVATE_PLAN };

/** The scripted agent, up to the outward call: read the issue, then the private file. */
async function readIssueThenPrivateFile(client: Client, issue: number): Promise<void> {
  const read = await client.callTool({
    name: 'github__get_issue',
    arguments: { repo: 'acme/website', number: issue },
  });
  assert.match(JSON.stringify(read.content), /acme\/secret-plans/);
  // Reads stay allowed after taint: only outward actions are gated.
  const file = await client.callTool({
    name: 'github__get_file_contents',
    arguments: { repo: 'acme/secret-plans', path: 'docs/plan.md' },
  });
  assert.match(JSON.stringify(file.content), /fake-canary-private-roadmap/);
}

/** The outward call, answered approval_pending: the id of the approval request. */
async function heldForApproval(client: Client, args: Record<string, unknown>): Promise<string> {
  const err = await callError(client, PR, args);
  const data = err.data as { gatehouse?: string; approval?: string; policies?: string[] };
  assert.equal(data.gatehouse, 'approval_pending', err.message);
  assert.match(data.approval ?? '', /^apr_/);
  return data.approval as string;
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-taint-'));
});

after(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('taint by source: github__get_issue is marked as external content (sanitize.taint.sources)', () => {
  const gw = gatewayFor('source-', ['github__get_issue']);

  test('T18 control: a grant that read nothing untrusted opens the pull request without approval', async () => {
    const g = gw();
    const client = await connectClient(g.gw.url);
    try {
      await client.callTool({
        name: 'github__get_file_contents',
        arguments: { repo: 'acme/secret-plans', path: 'docs/plan.md' },
      });
      const r = await client.callTool({
        name: PR,
        arguments: { repo: 'acme/website', title: 'docs', body: 'typo fix' },
      });
      assert.deepEqual(r.content, [{ type: 'text', text: 'opened a pull request in acme/website' }]);
      assert.equal(g.prs().length, 1);
    } finally {
      await client.close();
    }
  });

  test('T18 GitHub leak: after reading a public issue with a plain-language hijack (no finding), the public pull request with private content is held for approval; approving releases it once', async () => {
    const g = gw();
    const before = g.prs().length;
    const client = await connectClient(g.gw.url);
    try {
      await readIssueThenPrivateFile(client, 1);
      const id = await heldForApproval(client, LEAK);
      assert.equal(g.prs().length, before, 'nothing was published while the call waits');
      // Detection had nothing to find: the hold is the source marking's doing.
      assert.equal(
        auditEvents(g.gw.dataDir, 'sanitiser.finding').length,
        0,
        'issue 1 carries no detectable marker',
      );
      const tainted = auditEvents(g.gw.dataDir, 'grant.tainted');
      assert.equal(tainted.length, 1, 'taint is recorded once per grant and label set');
      assert.deepEqual(tainted[0]?.detail?.labels, ['untrusted', 'untrusted:github']);
      assert.equal(tainted[0]?.tool, 'github__get_issue');

      const ok = await approvals(g, 'approve', id, '--as', 'carol', '--reason', 'reviewed the diff');
      assert.equal(ok.code, 0, ok.stderr);
      const r = await client.callTool({ name: PR, arguments: LEAK });
      assert.deepEqual(r.content, [{ type: 'text', text: 'opened a pull request in acme/website' }]);
      assert.equal(g.prs().length, before + 1);
      // Single use: the grant stays tainted, the next outward call is held again.
      await heldForApproval(client, { ...LEAK, title: 'again' });
      assert.equal(g.prs().length, before + 1);
    } finally {
      await client.close();
    }
  });

  test('T18 GitHub leak: a denied approval keeps the private content unpublished (approval_denied)', async () => {
    const g = gw();
    const before = g.prs().length;
    const client = await connectClient(g.gw.url);
    try {
      await readIssueThenPrivateFile(client, 1);
      const id = await heldForApproval(client, LEAK);
      const denied = await approvals(g, 'deny', id, '--as', 'carol', '--reason', 'exfiltration');
      assert.equal(denied.code, 0, denied.stderr);
      const err = await callError(client, PR, LEAK);
      assert.equal((err.data as { gatehouse?: string }).gatehouse, 'approval_denied');
      assert.equal(g.prs().length, before);
    } finally {
      await client.close();
    }
  });

  test('T18 taint belongs to the grant: a new session of the same principal starts untainted', async () => {
    const g = gw();
    const tainted = await connectClient(g.gw.url);
    const fresh = await connectClient(g.gw.url);
    try {
      await readIssueThenPrivateFile(tainted, 1);
      await heldForApproval(tainted, LEAK);
      const r = await fresh.callTool({
        name: PR,
        arguments: { repo: 'acme/website', title: 'docs', body: 'typo fix' },
      });
      assert.deepEqual(r.content, [{ type: 'text', text: 'opened a pull request in acme/website' }]);
    } finally {
      await tainted.close();
      await fresh.close();
    }
  });
});

describe('taint by finding: no source marked; an injection finding in a result taints the grant', () => {
  const gw = gatewayFor('finding-', []);

  test('T18 an <IMPORTANT> injection in an issue taints the grant (finding:injection); the pull request is held', async () => {
    const g = gw();
    const client = await connectClient(g.gw.url);
    try {
      // Without a source marking, the plain-language hijack taints nothing: the PR is opened.
      await readIssueThenPrivateFile(client, 1);
      const r = await client.callTool({
        name: PR,
        arguments: { repo: 'acme/website', title: 'docs', body: 'typo fix' },
      });
      assert.deepEqual(r.content, [{ type: 'text', text: 'opened a pull request in acme/website' }]);
      const published = g.prs().length;

      await readIssueThenPrivateFile(client, 2);
      await heldForApproval(client, LEAK);
      assert.equal(g.prs().length, published);
      await eventually('the taint is audited', () => auditEvents(g.gw.dataDir, 'grant.tainted').length > 0);
      const [t] = auditEvents(g.gw.dataDir, 'grant.tainted');
      assert.deepEqual(t?.detail?.labels, ['untrusted', 'untrusted:github', 'finding:injection']);
    } finally {
      await client.close();
    }
  });
});
