import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { auditCommand, parseTime } from '../../src/cli/audit.ts';
import { callEvent, openFixture } from './helpers.ts';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await auditCommand(argv, { stdout, stderr });
  return { code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() };
}

/** An incident: a leaked token (jti LEAKED) used for two calls in grant g-incident, among other traffic. */
async function incidentLog(): Promise<string> {
  let now = Date.parse('2026-03-01T10:00:00Z');
  const f = await openFixture({ now: () => (now += 1000) });
  const leaked = {
    agent: 'agent-x',
    user: 'bob',
    jti: 'LEAKED-JTI-0001',
    issuer: 'https://as.example',
    authMethod: 'jwt' as const,
    actors: ['planner'],
  };
  const w = f.writer;
  await w.append({ type: 'grant.created', grantId: 'g-incident', owner: 'bob', principal: leaked });
  for (let i = 0; i < 10; i++) await w.append(callEvent(i)); // unrelated traffic
  await w.append({ type: 'authn.success', requestId: 'r-1', sessionId: 's-9', principal: leaked });
  await w.append({
    type: 'call.attempted',
    requestId: 'r-1',
    grantId: 'g-incident',
    sessionId: 's-9',
    principal: leaked,
    server: 'db',
    tool: 'export_table',
    args: { table: 'customers' },
    decision: { effect: 'approval_required', policies: ['pol-export-needs-approval'] },
  });
  await w.append({
    type: 'approval.granted',
    requestId: 'r-1',
    grantId: 'g-incident',
    principal: leaked,
    approval: { id: 'ap-1', approver: 'carol', reason: 'looks routine' },
  });
  await w.append({
    type: 'lease.issued',
    requestId: 'r-1',
    grantId: 'g-incident',
    principal: leaked,
    lease: { id: 'lease-7', credential: 'db-readonly' },
  });
  await w.append({
    type: 'call.completed',
    requestId: 'r-1',
    grantId: 'g-incident',
    principal: leaked,
    server: 'db',
    tool: 'export_table',
    decision: { effect: 'allow', policies: ['pol-export-needs-approval'] },
    outcome: { status: 'ok', latencyMs: 120, responseBytes: 52000 },
  });
  await w.append({
    type: 'call.attempted',
    requestId: 'r-2',
    grantId: 'g-incident',
    sessionId: 's-9',
    principal: leaked,
    server: 'db',
    tool: 'drop_table',
    args: { table: 'customers' },
    decision: { effect: 'deny', policies: ['pol-no-ddl'], reason: 'ddl is never allowed' },
    findings: [{ rule: 'sql-ddl', severity: 'high', action: 'blocked' }],
  });
  await w.close();
  await f.storage.close();
  return f.dir;
}

test('incident drill: from a leaked jti, query --jti finds every call and the grant', async () => {
  const dir = await incidentLog();
  const text = await run([
    'query',
    '--data-dir',
    dir,
    '--jti',
    'LEAKED-JTI-0001',
    '--type',
    'call.attempted',
  ]);
  assert.equal(text.code, 0, text.err);
  const lines = text.out.trim().split('\n');
  assert.equal(lines.length, 3);
  assert.match(
    lines[0] ?? '',
    /call\.attempted {2}agent-x for bob via planner {2}db\/export_table {2}grant=g-incident/,
  );
  assert.match(lines[1] ?? '', /db\/drop_table.*decision=deny\[pol-no-ddl\]/);
  assert.equal(lines[2], '2 events; grants: g-incident; sessions: s-9');
  const json = await run(['query', '--data-dir', dir, '--jti', 'LEAKED-JTI-0001', '--json']);
  const records = json.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(records.length, 7, 'every event made with the token');
  assert.ok(records.every((r) => r.event.principal.jti === 'LEAKED-JTI-0001'));
});

test('query filters combine (AND), accept server__tool and time bounds', async () => {
  const dir = await incidentLog();
  const count = async (...args: string[]): Promise<number> => {
    const r = await run(['query', '--data-dir', dir, '--json', ...args]);
    assert.equal(r.code, 0, r.err);
    return r.out.trim() === '' ? 0 : r.out.trim().split('\n').length;
  };
  assert.equal(await count(), 17);
  assert.equal(await count('--agent', 'agent-a'), 10);
  assert.equal(await count('--agent', 'agent-a', '--user', 'alice', '--grant', 'grant-1'), 3);
  assert.equal(await count('--tool', 'db__drop_table'), 1);
  assert.equal(await count('--tool', 'export_table', '--decision', 'allow'), 1);
  assert.equal(await count('--decision', 'deny'), 1);
  assert.equal(await count('--user', 'nobody'), 0);
  // Times: events at 10:00:01, 10:00:02, ... (one per second).
  assert.equal(await count('--since', '2026-03-01T10:00:05Z', '--until', '2026-03-01T10:00:08Z'), 3);
  assert.equal(await count('--limit', '4'), 4);
  const bad = await run(['query', '--data-dir', dir, '--since', 'yesterday-ish']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /cannot parse time/);
});

test('timeline reconstructs a grant with policies, approvers and outcomes', async () => {
  const dir = await incidentLog();
  const r = await run(['timeline', 'g-incident', '--data-dir', dir]);
  assert.equal(r.code, 0, r.err);
  const out = r.out;
  assert.match(out, /^grant g-incident: 6 events, 2026-03-01T10:00:01.000Z \.\. /);
  const order = [
    'grant.created',
    'call.attempted',
    'approval.granted',
    'lease.issued',
    'call.completed',
    'call.attempted',
  ];
  const types = out
    .split('\n')
    .map((l) => /#\d+ {2}(\S+)/.exec(l)?.[1])
    .filter(Boolean);
  assert.deepEqual(types, order);
  assert.match(out, /decision approval_required by pol-export-needs-approval/);
  assert.match(out, /approval ap-1 approver=carol: looks routine/);
  assert.match(out, /credential lease lease-7 \(db-readonly\)/);
  assert.match(out, /outcome ok 120 ms 52000 B/);
  assert.match(out, /decision deny by pol-no-ddl: ddl is never allowed/);
  assert.match(out, /finding high sql-ddl \(blocked\)/);
  assert.equal((await run(['timeline', 'no-such-grant', '--data-dir', dir])).code, 1);
});

test('export: json lines and ocsf api activity (6003) with gatehouse fields in unmapped', async () => {
  const dir = await incidentLog();
  const jsonl = await run(['export', '--data-dir', dir, '--grant', 'g-incident']);
  assert.equal(jsonl.code, 0, jsonl.err);
  const recs = jsonl.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(recs.length, 6);
  assert.deepEqual(Object.keys(recs[0]), ['seq', 'prev', 'hash', 'event']);
  const file = join(dir, 'out.ocsf.jsonl');
  assert.equal((await run(['export', '--data-dir', dir, '--format', 'ocsf', '--out', file])).code, 0);
  const events = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(events.length, 17);
  const drop = events.find((e) => e.resources?.[0]?.name === 'drop_table');
  assert.ok(drop);
  assert.equal(drop.class_uid, 6003);
  assert.equal(drop.category_uid, 6);
  assert.equal(drop.type_uid, 600399);
  assert.equal(drop.status_id, 2);
  assert.equal(drop.severity_id, 4);
  assert.equal(drop.actor.user.uid, 'bob');
  assert.equal(drop.actor.app_name, 'agent-x');
  assert.equal(drop.actor.authorizations[0].decision, 'deny');
  assert.equal(drop.api.service.name, 'db');
  assert.equal(drop.unmapped.jti, 'LEAKED-JTI-0001');
  assert.equal(drop.unmapped.grant_id, 'g-incident');
  assert.deepEqual(drop.unmapped.delegation_chain, ['planner']);
  assert.match(drop.unmapped.hash, /^[0-9a-f]{64}$/);
  const created = events.find((e) => e.unmapped.event_type === 'grant.created');
  assert.equal(created.activity_id, 1);
  assert.equal(created.type_uid, 600301);
});

test('usage errors exit 2; a missing database exits 1 without creating one', async () => {
  assert.equal((await run(['frobnicate'])).code, 2);
  assert.equal((await run(['query', '--bogus'])).code, 2);
  assert.equal((await run(['export', '--format', 'xml', '--data-dir', '/nonexistent'])).code, 2);
  const missing = await run(['verify', '--data-dir', '/tmp/gatehouse-no-such-dir-for-audit']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /no database at/);
});

test('--config selects the sqlite path from storage.sqlite.path', async () => {
  const dir = await incidentLog();
  const cfg = join(dir, 'gatehouse.yaml');
  writeFileSync(
    cfg,
    `upstreams:\n  demo:\n    type: http\n    url: http://127.0.0.1/unused\nstorage:\n  sqlite:\n    path: ${join(dir, 'gatehouse.db')}\n`,
  );
  const r = await run([
    'query',
    '--config',
    cfg,
    '--data-dir',
    '/nonexistent',
    '--grant',
    'g-incident',
    '--json',
  ]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.trim().split('\n').length, 6);
});

test('parseTime: iso, epoch ms and durations ago', () => {
  assert.equal(parseTime('2026-03-01T10:00:00Z'), Date.parse('2026-03-01T10:00:00Z'));
  assert.equal(parseTime('1700000000000'), 1_700_000_000_000);
  assert.equal(parseTime('15m', 1_000_000_000), 1_000_000_000 - 900_000);
  assert.equal(parseTime('7d', 1_000_000_000), 1_000_000_000 - 7 * 86_400_000);
});
