/**
 * T32 "audit made wrong by client input" and T27 "audit gaps" on the real writer, recorder and
 * files: values a client chooses (JSON-RPC ids, tool names, arguments, clientInfo, headers) must
 * give a record that is written, indexed exactly as written, found by `audit query`, and verified;
 * anonymous failures cannot grow the log one record per request; a torn last line is never silent.
 */
import assert from 'node:assert/strict';
import fs, { appendFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { mock, test } from 'node:test';
import pino from 'pino';
import { RawJson } from '../../src/audit/canonical.ts';
import { AuditRecorder } from '../../src/audit/recorder.ts';
import { ANONYMOUS } from '../../src/auth/resource-server.ts';
import { auditCommand } from '../../src/cli/audit.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { callEvent, openFixture } from './helpers.ts';

async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  const out: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  const code = await auditCommand(argv, { stdout, stderr: stdout });
  return { code, out: Buffer.concat(out).toString() };
}

function segmentFiles(dir: string): string[] {
  const seg = join(dir, 'audit');
  return readdirSync(seg)
    .filter((n) => n.endsWith('.log'))
    .sort()
    .map((n) => join(seg, n));
}

/** Stored events of a type, parsed from the index rows. */
async function stored(storage: SqliteStorage, type: string): Promise<Record<string, unknown>[]> {
  return (await storage.audit.query({ type })).map(
    (r) => (JSON.parse(r.body) as { event: Record<string, unknown> }).event,
  );
}

function nested(depth: number): unknown {
  return JSON.parse(`${'['.repeat(depth)}1${']'.repeat(depth)}`);
}

/** A log that keeps its lines, to assert what start-up said. */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => {
    for (const l of c.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

test('T32 a lone surrogate, NUL or line separator in a request id or tool name is indexed exactly as recorded: verify passes and query finds it', async () => {
  const f = await openFixture();
  const odd = ['r:s\ud800', 'r:s\udc00x', 'r:s\u0000', 'r:s\u2028\r\n', 'r:s\ud83d'];
  for (const [i, requestId] of odd.entries())
    await f.writer.appendTrusted(callEvent(i, { requestId, tool: `up__${requestId.slice(4)}` }));
  const r = await f.writer.verify();
  assert.ok(r.ok, JSON.stringify(r.breaks));
  for (const requestId of odd) {
    const rows = await f.storage.audit.query({ requestId });
    assert.equal(rows.length, 1, `query finds ${JSON.stringify(requestId)}`);
  }
  // The segment holds the escape (valid UTF-8), never a replacement character.
  const text = readFileSync(segmentFiles(f.dir)[0] ?? '', 'utf8');
  assert.ok(text.includes('"r:s\\ud800"'), 'lone surrogate written as its \\u escape');
  assert.ok(!text.includes('\ufffd'), 'nothing was replaced');
  // On the command line the escape, as the record spells it, finds the record.
  const q = await cli(['query', '--data-dir', f.dir, '--request', 'r:s\\ud800', '--json']);
  assert.equal(q.code, 0);
  assert.equal(q.out.trim().split('\n').filter(Boolean).length, 1, q.out);
  await f.writer.close();
  const v = await cli(['verify', '--data-dir', f.dir]);
  assert.equal(v.code, 0, v.out);
  await f.storage.close();
});

test('T32 arguments JSON cannot carry faithfully (non-finite numbers, 3000-deep nesting, bigint) are recorded normalised and flagged, never refused', async () => {
  const f = await openFixture({ redact: (s) => s.replaceAll('hunter2', '[REDACTED:pw]') });
  const hostile = [
    { n: Number.POSITIVE_INFINITY, m: Number.NEGATIVE_INFINITY, x: Number.NaN, pw: 'hunter2' },
    { deep: nested(3000) },
    { big: 10n ** 30n },
  ];
  for (const [i, args] of hostile.entries()) {
    const r = await f.writer.appendTrusted(callEvent(i, { requestId: `hostile-${i}`, args }));
    assert.equal(r.seq, i + 1);
  }
  const events = await stored(f.storage, 'call.attempted');
  const a0 = events[0]?.arguments as { normalised?: boolean; redacted: Record<string, unknown> };
  assert.equal(a0.normalised, true);
  assert.deepEqual(a0.redacted, { n: 'Infinity', m: '-Infinity', x: 'NaN', pw: '[REDACTED:pw]' });
  const a1 = events[1]?.arguments as { normalised?: boolean; redacted?: unknown; truncated?: boolean };
  assert.equal(a1.normalised, true);
  assert.match(JSON.stringify(a1.redacted), /nested deeper than/);
  const a2 = events[2]?.arguments as { redacted: Record<string, unknown> };
  assert.deepEqual(a2.redacted, { big: '1000000000000000000000000000000' });
  // Deterministic: the same hostile value digests the same way every time.
  const again = await f.writer.appendTrusted(callEvent(9, { requestId: 'again', args: hostile[0] }));
  const digests = (await stored(f.storage, 'call.attempted')).map(
    (e) => (e.arguments as { digest: string }).digest,
  );
  assert.equal(digests[3], digests[0]);
  assert.equal(again.seq, 4);
  const v = await f.writer.verify();
  assert.ok(v.ok, JSON.stringify(v.breaks));
  await f.writer.close();
  await f.storage.close();
});

test('T32 an event whose JSON is not well-formed fails its own append, never the batch it would have joined', async () => {
  const f = await openFixture();
  // A producer embedding non-canonical text: a raw lone surrogate would be written as U+FFFD.
  const bad = f.writer.appendTrusted({ type: 'admin.action', detail: { x: new RawJson('"\ud800"') } });
  const good = f.writer.appendTrusted(callEvent(1));
  await assert.rejects(bad, /not well-formed/);
  assert.equal((await good).seq, 1);
  const v = await f.writer.verify();
  assert.ok(v.ok, JSON.stringify(v.breaks));
  await f.writer.close();
  await f.storage.close();
});

test('T32 a __proto__ key in the arguments is kept in the redacted copy (it was dropped, hiding what was sent)', async () => {
  const f = await openFixture({ redact: (s) => s.replaceAll('hunter2', '[REDACTED:pw]') });
  const args = JSON.parse('{"__proto__":{"path":"/etc/shadow"},"mode":"hunter2"}') as unknown;
  await f.writer.appendTrusted(callEvent(1, { args }));
  const [e] = await stored(f.storage, 'call.attempted');
  assert.ok(e);
  const redacted = (e.arguments as { redacted: Record<string, unknown> }).redacted;
  assert.deepEqual(Object.keys(redacted).sort(), ['__proto__', 'mode']);
  assert.equal(JSON.stringify(redacted), '{"__proto__":{"path":"/etc/shadow"},"mode":"[REDACTED:pw]"}');
  await f.writer.close();
  await f.storage.close();
});

test('T32 client values the recorder copies (clientInfo, huge ids and names) cannot make a record fail or grow without bound', async () => {
  const f = await openFixture();
  const recorder = new AuditRecorder(f.writer, pino({ level: 'silent' }), createMetrics());
  const principal = { ...ANONYMOUS };
  recorder.sessionStarted('s-1', 'g-1', principal, { name: nested(3000), version: 'v'.repeat(1_000_000) });
  const huge = `up__${'x'.repeat(1_000_000)}`;
  const facts = {
    requestId: `req:s${'y'.repeat(1_000_000)}`,
    sessionId: 's-1',
    grantId: 'g-1',
    owner: undefined,
    principal,
    method: `odd/${'m'.repeat(100_000)}`,
    server: 'up',
    tool: huge,
    args: {},
    requestBytes: 1,
  };
  await recorder.intent(facts, { effect: 'allow', policies: ['p'] });
  recorder.completed(facts, { status: 'ok' });
  await recorder.stop();
  const [started] = await stored(f.storage, 'authn.success');
  assert.ok(started, 'the session start was recorded');
  const [attempted] = await stored(f.storage, 'call.attempted');
  assert.ok(attempted);
  for (const k of ['requestId', 'tool', 'method'] as const) {
    const v = String(attempted[k]);
    assert.ok(v.length <= 512, `${k} is clipped (${v.length})`);
    assert.match(v, /sha256:[0-9a-f]{16}/, `${k} keeps a digest of the whole value`);
  }
  const [completed] = await stored(f.storage, 'call.completed');
  assert.equal(completed?.requestId, attempted.requestId, 'outcome and intent still pair up');
  const storage = new SqliteStorage(f.dbPath);
  const bodies = await storage.audit.range(1, 100, 100);
  assert.ok(
    bodies.every((r) => r.body.length < 20_000),
    'no record carries the megabyte',
  );
  await storage.close();
  const v = await cli(['verify', '--data-dir', f.dir]);
  assert.equal(v.code, 0, v.out);
});

test('T32 anonymous authentication failures are one summary record per window and reason (count, samples), never one record each and never the token', async () => {
  const f = await openFixture();
  const recorder = new AuditRecorder(f.writer, pino({ level: 'silent' }), createMetrics(), {
    anonymousFailures: { windowSec: 3600, samples: 3 },
  });
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'attacker-kid' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ iss: 'https://evil.example', sub: 'x' })).toString(
    'base64url',
  );
  const token = `${header}.${payload}.c2lnbmF0dXJl`;
  for (let i = 0; i < 500; i++) {
    recorder.authFailed(`r-${i}`, 'invalid_token', 'invalid signature', undefined, {
      address: `10.0.${i % 7}.1`,
      userAgent: `flood/${'u'.repeat(1000)}`,
      authorization: `Bearer ${token}`,
    });
  }
  for (let i = 0; i < 20; i++)
    recorder.authFailed(`n-${i}`, 'unauthorized', undefined, undefined, { address: '10.9.9.9' });
  // Reasons the gateway never produces still stay bounded in memory.
  for (let i = 0; i < 200; i++) recorder.authFailed(`z-${i}`, 'invalid_token', `odd reason ${i}`, undefined);
  // An authenticated refusal keeps its own record.
  recorder.authFailed('scoped', 'insufficient_scope', 'needs mcp:admin', { ...ANONYMOUS, agent: 'agent-a' });
  await recorder.stop();
  const single = await stored(f.storage, 'authn.failure');
  assert.deepEqual(
    single.map((e) => e.requestId),
    ['scoped'],
    'only the authenticated refusal is an individual record',
  );
  const summaries = await stored(f.storage, 'authn.failure.summary');
  assert.ok(summaries.length <= 40, `bounded: ${summaries.length} summary records`);
  const total = summaries.reduce((n, e) => n + ((e.detail as { count: number }).count ?? 0), 0);
  assert.equal(total, 720, 'every failure is counted');
  const bad = summaries.find((e) => (e.detail as { reason?: string }).reason === 'invalid signature');
  assert.ok(bad);
  const d = bad.detail as {
    code: string;
    count: number;
    addresses: number;
    samples: {
      address: string;
      userAgent: string;
      requestId: string;
      tokenIss?: string;
      tokenKid?: string;
    }[];
  };
  assert.equal(d.code, 'invalid_token');
  assert.equal(d.count, 500);
  assert.equal(d.addresses, 7);
  assert.equal(d.samples.length, 3);
  const s = d.samples[0];
  assert.ok(s);
  assert.equal(s.address, '10.0.0.1');
  assert.ok(s.userAgent.length <= 128, 'user agent clipped');
  assert.match(s.tokenIss ?? '', /^[0-9a-f]{16}$/, 'the unverified issuer, hashed');
  assert.match(s.tokenKid ?? '', /^[0-9a-f]{16}$/);
  const all = (await f.storage.audit.range(1, 10_000, 10_000)).map((r) => r.body).join('\n');
  assert.ok(!all.includes(token) && !all.includes(header) && !all.includes(payload), 'never the token');
  assert.ok(!all.includes('evil.example') && !all.includes('attacker-kid'), 'never its unverified claims');
  await f.storage.close();
});

test('T27 a torn last line is a warning in verify (not BROKEN, never silent); start-up cuts it, logs what it cut and records the repair', async () => {
  const first = await openFixture();
  for (let i = 0; i < 5; i++) await first.writer.append(callEvent(i, { type: 'list' }));
  await first.storage.close(); // no close(): like a crash
  const [file] = segmentFiles(first.dir);
  assert.ok(file);
  const size = statSync(file).size;
  appendFileSync(file, '0123abcd {"event":{"type":"call.att'); // a write cut short
  const torn = 35;

  const v = await cli(['verify', '--data-dir', first.dir]);
  assert.equal(v.code, 0, v.out);
  assert.match(v.out, /^ok/);
  assert.match(v.out, new RegExp(`torn last line.*0000000000000001\\.log.*byte ${size}.*${torn} bytes`));
  const json = await cli(['verify', '--data-dir', first.dir, '--json']);
  const r = JSON.parse(json.out) as {
    ok: boolean;
    tornTails: { segment: string; offset: number; bytes: number }[];
  };
  assert.equal(r.ok, true);
  assert.deepEqual(r.tornTails, [{ segment: '0000000000000001.log', offset: size, bytes: torn }]);

  // Start-up on the same data dir.
  const second = await openFixture({}, first.dir);
  const { log, lines } = capture();
  const recorder = new AuditRecorder(second.writer, log, createMetrics());
  await recorder.recover(second.storage.audit);
  await recorder.stop();
  await new Promise((resolve) => setImmediate(resolve));
  const warn = lines.find((l) => l.msg === 'audit log: torn last line removed');
  assert.ok(warn, JSON.stringify(lines));
  assert.equal(warn.segment, '0000000000000001.log');
  assert.equal(warn.offset, size);
  assert.equal(warn.bytes, torn);
  const repairs = (await stored(second.storage, 'admin.action')).filter(
    (e) => (e.detail as { action?: string }).action === 'audit.torn_tail_removed',
  );
  assert.equal(repairs.length, 1);
  assert.deepEqual(
    { ...(repairs[0]?.detail as Record<string, unknown>), sha256: undefined },
    {
      action: 'audit.torn_tail_removed',
      segment: '0000000000000001.log',
      offset: size,
      bytes: torn,
      sha256: undefined,
    },
  );
  await second.storage.close();
  const after = await cli(['verify', '--data-dir', first.dir, '--json']);
  const r2 = JSON.parse(after.out) as { ok: boolean; tornTails: unknown[]; checked: number };
  assert.equal(r2.ok, true);
  assert.deepEqual(r2.tornTails, []);
  assert.equal(r2.checked, 7, '5 records, the repair, the clean stop');
});

test('T27 a write cut short (disk full) leaves no partial line for the next record to land on', async () => {
  const f = await openFixture();
  await f.writer.append(callEvent(0));
  const real = fs.writeSync;
  let failures = 1;
  // ENOSPC after half the batch reached the file: what a full disk does to a write().
  mock.method(fs, 'writeSync', (fd: number, buf: Buffer, offset?: number) => {
    if (failures > 0 && Buffer.isBuffer(buf) && buf.length > 100) {
      failures--;
      real(fd, buf, offset ?? 0, Math.floor((buf.length - (offset ?? 0)) / 2));
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }
    return real(fd, buf, offset ?? 0);
  });
  syncBuiltinESMExports();
  try {
    await assert.rejects(f.writer.append(callEvent(1)), /no space left/);
  } finally {
    mock.restoreAll();
    syncBuiltinESMExports();
  }
  const next = await f.writer.append(callEvent(2));
  assert.equal(next.seq, 2, 'the failed record never counted');
  const r = await f.writer.verify();
  assert.ok(r.ok, JSON.stringify(r.breaks));
  assert.deepEqual(r.tornTails, []);
  await f.writer.close();
  await f.storage.close();
});

test('T32 audit query --tool finds namespaced tools (server__tool) and plain names, as stored by the gateway and by older records', async () => {
  const f = await openFixture();
  // The gateway stores the name the agent called (`up__echo`); older records the upstream's (`drop`).
  await f.writer.append(callEvent(1, { server: 'up', tool: 'up__echo' }));
  await f.writer.append(callEvent(2, { server: 'db', tool: 'drop' }));
  await f.writer.append(callEvent(3, { server: 'plain', tool: 'echo' })); // a `namespace: false` upstream
  await f.writer.close();
  const count = async (...args: string[]): Promise<number> => {
    const q = await cli(['query', '--data-dir', f.dir, '--json', ...args]);
    assert.equal(q.code, 0, q.out);
    return q.out.trim().split('\n').filter(Boolean).length;
  };
  assert.equal(await count('--tool', 'up__echo'), 1, 'namespaced, as stored');
  assert.equal(await count('--tool', 'echo'), 2, 'plain name on any server');
  assert.equal(await count('--tool', 'db__drop'), 1, 'namespaced, stored plain');
  assert.equal(await count('--tool', 'drop'), 1);
  assert.equal(await count('--tool', 'echo', '--server', 'up'), 1);
  assert.equal(await count('--tool', 'nosuch__echo'), 0);
  await f.storage.close();
});
