import { GatehouseError } from '../errors.ts';
import type { HttpContext, Outcome } from '../pipeline/context.ts';
import { isSupportedVersion, MODERN_PROTOCOL_VERSION } from '../protocol/versions.ts';
import { unsupportedVersion } from '../rev2026/request.ts';

/**
 * Transport-level headers: Accept, Content-Type and MCP-Protocol-Version.
 * "If the server receives a request with an invalid or unsupported
 * MCP-Protocol-Version, it MUST respond with 400 Bad Request."
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#protocol-version-header
 */
export function checkProtocol(ctx: HttpContext): Outcome {
  const { req } = ctx;
  const accept = req.headers.accept ?? '';
  if (req.method === 'POST') {
    // "The client MUST include an Accept header, listing both application/json and text/event-stream."
    if (!acceptsAll(accept, ['application/json', 'text/event-stream']))
      return new GatehouseError('not_acceptable');
    const ctype = req.headers['content-type'] ?? '';
    if (!/^application\/json\s*(;|$)/i.test(ctype)) return new GatehouseError('unsupported_media_type');
  } else if (req.method === 'GET') {
    if (!acceptsAll(accept, ['text/event-stream'])) return new GatehouseError('not_acceptable');
  }
  const v = req.headers['mcp-protocol-version'];
  // A POST's version is checked by check-revision, once the body is read: the refusal then carries the
  // request's id (MCP 2026-07-28 requires it) and the versions supported.
  // MCP 2026-07-28 has no GET stream and no session to DELETE: "respond with 405 Method Not Allowed".
  if (v === MODERN_PROTOCOL_VERSION && req.method !== 'POST') {
    return new GatehouseError('method_not_allowed', `${req.method} is not part of MCP ${v}`, {
      headers: { allow: 'POST' },
    });
  }
  if (v !== undefined && req.method !== 'POST') {
    if (typeof v !== 'string' || !isSupportedVersion(v)) {
      return unsupportedVersion(String(v));
    }
  }
  return undefined;
}

function acceptsAll(accept: string, types: string[]): boolean {
  const lower = accept.toLowerCase();
  return lower.includes('*/*') || types.every((t) => lower.includes(t));
}
