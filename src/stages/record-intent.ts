import type { CallFacts, CallOutcome } from '../audit/recorder.ts';
import { GatehouseError } from '../errors.ts';
import { endSpan, pastStageSpan, stageSpan, startCallSpan } from '../observability/tracing.ts';
import type { MessageContext, Outcome } from '../pipeline/context.ts';
import { idKey, type JsonRpcResponse } from '../protocol/jsonrpc.ts';
import { isListMethod } from '../protocol/lists.ts';
import type { Route } from '../session/router.ts';

/**
 * Write-ahead audit: the record that a call was allowed is durable before the
 * call is forwarded; its outcome is appended when the answer goes back (T27).
 * If the audit store cannot write, a tool call is refused (fail closed), and
 * so are reads when audit.failClosedForReads is set.
 */
export function recordIntent(ctx: MessageContext): Outcome | Promise<Outcome> {
  const { http, session, msg } = ctx;
  const recorder = http.gw.audit;
  const target = ctx.target;
  const principal = session.principal;
  if (!target || target.kind === 'local') {
    if (isListMethod(msg.method))
      recorder.listed(http.requestId, session.id, session.grant.id, principal, msg.method);
    return undefined;
  }
  const facts = callFacts(ctx, target);
  const started = Date.now();
  // Traces only when configured: the default path makes no span calls at all.
  const span = http.gw.config.observability.tracing
    ? startCallSpan(
        msg.method,
        {
          agent: principal.agent,
          user: principal.user,
          tenant: principal.tenant,
          session: session.id,
          grant: session.grant.id,
          method: msg.method,
          tool: facts.tool,
          server: target.server,
        },
        { startTime: http.stageLog?.[0]?.[1] },
      )
    : undefined;
  // The stages that already ran become child spans with their measured times (tracing only).
  const before = span ? [...(http.stageLog ?? []), ...(ctx.stageLog ?? [])] : [];
  if (span) for (const [name, start, end] of before) pastStageSpan(span, name, start, end);
  const intentSpan = span && stageSpan(span, 'record-intent');
  ctx.onDone = (res, bytes) => {
    const outcome = outcomeOf(res, bytes, started);
    recorder.completed(facts, outcome);
    if (span) {
      // Stages after the write-ahead (forward-message) have run by now.
      const later = (ctx.stageLog ?? []).slice(before.length - (http.stageLog?.length ?? 0));
      for (const [name, start, end] of later)
        if (name !== 'record-intent') pastStageSpan(span, name, start, end);
      endSpan(span, outcome.status === 'ok' ? 'ok' : 'error', outcome.errorCode);
    }
  };
  return recorder.intent(facts, ctx.decision ?? { effect: 'allow', policies: [] }).then(
    () => {
      if (intentSpan) endSpan(intentSpan, 'ok');
      return undefined;
    },
    (err: unknown) => {
      if (intentSpan) endSpan(intentSpan, 'error', 'audit_unavailable');
      if (msg.method !== 'tools/call' && !http.gw.config.audit.failClosedForReads) return undefined;
      ctx.onDone = undefined;
      if (span) endSpan(span, 'rejected', 'audit_unavailable');
      return new GatehouseError('audit_unavailable', undefined, {
        detail: err instanceof Error ? err.message : String(err),
      });
    },
  );
}

/** The audit facts of a routed call (also used by authorize for refusals). */
export function callFacts(ctx: MessageContext, target: Route): CallFacts {
  const { http, session, msg } = ctx;
  return {
    requestId: `${http.requestId}:${idKey(msg.id)}`,
    sessionId: session.id,
    grantId: session.grant.id,
    owner: session.grant.record.owner,
    principal: session.principal,
    method: msg.method,
    server: target.server,
    tool: msg.method === 'tools/call' ? target.target : undefined,
    args: msg.method === 'tools/call' ? (msg.params?.arguments ?? {}) : msg.params,
    requestBytes: http.body?.length,
    leases: ctx.leases,
  };
}

/** Members in canonical (sorted) order, so the audit writer serialises the record natively. */
function outcomeOf(res: JsonRpcResponse, bytes: number, started: number): CallOutcome {
  const latencyMs = Date.now() - started;
  if (res.error) {
    const data = res.error.data as { gatehouse?: string } | undefined;
    const code = data?.gatehouse ?? String(res.error.code);
    const status =
      code === 'upstream_timeout'
        ? 'timeout'
        : code === 'request_cancelled' || code === 'session_closed' || code === 'shutting_down'
          ? 'cancelled'
          : 'error';
    return { errorCode: code, latencyMs, responseBytes: bytes, status };
  }
  if (res.result?.isError === true)
    return { errorCode: 'tool_error', latencyMs, responseBytes: bytes, status: 'error' };
  return { latencyMs, responseBytes: bytes, status: 'ok' };
}
