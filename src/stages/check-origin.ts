import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../errors.ts';
import type { GatewayParts, HttpContext, Outcome } from '../pipeline/context.ts';

/**
 * DNS-rebinding protection. "Servers MUST validate the Origin header on all
 * incoming connections to prevent DNS rebinding attacks. If the Origin header
 * is present and invalid, servers MUST respond with HTTP 403 Forbidden."
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#security-warning
 * The Host header is checked too: a rebinding page's requests carry the
 * attacker's host name.
 */
export function checkOrigin(ctx: HttpContext): Outcome {
  // Cluster mode: a request forwarded by another replica (its hop MAC verified) was checked there,
  // against the Host and Origin it was sent with (src/cluster/route.ts).
  if (ctx.gw.cluster?.forwarded(ctx.req)) return undefined;
  return checkHostAndOrigin(ctx.gw, ctx.req);
}

/** Both halves, for a request on /mcp (also run by a replica before it forwards one). */
export function checkHostAndOrigin(gw: GatewayParts, req: IncomingMessage): GatehouseError | undefined {
  const hostError = checkHost(gw, req);
  if (hostError) return hostError;
  const origin = req.headers.origin;
  if (origin !== undefined && !gw.allowedOrigins.has(origin.toLowerCase())) {
    return new GatehouseError('origin_forbidden', undefined, { detail: `origin ${origin}` });
  }
  return undefined;
}

/** The Host half of the check, shared with the non-MCP paths (metadata, authorization server). */
export function checkHost(gw: GatewayParts, req: IncomingMessage): GatehouseError | undefined {
  const host = req.headers.host?.toLowerCase();
  if (!host || !gw.allowedHosts.has(host)) {
    return new GatehouseError('host_forbidden', undefined, { detail: `host ${host ?? '(none)'}` });
  }
  return undefined;
}
