import { principalKey } from '../auth/principal.ts';
import { ANONYMOUS } from '../auth/resource-server.ts';
import { GatehouseError } from '../errors.ts';
import type { HttpContext, Outcome } from '../pipeline/context.ts';
import { allowsBatch } from '../protocol/versions.ts';
import type { ModernRequest } from '../rev2026/request.ts';

/**
 * Finds the session named by Mcp-Session-Id, or creates one for initialize.
 * "The server MAY terminate the session at any time, after which it MUST
 * respond to requests containing that session ID with HTTP 404 Not Found."
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#session-management
 */
export function resolveSession(ctx: HttpContext): Outcome | Promise<Outcome> {
  // MCP 2026-07-28: no session; the request runs under its token's grant (src/rev2026/front.ts).
  if (ctx.modern) return resolveStateless(ctx, ctx.modern);
  const sid = ctx.req.headers['mcp-session-id'];
  const init = ctx.messages.some((m) => m.kind === 'request' && m.msg.method === 'initialize');
  if (init) {
    if (sid !== undefined) return new GatehouseError('already_initialized');
    // "The initialization request MUST NOT be part of a JSON-RPC batch."
    if (ctx.isBatch) return new GatehouseError('invalid_request', 'initialize must not be part of a batch');
    const first = ctx.messages[0];
    const requested = first?.kind === 'request' ? first.msg.params?.protocolVersion : undefined;
    const created = ctx.gw.registry.create(ctx.gw.router.negotiate(requested), ctx.principal ?? ANONYMOUS);
    if (created instanceof GatehouseError) return created;
    ctx.session = created;
    return undefined;
  }
  if (typeof sid !== 'string' || sid.length === 0) return new GatehouseError('session_required');
  const session = ctx.gw.registry.get(sid);
  if (!session) return new GatehouseError('session_not_found');
  // T10-11: a session never authenticates anything; presented by another principal it does not exist.
  if (session.principalKey !== principalKey(ctx.principal ?? ANONYMOUS)) {
    return new GatehouseError('session_not_found', undefined, {
      detail: 'session id presented by another principal',
    });
  }
  // T10-11: a task token rides only sessions of its own grant; a task grant's session only with its token.
  const want = ctx.principal?.grantId;
  if (want !== undefined ? session.grant.id !== want : session.grant.record.kind === 'task') {
    return new GatehouseError('session_not_found', undefined, {
      detail: 'session id presented with a token of another grant',
    });
  }
  if (session.grant.ended) return new GatehouseError('grant_ended');
  // INVARIANT: the revision is fixed at initialize. A later MCP-Protocol-Version header is checked to be
  // a supported revision (check-protocol) but changes nothing: every revision-dependent rule (batches,
  // SSE priming) reads session.protocolVersion. Refusing a mismatch would refuse what the MCP SDK and the
  // conformance suite send (a 2025-03-26 header on a 2025-11-25 session).
  session.lastSeen = Date.now();
  session.grant.lastUsed = session.lastSeen;
  ctx.session = session;
  if (ctx.isBatch && !allowsBatch(session.protocolVersion)) {
    return new GatehouseError('batch_not_supported');
  }
  return undefined;
}

async function resolveStateless(ctx: HttpContext, modern: ModernRequest): Promise<Outcome> {
  const session = await ctx.gw.stateless.resolve(ctx.gw, ctx.principal ?? ANONYMOUS, modern);
  if (session instanceof GatehouseError) return session;
  ctx.session = session;
  return undefined;
}
