import { GatehouseError } from '../errors.ts';
import type { MessageContext, Outcome } from '../pipeline/context.ts';
import { isListMethod } from '../protocol/lists.ts';

/** Methods the gateway answers itself (lists are merged across upstreams). */
const LOCAL = new Set(['initialize', 'ping', 'logging/setLevel', 'server/discover']);

/**
 * Decides which upstream serves a request (T29: only configured upstreams are
 * ever reached; a name that no upstream offers is an error, never a guess).
 */
export function routeMessage(ctx: MessageContext): Outcome {
  const { method } = ctx.msg;
  if (LOCAL.has(method) || isListMethod(method)) {
    ctx.target = { kind: 'local' };
    return undefined;
  }
  if (ctx.session.links.size === 0) return new GatehouseError('upstream_unavailable');
  const route = ctx.http.gw.router.route(ctx.session, method, ctx.msg.params);
  const link = ctx.session.links.get(route.server);
  if (!link?.alive) {
    // The link says why: a revoked credential or an open breaker is named, not just "unavailable".
    return (
      link?.refusal ?? new GatehouseError('upstream_unavailable', `upstream ${route.server} is not available`)
    );
  }
  ctx.target = { kind: 'upstream', ...route };
  return undefined;
}
