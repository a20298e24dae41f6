import type { HttpContext, Outcome } from '../pipeline/context.ts';
import { checkModern, checkVersionHeader, speaksModern } from '../rev2026/request.ts';

/** Gateway ids for 2026-07-28 requests: independent requests may reuse an id, the pooled session may not. */
let nextFrontId = 0;

/**
 * Which revision a POST speaks, and for 2026-07-28 every rule of the request's own envelope, before
 * anything acts on it (src/rev2026/request.ts): the version header (unknown: 400 with the versions
 * supported), `_meta` (400, -32602), `Mcp-Method`/`Mcp-Name` against the body (400, -32020), removed
 * and unknown methods (404, -32601), no session id, no batch, no mixing of revisions. Refusals carry
 * the request's id. Policy is then decided from the body only: the headers were just proven equal to it.
 */
export function checkRevision(ctx: HttpContext): Outcome {
  const first = ctx.messages[0];
  if (!ctx.isBatch && first && first.kind === 'request') ctx.answerId = first.msg.id;
  const versionError = checkVersionHeader(ctx.req.headers);
  if (versionError) return versionError;
  if (!speaksModern(ctx.req.headers, ctx.messages)) {
    ctx.answerId = undefined;
    return undefined;
  }
  const modern = checkModern(ctx.req.headers, ctx.messages, ctx.isBatch);
  if (!('clientCapabilities' in modern)) return modern;
  ctx.modern = modern;
  // The request travels under a gateway id; the exchange gives the client its own back.
  if (first?.kind === 'request') first.msg.id = `~m${++nextFrontId}`;
  return undefined;
}
