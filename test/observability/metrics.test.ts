import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register as globalRegister } from 'prom-client';
import { createMetrics, secondsSince } from '../../src/observability/metrics.ts';

/** The samples of one metric name in exposition text: label string (as written) -> value. */
function samples(body: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

test('metrics: every instrument is exposed on a dedicated registry, with process metrics', async () => {
  const m = createMetrics();
  const { contentType, body } = await m.render();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  for (const [name, type] of [
    ['gatehouse_calls_total', 'counter'],
    ['gatehouse_stage_duration_seconds', 'histogram'],
    ['gatehouse_call_duration_seconds', 'histogram'],
    ['gatehouse_active_sessions', 'gauge'],
    ['gatehouse_active_grants', 'gauge'],
    ['gatehouse_pending_approvals', 'gauge'],
    ['gatehouse_revocations_total', 'counter'],
    ['gatehouse_sanitizer_findings_total', 'counter'],
    ['gatehouse_auth_failures_total', 'counter'],
    ['gatehouse_audit_events_total', 'counter'],
    ['gatehouse_audit_write_failures_total', 'counter'],
  ] as const) {
    assert.ok(body.includes(`# TYPE ${name} ${type}\n`), `${name} ${type}`);
    assert.ok(body.includes(`# HELP ${name} `), `${name} help`);
  }
  assert.ok(body.includes('# TYPE process_cpu_user_seconds_total counter'));
  assert.ok(body.includes('# TYPE nodejs_heap_size_used_bytes gauge'));
  // Not the global registry, and two instances do not collide on names.
  assert.equal(globalRegister.getSingleMetric('gatehouse_calls_total'), undefined);
  const other = createMetrics({ defaultMetrics: false });
  m.call('fs', 'read', 'allow', 'ok', 0.01);
  assert.equal(samples((await other.render()).body, 'gatehouse_calls_total').size, 0);
  assert.ok(!(await other.render()).body.includes('process_cpu_user_seconds_total'));
});

test('metrics: calls are counted per server, tool, decision and outcome, with durations', async () => {
  const m = createMetrics({ defaultMetrics: false });
  m.call('fs', 'read_file', 'allow', 'ok', 0.02);
  m.callDone({ server: 'fs', tool: 'read_file', decision: 'allow', outcome: 'ok', seconds: 0.3 });
  m.callDone({ server: 'fs', tool: 'write_file', decision: 'deny', outcome: 'rejected', seconds: 0.001 });
  m.call('gh', 'search', 'approve', 'error', 2);
  m.call('gh', '', 'none', 'rejected', 0.0001);
  const { body } = await m.render();
  const calls = samples(body, 'gatehouse_calls_total');
  assert.equal(calls.get('{server="fs",tool="read_file",decision="allow",outcome="ok"}'), 2);
  assert.equal(calls.get('{server="fs",tool="write_file",decision="deny",outcome="rejected"}'), 1);
  assert.equal(calls.get('{server="gh",tool="search",decision="approve",outcome="error"}'), 1);
  assert.equal(calls.get('{server="gh",tool="",decision="none",outcome="rejected"}'), 1);
  // Only label tuples that happened are series (no pre-zeroed decision x outcome grid).
  assert.equal(calls.get('{server="fs",tool="read_file",decision="deny",outcome="ok"}'), undefined);
  const count = samples(body, 'gatehouse_call_duration_seconds_count');
  assert.equal(count.get('{server="fs"}'), 3);
  assert.equal(count.get('{server="gh"}'), 2);
  const sum = samples(body, 'gatehouse_call_duration_seconds_sum');
  assert.ok(Math.abs((sum.get('{server="fs"}') ?? 0) - 0.321) < 1e-9);
  const buckets = samples(body, 'gatehouse_call_duration_seconds_bucket');
  assert.equal(buckets.get('{le="0.025",server="fs"}'), 2);
  assert.equal(buckets.get('{le="600",server="gh"}'), 2);
  assert.equal(buckets.get('{le="+Inf",server="gh"}'), 2);
});

test('metrics: stage histogram buckets resolve 10 µs to 1 s; bad durations are ignored', async () => {
  const m = createMetrics({ defaultMetrics: false });
  m.stage('authenticate', 0.00002);
  m.stage('authenticate', 0.0004);
  m.stage('forward-message', 0.8);
  m.stage('authenticate', Number.NaN);
  m.stage('authenticate', -1);
  m.call('fs', 't', 'allow', 'ok', Number.POSITIVE_INFINITY);
  const { body } = await m.render();
  const b = samples(body, 'gatehouse_stage_duration_seconds_bucket');
  assert.equal(b.get('{le="0.00001",stage="authenticate"}'), 0);
  assert.equal(b.get('{le="0.000025",stage="authenticate"}'), 1);
  assert.equal(b.get('{le="0.0005",stage="authenticate"}'), 2);
  assert.equal(b.get('{le="0.5",stage="forward-message"}'), 0);
  assert.equal(b.get('{le="1",stage="forward-message"}'), 1);
  assert.equal(samples(body, 'gatehouse_stage_duration_seconds_count').get('{stage="authenticate"}'), 2);
  // The call is counted, its infinite duration not observed.
  assert.equal(samples(body, 'gatehouse_call_duration_seconds_count').get('{server="fs"}'), undefined);
  assert.equal(
    samples(body, 'gatehouse_calls_total').get('{server="fs",tool="t",decision="allow",outcome="ok"}'),
    1,
  );
});

test('metrics: gauges and the other counters', async () => {
  const m = createMetrics({ defaultMetrics: false });
  m.setActiveSessions(7);
  m.setActiveGrants(3);
  m.setPendingApprovals(1);
  m.setActiveSessions(6);
  m.revocation('grant');
  m.revocation('lease', 2);
  m.revocation('lease', 0);
  m.sanitizerFinding('prompt-injection', 3);
  m.authFailure('invalid_token');
  m.authFailure('invalid_token');
  m.auditEvent('call.completed');
  m.auditEvent('authn.failure');
  m.auditWriteFailure();
  const { body } = await m.render();
  assert.equal(samples(body, 'gatehouse_active_sessions').get(''), 6);
  assert.equal(samples(body, 'gatehouse_active_grants').get(''), 3);
  assert.equal(samples(body, 'gatehouse_pending_approvals').get(''), 1);
  assert.equal(samples(body, 'gatehouse_revocations_total').get('{kind="grant"}'), 1);
  assert.equal(samples(body, 'gatehouse_revocations_total').get('{kind="lease"}'), 2);
  assert.equal(samples(body, 'gatehouse_sanitizer_findings_total').get('{kind="prompt-injection"}'), 3);
  assert.equal(samples(body, 'gatehouse_auth_failures_total').get('{reason="invalid_token"}'), 2);
  assert.equal(samples(body, 'gatehouse_audit_events_total').get('{type="call.completed"}'), 1);
  assert.equal(samples(body, 'gatehouse_audit_events_total').get('{type="authn.failure"}'), 1);
  assert.equal(samples(body, 'gatehouse_audit_write_failures_total').get(''), 1);
});

test('metrics: tool label values are capped at 1000, then counted as other', async () => {
  const m = createMetrics({ defaultMetrics: false });
  for (let i = 0; i < 1200; i++) m.call('fs', `tool_${i}`, 'allow', 'ok', 0.001);
  m.call('fs', 'tool_5', 'allow', 'ok', 0.001); // a value seen before the cap keeps its label
  m.call('gh', 'tool_1100', 'allow', 'ok', 0.001); // past the cap on any server
  const calls = samples((await m.render()).body, 'gatehouse_calls_total');
  const tools = new Set<string>();
  for (const key of calls.keys()) {
    const t = /tool="([^"]*)"/.exec(key)?.[1];
    if (t !== undefined) tools.add(t);
  }
  assert.equal(tools.size, 1001);
  assert.ok(tools.has('other'));
  assert.ok(!tools.has('tool_1000'));
  assert.equal(calls.get('{server="fs",tool="other",decision="allow",outcome="ok"}'), 200);
  assert.equal(calls.get('{server="fs",tool="tool_5",decision="allow",outcome="ok"}'), 2);
  assert.equal(calls.get('{server="gh",tool="other",decision="allow",outcome="ok"}'), 1);
});

test('T31 metrics: distinct tool names past the cap cost no memory (one shared set of cells)', () => {
  const m = createMetrics({ defaultMetrics: false, maxToolLabels: 10 });
  for (let i = 0; i < 5000; i++) m.call('fs', `made-up-${i}`, 'deny', 'rejected', 0);
  // 10 labelled tools and `other`, 12 cells (decision × outcome) each.
  assert.equal(m.callCellCount(), 11 * 12);
});

test('metrics: small labels and servers are capped; long and odd values stay valid exposition', async () => {
  const m = createMetrics({ defaultMetrics: false, maxSmallLabels: 2, maxServerLabels: 1, maxToolLabels: 2 });
  m.authFailure('a');
  m.authFailure('b');
  m.authFailure('c');
  m.authFailure('d');
  m.call('fs', 'x'.repeat(5000), 'allow', 'ok', 0.001);
  m.call('fs', 'quote"back\\slash\nnewline', 'allow', 'ok', 0.001);
  m.call('fs', 'third', 'allow', 'ok', 0.001);
  m.call('other-server', 'x', 'allow', 'ok', 0.001);
  const { body } = await m.render();
  const auth = samples(body, 'gatehouse_auth_failures_total');
  assert.deepEqual([...auth.keys()].sort(), ['{reason="a"}', '{reason="b"}', '{reason="other"}']);
  assert.equal(auth.get('{reason="other"}'), 2);
  const calls = samples(body, 'gatehouse_calls_total');
  assert.equal(calls.get(`{server="fs",tool="${'x'.repeat(128)}",decision="allow",outcome="ok"}`), 1);
  assert.equal(
    calls.get('{server="fs",tool="quote\\"back\\\\slash\\nnewline",decision="allow",outcome="ok"}'),
    1,
  );
  assert.equal(calls.get('{server="fs",tool="other",decision="allow",outcome="ok"}'), 1);
  assert.equal(calls.get('{server="other",tool="other",decision="allow",outcome="ok"}'), 1);
  // Every sample line parses: escaping kept one sample per line.
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+$/);
  }
});

test('metrics: options are validated; secondsSince measures hrtime', () => {
  assert.throws(() => createMetrics({ maxToolLabels: 0 }), /maxToolLabels must be a positive integer/);
  const start = process.hrtime.bigint();
  const s = secondsSince(start);
  assert.ok(s >= 0 && s < 1);
});
