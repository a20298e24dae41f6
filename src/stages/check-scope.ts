import type { HttpContext, Outcome } from '../pipeline/context.ts';

/**
 * Scope per JSON-RPC method and per tool, decided at the HTTP layer: the MCP
 * SDK client only steps up on an HTTP 403 with
 * `WWW-Authenticate: Bearer error="insufficient_scope", scope=…` (T04).
 */
export function checkScope(ctx: HttpContext): Outcome {
  const principal = ctx.principal;
  if (!principal) return undefined; // authenticate runs first; ANONYMOUS when auth.mode is none
  for (const m of ctx.messages) {
    if (m.kind === 'request') ctx.gw.auth.checkScopes(principal, m.msg.method, m.msg.params);
  }
  return undefined;
}
