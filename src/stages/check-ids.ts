import { GatehouseError } from '../errors.ts';
import type { HttpContext, Outcome } from '../pipeline/context.ts';
import { clip } from '../util/clip.ts';

/**
 * JSON-RPC id semantics on one session (docs/architecture.md, "JSON-RPC at the edge"): every request
 * gets exactly one response, so
 * - a request whose id is already in flight on the session is refused (`invalid_request`) instead of
 *   replacing the first, which would then never be answered;
 * - a response from the client must answer a server-to-client request this session sent; one that
 *   names an id the gateway never issued is refused (HTTP 400), one that comes late (already answered
 *   or cancelled) is accepted and dropped.
 * Then the POST's request ids are claimed, until their response. Checking and claiming happen in one
 * synchronous step, so two concurrent POSTs cannot both pass with one id.
 */
export function checkIds(ctx: HttpContext): Outcome {
  const session = ctx.session;
  if (!session) return undefined;
  for (const m of ctx.messages) {
    if (m.kind === 'request' && session.isOpen(m.msg.id)) {
      if (!ctx.isBatch) ctx.answerId = m.msg.id;
      return new GatehouseError(
        'invalid_request',
        `request id ${clip(JSON.stringify(m.msg.id), 64)} is already in flight on this session`,
      );
    }
    if (m.kind === 'response' && !session.issuedOutgoing(m.msg.id)) {
      ctx.answerId = null;
      return new GatehouseError(
        'invalid_request',
        `no server-to-client request of this session has id ${clip(JSON.stringify(m.msg.id), 64)}`,
      );
    }
  }
  const requests = ctx.messages.filter((m) => m.kind === 'request').length;
  const max = ctx.gw.config.limits.maxCallsInFlightPerGrant;
  if (requests > 0 && session.grant.inflight + requests > max) {
    return new GatehouseError(
      'capacity_exceeded',
      `this grant has ${session.grant.inflight} requests in flight (limits.maxCallsInFlightPerGrant ${max}); retry when some finish`,
    );
  }
  for (const m of ctx.messages) if (m.kind === 'request') session.claim(m.msg.id);
  return undefined;
}
