import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  endSpan,
  gatehouseTracer,
  stageSpan,
  startCallSpan,
  TRACER_NAME,
} from '../../src/observability/tracing.ts';

function install(): { exporter: InMemorySpanExporter; provider: BasicTracerProvider } {
  trace.disable();
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  assert.ok(trace.setGlobalTracerProvider(provider));
  return { exporter, provider };
}

test('tracing: without a registered provider every helper is a no-op', () => {
  trace.disable();
  const span = startCallSpan('tools/call', { agent: 'a', tool: 't' });
  assert.equal(span.isRecording(), false);
  const child = stageSpan(span, 'authorize');
  assert.equal(child.isRecording(), false);
  endSpan(child, 'ok');
  endSpan(span, 'error', 'upstream_failed');
});

test('tracing: call span carries the gatehouse and mcp attributes; stage spans are its children', async () => {
  const { exporter, provider } = install();
  try {
    const call = startCallSpan('tools/call', {
      agent: 'agent-1',
      user: 'alice',
      tenant: 'acme',
      session: 's-1',
      grant: 'g-1',
      method: 'tools/call',
      tool: 'read_file',
      server: 'fs',
    });
    assert.equal(call.isRecording(), true);
    const st = stageSpan(call, 'authorize');
    endSpan(st, 'ok');
    endSpan(call, 'ok');
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 2);
    const [stage, parent] = spans;
    assert.ok(stage && parent);
    assert.equal(parent.name, 'tools/call');
    assert.equal(parent.kind, SpanKind.SERVER);
    assert.equal(parent.instrumentationScope.name, TRACER_NAME);
    assert.deepEqual(parent.attributes, {
      'gatehouse.agent': 'agent-1',
      'gatehouse.user': 'alice',
      'gatehouse.tenant': 'acme',
      'gatehouse.session': 's-1',
      'gatehouse.grant': 'g-1',
      'mcp.method': 'tools/call',
      'mcp.tool': 'read_file',
      'mcp.server': 'fs',
      'gatehouse.outcome': 'ok',
    });
    assert.equal(parent.status.code, SpanStatusCode.UNSET);
    assert.equal(stage.name, 'stage authorize');
    assert.equal(stage.kind, SpanKind.INTERNAL);
    assert.equal(stage.attributes['gatehouse.stage'], 'authorize');
    assert.equal(stage.spanContext().traceId, parent.spanContext().traceId);
    assert.equal(stage.parentSpanContext?.spanId, parent.spanContext().spanId);
  } finally {
    trace.disable();
  }
});

test('tracing: outcomes set status and error.type; undefined attributes are left out; parent option', async () => {
  const { exporter, provider } = install();
  try {
    const root = startCallSpan('outer', {}, { kind: SpanKind.INTERNAL });
    const failed = startCallSpan(
      'tools/call',
      { agent: 'a', user: undefined, tool: 't' },
      { parent: trace.setSpan(ROOT_CONTEXT, root) },
    );
    endSpan(failed, 'error', 'upstream_timeout');
    const denied = startCallSpan('tools/call', { agent: 'a' });
    endSpan(denied, 'rejected', 'policy_denied');
    endSpan(root, 'ok');
    await provider.forceFlush();
    const [f, d, r] = exporter.getFinishedSpans();
    assert.ok(f && d && r);
    assert.deepEqual(f.attributes, {
      'gatehouse.agent': 'a',
      'mcp.tool': 't',
      'gatehouse.outcome': 'error',
      'error.type': 'upstream_timeout',
    });
    assert.deepEqual(f.status, { code: SpanStatusCode.ERROR, message: 'upstream_timeout' });
    assert.equal(f.parentSpanContext?.spanId, r.spanContext().spanId);
    assert.equal(r.kind, SpanKind.INTERNAL);
    assert.equal(d.attributes['gatehouse.outcome'], 'rejected');
    assert.equal(d.attributes['error.type'], 'policy_denied');
    assert.equal(d.status.code, SpanStatusCode.UNSET);
    assert.equal(d.parentSpanContext, undefined);
  } finally {
    trace.disable();
  }
});

test('tracing: the cached tracer follows a provider registered later or replaced', async () => {
  trace.disable();
  const before = gatehouseTracer();
  assert.equal(before.startSpan('x').isRecording(), false);
  const { exporter, provider } = install();
  try {
    endSpan(startCallSpan('a', {}), 'ok');
    await provider.forceFlush();
    assert.equal(exporter.getFinishedSpans().length, 1);
  } finally {
    trace.disable();
  }
  const second = install();
  try {
    endSpan(startCallSpan('b', {}), 'ok');
    await second.provider.forceFlush();
    assert.deepEqual(
      second.exporter.getFinishedSpans().map((s) => s.name),
      ['b'],
    );
  } finally {
    trace.disable();
  }
});
