/**
 * Observability wired into the gateway: with tracing on, one span per call
 * carrying principal and grant, with a child span for the write-ahead audit
 * stage; audit events exported as OTLP/HTTP logs; /metrics has the stage
 * histogram and calls by server, tool and decision.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type RecordingUpstream, startRecordingUpstream } from '../fixtures/recording-upstream.ts';
import { connectClient, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const spans = new InMemorySpanExporter();
const bodies: {
  resourceLogs: { scopeLogs: { logRecords: { body: unknown; attributes: unknown[] }[] }[] }[];
}[] = [];
let collectorUrl = '';
const collector = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    bodies.push(JSON.parse(Buffer.concat(chunks).toString()));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
let upstream: RecordingUpstream;
let gw: TestGateway;

before(async () => {
  trace.disable();
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
  );
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', () => r()));
  collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  upstream = await startRecordingUpstream();
  gw = await startTestGateway({
    upstreams: { up: { type: 'http', url: upstream.url } },
    observability: { tracing: true, otlpLogsEndpoint: collectorUrl },
  });
});

after(async () => {
  await gw.close();
  await upstream.close();
  collector.close();
  trace.disable();
});

test('T27 tracing on: one span per call with principal and grant, a child span per pipeline stage', async () => {
  const c = await connectClient(gw.url);
  await c.callTool({ name: 'up__echo', arguments: { text: 'traced' } });
  await c.close();
  const call = spans.getFinishedSpans().find((s) => s.name === 'tools/call');
  assert.ok(call, 'a call span');
  assert.equal(call.attributes['mcp.tool'], 'up__echo');
  assert.equal(call.attributes['mcp.server'], 'up');
  assert.equal(typeof call.attributes['gatehouse.agent'], 'string');
  assert.match(String(call.attributes['gatehouse.grant']), /^gr_/, 'the grant id, not the session id');
  assert.notEqual(call.attributes['gatehouse.grant'], call.attributes['gatehouse.session']);
  assert.equal(call.attributes['gatehouse.outcome'], 'ok');
  const children = spans
    .getFinishedSpans()
    .filter((s) => s.parentSpanContext?.spanId === call.spanContext().spanId)
    .map((s) => s.name);
  for (const stage of [
    'authenticate',
    'resolve-session',
    'check-scope',
    'route-message',
    'authorize',
    'record-intent',
    'forward-message',
  ])
    assert.ok(children.includes(`stage ${stage}`), `a child span for ${stage}: ${children.join(', ')}`);
});

test('audit events are exported as OTLP logs once written', async () => {
  const c = await connectClient(gw.url);
  await c.callTool({ name: 'up__echo', arguments: { text: 'exported' } });
  await c.close();
  const deadline = Date.now() + 5000;
  const text = (): string => JSON.stringify(bodies);
  while (!text().includes('exported') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.match(text(), /call\.attempted/);
  assert.match(text(), /call\.completed/);
  assert.match(text(), /exported/, 'the redacted arguments travel with the event');
});

test('/metrics: latency of every pipeline stage and calls by server, tool and decision', async () => {
  const res = await fetch(new URL('/metrics', gw.url));
  const body = await res.text();
  for (const stage of ['authenticate', 'resolve-session', 'authorize', 'record-intent', 'forward-message'])
    assert.match(
      body,
      new RegExp(`gatehouse_stage_duration_seconds_count\\{stage="${stage}"\\} [1-9]`),
      stage,
    );
  assert.match(
    body,
    /gatehouse_calls_total\{[^}]*server="up"[^}]*tool="up__echo"[^}]*decision="allow"[^}]*\} [1-9]/,
  );
  assert.match(body, /gatehouse_audit_events_total\{type="call.attempted"\} [1-9]/);
});
