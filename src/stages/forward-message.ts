import { canonicalDigest } from '../audit/canonical.ts';
import { GatehouseError, toGatehouseError } from '../errors.ts';
import type { MessageContext, Outcome } from '../pipeline/context.ts';
import type { JsonRpcResponse } from '../protocol/jsonrpc.ts';
import { isListMethod } from '../protocol/lists.ts';
import { resume, upstreamParams } from '../rev2026/mrtr.ts';
import type { FrontCall } from '../session/session.ts';
import { visibleTo } from './authorize.ts';

/**
 * Sends the request to its upstream (or to the gateway's own handler) and
 * registers it so the response phase can answer it. Never blocks on the answer.
 */
export function forwardMessage(ctx: MessageContext): Outcome {
  const { session, msg, exchange } = ctx;
  const target = ctx.target;
  if (!target) return new GatehouseError('internal', undefined, { detail: 'forward without a target' });
  const meta = msg.params?._meta as Record<string, unknown> | undefined;
  const token = meta?.progressToken;
  // MCP 2026-07-28 (src/rev2026/mrtr.ts): what the request declared rides on its call; a retry with
  // requestState continues the held call instead of starting one.
  const front = ctx.http.modern;
  const modern =
    session.modern && front && target.kind === 'upstream'
      ? {
          capabilities: front.clientCapabilities,
          logLevel: front.logLevel,
          name: target.target ?? '',
          digest: canonicalDigest(msg.params?.arguments ?? null),
          approval: ctx.decision?.approval,
        }
      : undefined;
  if (modern && msg.params?.requestState !== undefined) {
    return resume(session, msg, exchange, ctx.onDone, modern);
  }
  const call: FrontCall = {
    id: msg.id,
    method: msg.method,
    exchange,
    link: undefined,
    upstreamId: undefined,
    timer: undefined,
    timeoutMs: 0,
    progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
    target: target.kind === 'upstream' ? target.target : undefined,
    tool:
      msg.method === 'tools/call' && target.kind === 'upstream' && typeof target.params?.name === 'string'
        ? target.params.name
        : undefined,
    started: Date.now(),
    onDone: ctx.onDone,
    modern,
  };
  session.registerCall(call);
  if (target.kind === 'local') {
    const done = answerLocally(ctx, call);
    // ORDER: messages that follow initialize (notifications/initialized) wait for it.
    if (msg.method === 'initialize') session.ready = done;
    return undefined;
  }
  const link = session.links.get(target.server);
  if (!link) return new GatehouseError('upstream_unavailable');
  call.link = link;
  call.timeoutMs = ctx.http.gw.router.timeoutFor(target.server);
  const params = modern ? upstreamParams(target.params) : target.params;
  call.upstreamId = link.forward(msg.method, params, (res) => session.answer(call, res));
  session.armTimeout(call);
  return undefined;
}

async function answerLocally(ctx: MessageContext, call: FrontCall): Promise<void> {
  const { session, msg } = ctx;
  const router = ctx.http.gw.router;
  let response: JsonRpcResponse;
  let failed: ReturnType<typeof toGatehouseError> | undefined;
  try {
    let result: Record<string, unknown>;
    if (msg.method === 'initialize') {
      result = await router.initialize(session, msg, ctx.http.gw.registry.linkEvents(session));
      ctx.http.gw.registry.initialized(session);
    } else if (msg.method === 'server/discover' && session.modern)
      result = await ctx.http.gw.stateless.discover(session);
    else if (msg.method === 'ping') result = {};
    else if (msg.method === 'logging/setLevel') result = await router.setLogLevel(session, msg.params);
    else if (isListMethod(msg.method))
      result = await router.list(session, msg.method, msg.params, visibleTo(ctx, msg.method));
    else throw new GatehouseError('method_not_found');
    response = { jsonrpc: '2.0', id: msg.id, result };
  } catch (err) {
    const e = toGatehouseError(err);
    if (e.code === 'internal') ctx.http.log.error({ err: e.detail }, 'local handler failed');
    failed = e;
    response = { jsonrpc: '2.0', id: msg.id, error: e.toJsonRpcError() };
  }
  if (failed && msg.method === 'initialize') ctx.exchange.refuseSession(failed.httpStatus);
  session.answer(call, response);
  // ORDER: answer first, then end the half-made session (ending it would answer with session_closed).
  if (failed && msg.method === 'initialize') void ctx.http.gw.registry.end(session, failed);
}
