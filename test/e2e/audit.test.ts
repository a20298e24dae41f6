/**
 * The audit log in the request path: every decision is an identity event,
 * written ahead of the side effect, tamper-evident, and it fails closed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CompanyIdp, startCompanyIdp } from '../fixtures/company-idp.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../fixtures/recording-upstream.ts';
import { connectClient, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = ['--import', 'tsx', join(ROOT, 'src/cli/index.ts')];

/** The audit records as written (the segment files, what write-ahead makes durable), in order. */
function events(dataDir: string, type?: string): { seq: number; type: string; e: Record<string, unknown> }[] {
  const dir = join(dataDir, 'audit');
  const out: { seq: number; type: string; e: Record<string, unknown> }[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort()) {
    const text = readFileSync(join(dir, name), 'utf8');
    for (const line of text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter(Boolean)) {
      const rec = JSON.parse(line.slice(65)) as { seq: number; event: Record<string, unknown> };
      if (type === undefined || rec.event.type === type)
        out.push({ seq: rec.seq, type: String(rec.event.type), e: rec.event });
    }
  }
  return out;
}

function cli(dataDir: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI, 'audit', ...args, '--data-dir', dataDir], {
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('audit in the request path (external issuer, HTTP upstream)', () => {
  let idp: CompanyIdp;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  /** What the audit log said at the moment the upstream executed each call. */
  const seenAtCall: { text: string; attempted: boolean }[] = [];

  before(async () => {
    const resources: string[] = [];
    idp = await startCompanyIdp({ allowedResources: resources, scopes: 'mcp' });
    upstream = await startRecordingUpstream({
      onCall: (text) => {
        // INVARIANT under test: the allow record is durable before the call reaches the upstream.
        const attempted = events(gw.dataDir, 'call.attempted').some((r) =>
          JSON.stringify(r.e).includes(text),
        );
        seenAtCall.push({ text, attempted });
      },
    });
    const policyDir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-policy-'));
    const policyFile = join(policyDir, 'audit.cedar');
    writeFileSync(
      policyFile,
      [
        '@id("agents-use-up") permit (principal, action, resource in Gatehouse::Server::"up");',
        '@id("no-forbidden-probe") forbid (principal, action == Gatehouse::Action::"call_tool", resource)',
        'when { context.args.hasTag("text") && context.args.getTag("text") == "forbidden-probe" };',
        '@id("approval-probe") @approval("required")',
        'forbid (principal, action == Gatehouse::Action::"call_tool", resource)',
        'when { context.args.hasTag("text") && context.args.getTag("text") == "approval-probe" }',
        'unless { context.approved };',
        '@id("no-odd-tools") forbid (principal, action == Gatehouse::Action::"call_tool", resource is Gatehouse::Tool)',
        'when { resource.name like "odd*" };',
        '',
      ].join('\n'),
    );
    gw = await startTestGateway({
      auth: { mode: 'external', external: { issuer: idp.issuer } },
      policy: { files: [policyFile] },
      grants: { owners: { 'agent-a': 'team-widgets' } },
      upstreams: { up: { type: 'http', url: upstream.url } },
      // Every batch starts a new segment file, so a test can make the next one unwritable;
      // anonymous failures are counted in 1 s windows, so their summaries arrive while the suite runs.
      audit: { segmentBytes: 1, anonymousFailures: { windowSec: 1 } },
    });
    resources.push(gw.url);
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await idp.close();
  });

  async function client(): Promise<{ c: Client; token: string }> {
    const token = await idp.token({ resource: gw.url, scope: 'mcp' });
    const c = new Client({ name: 'audit-test', version: '1' });
    await c.connect(
      new StreamableHTTPClientTransport(new URL(gw.url), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    return { c, token };
  }

  test('T27 write-ahead: the call.attempted record is durable before the upstream executes the call', async () => {
    const { c } = await client();
    await c.callTool({ name: 'up__echo', arguments: { text: 'write-ahead-probe-1' } });
    await c.close();
    const probe = seenAtCall.find((s) => s.text === 'write-ahead-probe-1');
    assert.ok(probe, 'the upstream ran the call');
    assert.equal(probe.attempted, true, 'the allow record existed when the upstream ran');
  });

  test('T27 every call is an identity event: who, for whom, which token (jti, never the token), server, tool, digest, outcome', async () => {
    const { c, token } = await client();
    await c.listTools();
    await c.callTool({ name: 'up__echo', arguments: { text: 'identity-event' } });
    await c.close();
    const jti = (
      JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }
    ).jti;
    const attempted = events(gw.dataDir, 'call.attempted').find((r) =>
      JSON.stringify(r.e).includes('identity-event'),
    );
    assert.ok(attempted);
    const e = attempted.e as {
      principal: { agent: string; jti: string; issuer: string };
      server: string;
      tool: string;
      arguments: { digest: string };
      decision: { effect: string; policies: string[] };
      requestId: string;
      grantId: string;
      owner: string;
      sessionId: string;
    };
    assert.equal(e.principal.agent, 'agent-a');
    assert.equal(e.principal.jti, jti);
    assert.equal(e.principal.issuer, idp.issuer);
    assert.equal(e.server, 'up');
    assert.equal(e.tool, 'up__echo');
    assert.match(e.arguments.digest, /^[0-9a-f]{64}$/);
    assert.equal(e.decision.effect, 'allow');
    assert.deepEqual(e.decision.policies, ['agents-use-up'], 'the deciding policy is recorded');
    assert.match(e.grantId, /^gr_/);
    assert.equal(e.owner, 'team-widgets');
    const created = events(gw.dataDir, 'grant.created').find((r) => r.e.grantId === e.grantId);
    assert.ok(created, 'the grant was recorded when it was made');
    assert.equal(created.e.owner, 'team-widgets');
    const done = events(gw.dataDir, 'call.completed').find((r) => r.e.requestId === e.requestId);
    assert.ok(done, 'the outcome was appended');
    assert.equal((done.e.outcome as { status: string }).status, 'ok');
    // Session events and the token itself.
    const types = new Set(events(gw.dataDir).map((r) => r.type));
    for (const t of ['authn.success', 'grant.created', 'list', 'call.attempted', 'call.completed'])
      assert.ok(types.has(t), t);
    assert.ok(
      !JSON.stringify(events(gw.dataDir)).includes(token),
      'the access token never appears in the audit log',
    );
  });

  test('T27 a refused call is a decision event with the deciding policy and the reference the client got', async () => {
    const { c } = await client();
    const err = await c.callTool({ name: 'up__echo', arguments: { text: 'forbidden-probe' } }).then(
      () => assert.fail('allowed'),
      (e: unknown) => e as { code: number; data: { reference: string } },
    );
    assert.equal(err.code, -32020);
    await c.close();
    const deadline = Date.now() + 5000;
    let found: { e: Record<string, unknown> } | undefined;
    while (!found && Date.now() < deadline) {
      found = events(gw.dataDir, 'decision').find((r) => JSON.stringify(r.e).includes(err.data.reference));
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(found, 'the refusal is in the audit log under its reference');
    const d = found.e as { decision: { effect: string; policies: string[] }; tool: string; owner: string };
    assert.deepEqual(d.decision.policies, ['no-forbidden-probe']);
    assert.equal(d.decision.effect, 'deny');
    assert.equal(d.tool, 'up__echo');
    assert.equal(d.owner, 'team-widgets');
    assert.ok(!seenAtCall.some((s) => s.text === 'forbidden-probe'), 'never reached the upstream');
  });

  /** Sum of the counts of the anonymous-failure summaries with this code, and the individual failure records. */
  function failures(code: string): { counted: number; individual: number } {
    const counted = events(gw.dataDir, 'authn.failure.summary')
      .map((r) => r.e.detail as { code: string; count: number })
      .filter((d) => d.code === code)
      .reduce((n, d) => n + d.count, 0);
    return { counted, individual: events(gw.dataDir, 'authn.failure').length };
  }

  async function anonymous(headers: Record<string, string> = {}): Promise<Response> {
    return fetch(gw.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'user-agent': 'flood-test',
        ...headers,
      },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    });
  }

  test('T01 an unauthenticated request is counted in the audit (authn.failure.summary with samples)', async () => {
    const before = failures('unauthorized');
    const res = await anonymous();
    assert.equal(res.status, 401);
    const deadline = Date.now() + 10_000;
    while (failures('unauthorized').counted === before.counted && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const last = events(gw.dataDir, 'authn.failure.summary').at(-1);
    assert.ok(last, 'an authn.failure.summary event');
    const d = last.e.detail as {
      code: string;
      count: number;
      samples: { userAgent: string; address: string }[];
    };
    assert.equal(d.code, 'unauthorized');
    assert.equal(d.samples[0]?.userAgent, 'flood-test');
    assert.match(d.samples[0]?.address ?? '', /127\.0\.0\.1/);
  });

  test('T32 a flood of anonymous 401s is counted per window, not written one record each', async () => {
    const before = { unauthorized: failures('unauthorized'), invalid: failures('invalid_token') };
    const forged = `${Buffer.from('{"alg":"RS256","kid":"k"}').toString('base64url')}.${Buffer.from('{"iss":"x"}').toString('base64url')}.c2ln`;
    for (let i = 0; i < 100; i++) {
      assert.equal((await anonymous()).status, 401);
      assert.equal((await anonymous({ authorization: `Bearer ${forged}` })).status, 401);
    }
    const deadline = Date.now() + 15_000;
    const done = (): boolean =>
      failures('unauthorized').counted >= before.unauthorized.counted + 100 &&
      failures('invalid_token').counted >= before.invalid.counted + 100;
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(failures('unauthorized').counted, before.unauthorized.counted + 100, 'every 401 counted');
    assert.equal(failures('invalid_token').counted, before.invalid.counted + 100);
    assert.equal(failures('invalid_token').individual, before.invalid.individual, 'no record per request');
    assert.ok(!JSON.stringify(events(gw.dataDir)).includes(forged), 'never the token');
  });

  test('T32 a refusal whose record cannot be written quotes no reference and says so', async () => {
    const { c } = await client();
    await new Promise((r) => setTimeout(r, 100)); // the session's own records are written
    const all = events(gw.dataDir);
    const squat = join(gw.dataDir, 'audit', `${String((all.at(-1)?.seq ?? 0) + 1).padStart(16, '0')}.log`);
    mkdirSync(squat);
    let err: { code: number; message: string; data: Record<string, unknown> };
    try {
      err = await c.callTool({ name: 'up__echo', arguments: { text: 'forbidden-probe' } }).then(
        () => assert.fail('allowed'),
        (e: unknown) => e as { code: number; message: string; data: Record<string, unknown> },
      );
    } finally {
      rmSync(squat, { recursive: true });
    }
    assert.equal(err.code, -32020, 'still refused');
    assert.equal(err.data.reference, undefined, 'no reference to a record that does not exist');
    assert.equal(err.data.audit, 'unavailable');
    assert.match(err.message, /no audit record could be written/);
    await c.close();
  });

  test('T32 hostile values: every reference a client is given is found by audit query, and the log verifies', async () => {
    const token = await idp.token({ resource: gw.url, scope: 'mcp' });
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': '2025-11-25',
    };
    const init = await fetch(gw.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          // clientInfo is copied into authn.success: control characters, a line separator, a long
          // version (values the edge lets through; unpaired surrogates and 1e309 it refuses, see edge.test.ts).
          clientInfo: { name: 'x\u0000\u2028', version: 'v'.repeat(100_000) },
        },
      }),
    });
    assert.equal(init.status, 200);
    const sid = init.headers.get('mcp-session-id') ?? '';
    await init.text();
    const deep = `${'['.repeat(60)}1${']'.repeat(60)}`;
    // Raw bodies: values that pass the edge and reach policy and audit (NUL, U+2028, `__proto__` keys,
    // integers beyond 2^53, -0, near-limit nesting and names), and values the edge refuses first
    // (unpaired surrogates, 1e309, oversized ids): those are typed parse errors with no reference.
    const bodies = [
      `{"jsonrpc":"2.0","id":"\u2028x","method":"tools/call","params":{"name":"up__echo","arguments":{"text":"forbidden-probe","n":123456789012345678901234567890}}}`,
      `{"jsonrpc":"2.0","id":"x\u0000\n","method":"tools/call","params":{"name":"up__echo","arguments":{"text":"forbidden-probe","\u2028":"\u0000","__proto__":{"path":"/etc/shadow"}}}}`,
      `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"approval-probe","deep":${deep}}}}`,
      `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"up__odd${'x'.repeat(1000)}","arguments":{"deep":${deep},"__proto__":{"x":1}}}}`,
      `{"jsonrpc":"2.0","id":-0,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"forbidden-probe","big":123456789012345678901234567890}}}`,
      `{"jsonrpc":"2.0","id":"\ud800","method":"tools/call","params":{"name":"up__echo","arguments":{"text":"forbidden-probe","n":1e309}}}`,
      `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"up__odd\ud800","arguments":{"n":-1e400}}}`,
      `{"jsonrpc":"2.0","id":"${'i'.repeat(100_000)}","method":"tools/call","params":{"name":"up__echo","arguments":{}}}`,
    ];
    const answers: {
      status: number;
      error?: { code: number; data?: { reference?: string; audit?: string } };
    }[] = [];
    for (const body of bodies) {
      const res = await fetch(gw.url, {
        method: 'POST',
        headers: { ...headers, 'mcp-session-id': sid },
        body,
      });
      const text = await res.text();
      const json = (text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}')) as string;
      answers.push({ status: res.status, ...(JSON.parse(json) as { error?: never }) });
    }
    const references = answers.flatMap((a) => (a.error?.data?.reference ? [a.error.data.reference] : []));
    assert.ok(references.length >= 4, `refusals with references: ${JSON.stringify(answers).slice(0, 2000)}`);
    for (const a of answers) {
      // Every refusal either quotes a reference or says no record was written; never a 5xx.
      assert.ok(a.status < 500, JSON.stringify(a).slice(0, 500));
      if (a.error && [-32020, -32021].includes(a.error.code))
        assert.ok(a.error.data?.reference || a.error.data?.audit === 'unavailable', JSON.stringify(a.error));
    }
    // The store is healthy: no hostile value may cost a refusal its record.
    assert.ok(!answers.some((a) => a.error?.data?.audit === 'unavailable'), 'no refusal lost its record');
    const q = cli(gw.dataDir, 'query', '--type', 'decision', '--json');
    assert.equal(q.status, 0, q.stderr);
    for (const ref of references) assert.ok(q.stdout.includes(ref), `audit query finds ${ref}`);
    const started = events(gw.dataDir, 'authn.success').find((r) => r.e.sessionId === sid);
    assert.ok(started, 'the session start with hostile clientInfo was recorded');
    const v = cli(gw.dataDir, 'verify');
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });

  test('incident drill: from a leaked token jti, audit query finds every call made with it, its grant and its outcome', async () => {
    const { c, token } = await client();
    await c.callTool({ name: 'up__echo', arguments: { text: 'drill-1' } });
    await c.callTool({ name: 'up__echo', arguments: { text: 'drill-2' } });
    await c.close();
    const jti = (
      JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }
    ).jti;
    const q = cli(gw.dataDir, 'query', `--jti=${jti}`, '--type', 'call.attempted', '--json');
    assert.equal(q.status, 0, q.stderr);
    const found = q.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { event: { tool: string; grantId: string } }).event);
    assert.equal(found.length, 2);
    assert.ok(found.every((f) => f.tool === 'up__echo' && f.grantId));
    const timeline = cli(gw.dataDir, 'timeline', found[0]?.grantId ?? '');
    assert.equal(timeline.status, 0, timeline.stderr);
    assert.match(timeline.stdout, /call\.attempted/);
    assert.match(timeline.stdout, /call\.completed/);
  });

  test('T27 fail closed: when the audit store cannot write, tool calls are refused and never reach the upstream', async () => {
    const { c } = await client();
    await new Promise((r) => setTimeout(r, 100)); // the session's own records are written
    // A real write failure: the next segment file's name is taken by a directory (EISDIR).
    const all = events(gw.dataDir);
    const squat = join(gw.dataDir, 'audit', `${String((all.at(-1)?.seq ?? 0) + 1).padStart(16, '0')}.log`);
    mkdirSync(squat);
    try {
      const calls = seenAtCall.length;
      await assert.rejects(
        c.callTool({ name: 'up__echo', arguments: { text: 'must-not-run' } }),
        /audit log cannot record/,
      );
      assert.equal(seenAtCall.length, calls, 'the upstream never saw the call');
      const tools = await c.listTools();
      assert.ok(tools.tools.length > 0, 'lists are still served');
    } finally {
      rmSync(squat, { recursive: true });
    }
    const ok = await c.callTool({ name: 'up__echo', arguments: { text: 'after-recovery' } });
    assert.deepEqual(ok.content, [{ type: 'text', text: 'after-recovery' }]);
    await c.close();
  });

  test('T27 docs/audit.md describes exactly the fields stored: every key of every event written above is documented', () => {
    const doc = readFileSync(join(ROOT, 'docs/audit.md'), 'utf8');
    const ticks = (text: string): Set<string> =>
      new Set([...text.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? ''));
    /** Table rows of the section after `heading`: first cell's names -> the rest's names. */
    const rows = (heading: string): Map<string, Set<string>> => {
      const section = doc.slice(doc.indexOf(heading));
      const table = section.slice(section.indexOf('\n|')).split('\n\n')[0] ?? '';
      const out = new Map<string, Set<string>>();
      for (const line of table.split('\n').slice(2)) {
        const [, first = '', ...rest] = line.split('|');
        for (const name of ticks(first)) out.set(name, ticks(rest.join('|')));
      }
      return out;
    };
    const fields = rows('## Event schema (version 1)');
    const details = rows('`detail` by event type');
    const any = details.get('any') ?? new Set<string>();
    const problems = new Set<string>();
    const all = events(gw.dataDir);
    assert.ok(all.length > 20);
    for (const { type, e } of all) {
      for (const [k, v] of Object.entries(e)) {
        const sub = fields.get(k);
        if (!sub) {
          problems.add(`${type}: field \`${k}\` is not documented`);
          continue;
        }
        if (k === 'detail') {
          const documented = details.get(type);
          for (const [dk, dv] of Object.entries(v as Record<string, unknown>)) {
            if (!documented?.has(dk) && !any.has(dk)) problems.add(`${type}: detail.${dk} is not documented`);
            // Nested detail objects (client, samples) are listed in the same row.
            const items = Array.isArray(dv) ? dv : [dv];
            for (const item of items)
              if (item !== null && typeof item === 'object' && !['constraints', 'tools'].includes(dk))
                for (const nk of Object.keys(item))
                  if (!documented?.has(nk)) problems.add(`${type}: detail.${dk}.${nk} is not documented`);
          }
        } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && k !== 'arguments') {
          for (const sk of Object.keys(v))
            if (!sub.has(sk)) problems.add(`${type}: ${k}.${sk} is not documented`);
        } else if (k === 'arguments') {
          for (const sk of Object.keys(v as object))
            if (!sub.has(sk)) problems.add(`${type}: arguments.${sk} is not documented`);
        }
      }
    }
    assert.deepEqual([...problems], []);
  });

  test('T27 the chain verifies after all of the above (tamper detection: test/audit/tamper.test.ts)', async () => {
    const v = cli(gw.dataDir, 'verify');
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });
});

test('audit.retention prunes at start-up behind a signed checkpoint; the rest still verifies', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-retention-'));
  const { demoConfig } = await import('../../src/cli/demo.ts');
  const { startGateway } = await import('../../src/gateway.ts');
  const { default: pino } = await import('pino');
  const logger = pino({ level: 'silent' });
  const server = { host: '127.0.0.1', port: 0 };
  // The demo policy wants an identity; this test runs without one, so everything is allowed.
  const allowAll = join(dataDir, 'allow-all.cedar');
  writeFileSync(allowAll, 'permit (principal, action, resource);\n');
  const policy = { files: [allowAll] };
  try {
    const first = await startGateway({
      config: { ...demoConfig(), auth: { mode: 'none' }, policy, server },
      dataDir,
      logger,
    });
    for (let i = 0; i < 3; i++) {
      const c = await connectClient(first.url);
      await c.callTool({ name: 'everything__echo', arguments: { message: `r${i}` } });
      await c.close();
    }
    await first.close();
    const before = events(dataDir).length;
    assert.ok(before > 10);
    const second = await startGateway({
      config: {
        ...demoConfig(),
        auth: { mode: 'none' },
        policy,
        server,
        audit: { retention: { maxRecords: 5 } },
      },
      dataDir,
      logger,
    });
    await second.close();
    const after = events(dataDir);
    assert.ok(after.length < before, `pruned: ${before} → ${after.length}`);
    const v = cli(dataDir, 'verify');
    assert.equal(v.status, 0, v.stdout + v.stderr);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

describe('crash: kill -9 in the middle of side-effecting calls', () => {
  let work: string;
  let child: ChildProcess | undefined;
  after(() => {
    child?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  async function startGateway(dataDir: string, config: string): Promise<{ proc: ChildProcess; url: string }> {
    const proc = spawn(
      process.execPath,
      [...CLI, 'start', '--config', config, '--port', '0', '--data-dir', dataDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /MCP endpoint:\s+(\S+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      proc.once('exit', (code) => reject(new Error(`gateway exited ${code}: ${out}`)));
    });
    return { proc, url };
  }

  test('T27 every call whose success the client saw has its allow and outcome records (or "outcome unknown"); the chain verifies', async () => {
    work = mkdtempSync(join(tmpdir(), 'gatehouse-audit-crash-'));
    const dataDir = join(work, 'data');
    const everything = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
    const config = join(work, 'gatehouse.yaml');
    writeFileSync(join(work, 'allow-all.cedar'), 'permit (principal, action, resource);\n');
    writeFileSync(
      config,
      `auth:\n  mode: none\npolicy:\n  files: [allow-all.cedar]\npinning:\n  newTools: trust\nupstreams:\n  everything:\n    type: stdio\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(everything)}, stdio]\n`,
    );
    const first = await startGateway(dataDir, config);
    child = first.proc;
    const client = await connectClient(first.url);
    const seen: string[] = [];
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const text = `crash-${w}-${i}`;
        try {
          const r = await client.callTool({ name: 'everything__echo', arguments: { message: text } });
          if (JSON.stringify(r).includes(text)) seen.push(text);
        } catch {
          return;
        }
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    const deadline = Date.now() + 60_000;
    while (seen.length < 40) {
      // A guard, not a timing assertion: calls failing for another reason must not hang the suite.
      assert.ok(Date.now() < deadline, `only ${seen.length} calls succeeded`);
      await new Promise((r) => setTimeout(r, 20));
    }
    first.proc.kill('SIGKILL');
    stop = true;
    await Promise.allSettled(workers);
    await client.close().catch(() => {});
    assert.ok(seen.length >= 40);

    // Restart on the same data dir: recovery marks calls without an outcome.
    const second = await startGateway(dataDir, config);
    child = second.proc;
    second.proc.kill('SIGTERM');
    await new Promise((r) => second.proc.once('exit', r));
    child = undefined;

    const attempted = events(dataDir, 'call.attempted');
    const completed = new Map(events(dataDir, 'call.completed').map((r) => [r.e.requestId as string, r.e]));
    for (const text of seen) {
      const a = attempted.find((r) => JSON.stringify(r.e.arguments).includes(text));
      assert.ok(a, `allow record for ${text}`);
      const c = completed.get(a.e.requestId as string);
      assert.ok(c, `outcome record for ${text}`);
      assert.ok(['ok', 'unknown'].includes((c.outcome as { status: string }).status));
    }
    for (const a of attempted)
      assert.ok(
        completed.has(a.e.requestId as string),
        'no attempted call is left without an outcome record',
      );
    const v = cli(dataDir, 'verify');
    assert.equal(v.status, 0, v.stdout + v.stderr);
  });
});
