import { ANONYMOUS } from '../auth/resource-server.ts';
import type { HttpContext, Outcome } from '../pipeline/context.ts';

/**
 * Bearer token → Principal, on every request (MCP 2025-11-25 authorization:
 * "authorization MUST be included in every HTTP request from client to server").
 * 401 with `WWW-Authenticate: Bearer resource_metadata=…, scope=…` when missing
 * or invalid (T01, T02-03). The token itself is never forwarded anywhere.
 */
export function authenticate(ctx: HttpContext): Outcome | Promise<Outcome> {
  if (ctx.gw.auth.mode === 'none') {
    ctx.principal = ANONYMOUS;
    return undefined;
  }
  // Throws (runStages turns that into the refusal) or answers synchronously for a cached token.
  const principal = ctx.gw.auth.authenticate(ctx.req.headers.authorization);
  if (!(principal instanceof Promise)) {
    ctx.principal = principal;
    return undefined;
  }
  return principal.then((p) => {
    ctx.principal = p;
    return undefined;
  });
}
