import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { type AuditEvent, validateAuditEvent } from '../../src/audit/index.ts';
import { createOtlpAuditExporter, toAnyValue } from '../../src/observability/otlp.ts';

// ---------------------------------------------------------------------------
// A fake OTLP/HTTP collector: validates each ExportLogsServiceRequest against
// the OTLP JSON encoding rules (lowerCamelCase fields, int64 as decimal
// strings, AnyValue with exactly one member) and records decoded log records.

type Decoded = string | boolean | number | null | Decoded[] | { [k: string]: Decoded };

interface Received {
  resource: Record<string, Decoded>;
  scope: string;
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: Decoded;
  eventName: string;
  attributes: Record<string, Decoded>;
}

interface Collector {
  port: number;
  records: Received[];
  requests: { headers: IncomingHttpHeaders; count: number }[];
  /** Answers for the next requests (status, headers, body); then 200 `{}`. */
  script: { status: number; headers?: Record<string, string>; body?: string }[];
  errors: string[];
  close(): Promise<void>;
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: expected object`);
  return v as Record<string, unknown>;
}

function arr(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${where}: expected array`);
  return v;
}

function int64(v: unknown, where: string): string {
  if (typeof v !== 'string' || !/^(0|-?[1-9][0-9]*)$/.test(v))
    throw new Error(`${where}: expected int64 string`);
  return v;
}

function anyValue(v: unknown, where: string): Decoded {
  const o = obj(v, where);
  const keys = Object.keys(o);
  if (keys.length !== 1)
    throw new Error(`${where}: AnyValue needs exactly one member, got ${keys.join(',')}`);
  const [k] = keys;
  const x = o[k as string];
  switch (k) {
    case 'stringValue':
      if (typeof x !== 'string') throw new Error(`${where}: stringValue`);
      return x;
    case 'boolValue':
      if (typeof x !== 'boolean') throw new Error(`${where}: boolValue`);
      return x;
    case 'intValue':
      return Number(int64(x, where));
    case 'doubleValue':
      if (typeof x !== 'number') throw new Error(`${where}: doubleValue`);
      return x;
    case 'arrayValue':
      return arr(obj(x, where).values, where).map((e, i) => anyValue(e, `${where}[${i}]`));
    case 'kvlistValue':
      return keyValues(obj(x, where).values, where);
    default:
      throw new Error(`${where}: unknown AnyValue member ${k}`);
  }
}

function keyValues(v: unknown, where: string): Record<string, Decoded> {
  const out: Record<string, Decoded> = {};
  for (const [i, kv] of arr(v, where).entries()) {
    const o = obj(kv, `${where}[${i}]`);
    if (typeof o.key !== 'string') throw new Error(`${where}[${i}]: key`);
    if (o.key in out) throw new Error(`${where}: duplicate key ${o.key}`);
    out[o.key] = anyValue(o.value, `${where}.${o.key}`);
  }
  return out;
}

function decodeRequest(json: unknown): Received[] {
  const out: Received[] = [];
  const req = obj(json, 'request');
  for (const [i, rl] of arr(req.resourceLogs, 'resourceLogs').entries()) {
    const r = obj(rl, `resourceLogs[${i}]`);
    const resource = keyValues(obj(r.resource, 'resource').attributes, 'resource.attributes');
    for (const sl of arr(r.scopeLogs, 'scopeLogs')) {
      const s = obj(sl, 'scopeLogs[]');
      const scope = obj(s.scope, 'scope');
      if (typeof scope.name !== 'string') throw new Error('scope.name');
      for (const lr of arr(s.logRecords, 'logRecords')) {
        const l = obj(lr, 'logRecord');
        const sev = l.severityNumber;
        if (typeof sev !== 'number' || !Number.isInteger(sev) || sev < 1 || sev > 24)
          throw new Error('severity');
        if (typeof l.severityText !== 'string' || typeof l.eventName !== 'string') throw new Error('texts');
        out.push({
          resource,
          scope: scope.name,
          timeUnixNano: int64(l.timeUnixNano, 'timeUnixNano'),
          observedTimeUnixNano: int64(l.observedTimeUnixNano, 'observedTimeUnixNano'),
          severityNumber: sev,
          severityText: l.severityText,
          body: anyValue(l.body, 'body'),
          eventName: l.eventName,
          attributes: keyValues(l.attributes, 'attributes'),
        });
      }
    }
  }
  return out;
}

async function startCollector(port = 0): Promise<Collector> {
  const c: Omit<Collector, 'port' | 'close'> = { records: [], requests: [], script: [], errors: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      try {
        if (req.method !== 'POST') throw new Error(`method ${req.method}`);
        if (req.url !== '/v1/logs') throw new Error(`path ${req.url}`);
        if (req.headers['content-type'] !== 'application/json') throw new Error('content-type');
        const next = c.script.shift();
        if (next && next.status !== 200) {
          res.writeHead(next.status, next.headers ?? {}).end(next.body ?? '');
          return;
        }
        const recs = decodeRequest(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        c.records.push(...recs);
        c.requests.push({ headers: req.headers, count: recs.length });
        res.writeHead(200, { 'content-type': 'application/json' }).end(next?.body ?? '{}');
      } catch (err) {
        c.errors.push(String(err));
        res.writeHead(400).end(JSON.stringify({ message: String(err) }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    ...c,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

let n = 0;
function event(over: Partial<AuditEvent> = {}): AuditEvent {
  n++;
  return validateAuditEvent({
    v: 1,
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    time: 1_700_000_000_123,
    type: 'call.completed',
    instance: 'gw-1',
    ...over,
  });
}

// ---------------------------------------------------------------------------

test('otlp: an audit event becomes one log record with the gatehouse fields as attributes', async () => {
  const col = await startCollector();
  const exp = createOtlpAuditExporter({
    endpoint: `http://127.0.0.1:${col.port}/`,
    headers: { 'x-api-key': 'k1' },
    serviceVersion: '0.1.0',
  });
  try {
    const e = event({
      requestId: 'r-1',
      grantId: 'g-1',
      sessionId: 's-1',
      principal: {
        agent: 'agent-1',
        user: 'alice',
        tenant: 'acme',
        actors: ['agent-1', 'orchestrator'],
        jti: 'j-1',
        authMethod: 'jwt',
      },
      server: 'fs',
      method: 'tools/call',
      tool: 'read_file',
      arguments: { digest: 'a'.repeat(64), redacted: { path: '/tmp/x', n: 2, deep: [true, null] } },
      decision: { effect: 'allow', policies: ['p1', 'p2'] },
      outcome: { status: 'error', errorCode: 'upstream_timeout', responseBytes: 10, latencyMs: 12.5 },
      findings: [{ rule: 'pi-1', severity: 'low', action: 'flagged' }],
      detail: { k: 'v' },
    });
    exp.export([e]);
    await exp.flush();
    assert.deepEqual(col.errors, []);
    assert.equal(col.records.length, 1);
    const [r] = col.records;
    assert.ok(r);
    assert.equal(col.requests[0]?.headers['x-api-key'], 'k1');
    assert.deepEqual(r.resource, {
      'service.name': 'gatehouse',
      'service.version': '0.1.0',
      'service.instance.id': 'gw-1',
    });
    assert.equal(r.scope, 'gatehouse.audit');
    assert.equal(r.body, 'call.completed');
    assert.equal(r.eventName, 'gatehouse.call.completed');
    assert.equal(r.timeUnixNano, '1700000000123000000');
    assert.equal(r.severityText, 'WARN'); // outcome not ok
    assert.equal(r.severityNumber, 13);
    assert.deepEqual(r.attributes, {
      'gatehouse.event.id': e.id,
      'gatehouse.event.type': 'call.completed',
      'gatehouse.schema': 1,
      'gatehouse.instance': 'gw-1',
      'gatehouse.request': 'r-1',
      'gatehouse.grant': 'g-1',
      'gatehouse.session': 's-1',
      'gatehouse.agent': 'agent-1',
      'gatehouse.user': 'alice',
      'gatehouse.tenant': 'acme',
      'gatehouse.actors': ['agent-1', 'orchestrator'],
      'gatehouse.jti': 'j-1',
      'gatehouse.auth_method': 'jwt',
      'mcp.server': 'fs',
      'mcp.method': 'tools/call',
      'mcp.tool': 'read_file',
      'gatehouse.arguments.digest': 'a'.repeat(64),
      'gatehouse.arguments.redacted': { path: '/tmp/x', n: 2, deep: [true, ''] },
      'gatehouse.decision': 'allow',
      'gatehouse.decision.policies': ['p1', 'p2'],
      'gatehouse.outcome': 'error',
      'error.type': 'upstream_timeout',
      'gatehouse.response_bytes': 10,
      'gatehouse.latency_ms': 12.5,
      'gatehouse.findings': [{ rule: 'pi-1', severity: 'low', action: 'flagged' }],
      'gatehouse.detail': { k: 'v' },
    });
    const info = event({ type: 'authn.success', principal: { agent: 'a' } });
    exp.export([info]);
    await exp.flush();
    assert.equal(col.records[1]?.severityText, 'INFO');
    assert.equal(col.records[1]?.severityNumber, 9);
  } finally {
    await exp.shutdown();
    await col.close();
  }
});

test('otlp: events are sent in batches, in order; an endpoint ending in /v1/logs is used as is', async () => {
  const col = await startCollector();
  const exp = createOtlpAuditExporter({
    endpoint: `http://127.0.0.1:${col.port}/v1/logs`,
    batchSize: 10,
    flushIntervalMs: 60_000,
  });
  try {
    const events = Array.from({ length: 25 }, () => event());
    exp.export(events.slice(0, 5));
    exp.export(events.slice(5));
    await exp.flush();
    assert.deepEqual(col.errors, []);
    assert.deepEqual(
      col.requests.map((r) => r.count),
      [10, 10, 5],
    );
    assert.deepEqual(
      col.records.map((r) => r.attributes['gatehouse.event.id']),
      events.map((e) => e.id),
    );
    assert.deepEqual(exp.stats(), { queued: 0, sent: 25, dropped: 0, failed: 0, retries: 0 });
  } finally {
    await exp.shutdown();
    await col.close();
  }
});

test('otlp: export never blocks or throws; a full batch or the interval starts a send', async () => {
  const col = await startCollector();
  const exp = createOtlpAuditExporter({
    endpoint: `http://127.0.0.1:${col.port}`,
    batchSize: 100,
    flushIntervalMs: 50,
  });
  try {
    const events = Array.from({ length: 100 }, () => event());
    exp.export(events);
    // Nothing was sent on the caller's stack.
    assert.equal(col.requests.length, 0);
    assert.equal(exp.stats().queued, 100);
    await until(() => col.records.length === 100);
    // A lone event goes out after flushIntervalMs without flush().
    exp.export([event()]);
    await until(() => col.records.length === 101);
    // An event that cannot be encoded is counted, not thrown.
    exp.export([{ ...event(), time: Number.NaN }]);
    assert.equal(exp.stats().failed, 1);
  } finally {
    await exp.shutdown();
    await col.close();
  }
});

test('otlp: collector down, then up: records are retried with backoff and delivered once, in order', async () => {
  const port = await freePort();
  const statuses: { ok: boolean; message: string }[] = [];
  const exp = createOtlpAuditExporter({
    endpoint: `http://127.0.0.1:${port}`,
    batchSize: 3,
    flushIntervalMs: 20,
    retryInitialMs: 20,
    retryMaxMs: 80,
    onStatus: (s) => statuses.push(s),
  });
  let col: Collector | undefined;
  try {
    const events = Array.from({ length: 7 }, () => event());
    exp.export(events);
    await until(() => exp.stats().retries >= 3);
    assert.equal(exp.stats().queued, 7);
    assert.equal(exp.stats().sent, 0);
    assert.equal(statuses.length, 1);
    assert.equal(statuses[0]?.ok, false);
    assert.match(statuses[0]?.message ?? '', /^otlp export failed: /);
    col = await startCollector(port);
    await until(() => exp.stats().sent === 7);
    assert.deepEqual(col.errors, []);
    assert.deepEqual(
      col.records.map((r) => r.attributes['gatehouse.event.id']),
      events.map((e) => e.id),
    );
    assert.deepEqual(statuses.at(-1), { ok: true, message: 'otlp export recovered' });
    assert.equal(exp.stats().queued, 0);
  } finally {
    await exp.shutdown();
    await col?.close();
  }
});

test('otlp: 503 and 429 are retried (Retry-After honoured), 400 is not; partial success counts rejects', async () => {
  const col = await startCollector();
  const exp = createOtlpAuditExporter({
    endpoint: `http://127.0.0.1:${col.port}`,
    batchSize: 2,
    flushIntervalMs: 20,
    retryInitialMs: 10,
    retryMaxMs: 50,
  });
  try {
    col.script.push({ status: 503, headers: { 'retry-after': '0' } }, { status: 429 });
    const a = [event(), event()];
    exp.export(a);
    await until(() => exp.stats().sent === 2);
    assert.equal(exp.stats().retries, 2);
    assert.deepEqual(
      col.records.map((r) => r.attributes['gatehouse.event.id']),
      a.map((e) => e.id),
    );

    col.script.push({ status: 400, body: '{"message":"bad"}' });
    exp.export([event(), event()]);
    await exp.flush();
    assert.equal(exp.stats().failed, 2);
    assert.equal(exp.stats().retries, 2);

    col.script.push({
      status: 200,
      body: '{"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"x"}}',
    });
    exp.export([event(), event()]);
    await exp.flush();
    assert.deepEqual(exp.stats(), { queued: 0, sent: 3, dropped: 0, failed: 3, retries: 2 });
    assert.equal(col.records.length, 4);
  } finally {
    await exp.shutdown();
    await col.close();
  }
});

test('otlp: the queue is bounded: the oldest records are dropped and counted', async () => {
  const port = await freePort();
  const exp = createOtlpAuditExporter({
    endpoint: `http://127.0.0.1:${port}`,
    batchSize: 100,
    maxQueue: 10,
    flushIntervalMs: 60_000,
    retryInitialMs: 60_000,
  });
  let col: Collector | undefined;
  try {
    const events = Array.from({ length: 25 }, () => event());
    exp.export(events);
    assert.deepEqual(exp.stats(), { queued: 10, sent: 0, dropped: 15, failed: 0, retries: 0 });
    // A flush while the collector is down resolves (one attempt), records stay queued.
    await exp.flush();
    assert.equal(exp.stats().retries, 1);
    assert.equal(exp.stats().queued, 10);
    // More events while the failed batch waits: the failed (older) ones go first.
    const more = Array.from({ length: 4 }, () => event());
    exp.export(more);
    assert.equal(exp.stats().dropped, 19);
    col = await startCollector(port);
    await exp.flush();
    assert.deepEqual(
      col.records.map((r) => r.attributes['gatehouse.event.id']),
      [...events.slice(19), ...more].map((e) => e.id),
    );
    assert.deepEqual(exp.stats(), { queued: 0, sent: 10, dropped: 19, failed: 0, retries: 1 });
  } finally {
    await exp.shutdown();
    await col?.close();
  }
});

test('otlp: shutdown makes a last flush; later exports are dropped', async () => {
  const col = await startCollector();
  const exp = createOtlpAuditExporter({ endpoint: `http://127.0.0.1:${col.port}`, flushIntervalMs: 60_000 });
  try {
    exp.export([event(), event(), event()]);
    await exp.shutdown();
    assert.equal(col.records.length, 3);
    exp.export([event()]);
    await exp.flush();
    assert.equal(col.records.length, 3);
    assert.equal(exp.stats().dropped, 1);
    await exp.shutdown();
  } finally {
    await col.close();
  }
});

test('otlp: options are validated with lower-case errors; AnyValue encoding', () => {
  assert.throws(
    () => createOtlpAuditExporter({ endpoint: 'not a url' }),
    /^Error: otlp endpoint is not a url/,
  );
  assert.throws(
    () => createOtlpAuditExporter({ endpoint: 'ftp://x' }),
    /otlp endpoint must be http or https/,
  );
  assert.throws(
    () => createOtlpAuditExporter({ endpoint: 'http://x', batchSize: 0 }),
    /batchSize must be a positive integer/,
  );
  assert.deepEqual(toAnyValue(2 ** 53), { doubleValue: 2 ** 53 });
  assert.deepEqual(toAnyValue(-3), { intValue: '-3' });
  assert.deepEqual(toAnyValue(0.5), { doubleValue: 0.5 });
  assert.deepEqual(toAnyValue({ a: undefined, b: [1] }), {
    kvlistValue: { values: [{ key: 'b', value: { arrayValue: { values: [{ intValue: '1' }] } } }] },
  });
});
