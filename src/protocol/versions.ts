/**
 * MCP protocol revisions the gateway speaks to clients.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#protocol-version-header
 */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-03-26', '2025-06-18', '2025-11-25'] as const;
export type ProtocolVersion = (typeof SUPPORTED_PROTOCOL_VERSIONS)[number];
export const LATEST_PROTOCOL_VERSION: ProtocolVersion = '2025-11-25';
/**
 * "If the server does not receive an MCP-Protocol-Version header, and has no other
 * way to identify the version [...] the server SHOULD assume protocol version 2025-03-26."
 */
export const ASSUMED_PROTOCOL_VERSION: ProtocolVersion = '2025-03-26';

export function isSupportedVersion(v: string): v is ProtocolVersion {
  return (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(v);
}

/** Revisions that still allow JSON-RPC batches (removed in 2025-06-18). */
export function allowsBatch(v: ProtocolVersion): boolean {
  return v === '2025-03-26';
}

/** 2025-11-25 SSE polling: priming events (an event id with empty data) are understood. */
export function supportsPriming(v: ProtocolVersion): boolean {
  return v >= '2025-11-25';
}

/**
 * MCP 2026-07-28 ("modern": every request carries its version and capabilities in `_meta`, no
 * initialize, no session). Served statelessly on the same /mcp and translated to the 2025-11-25
 * upstream sessions (src/rev2026/, docs/protocol.md).
 */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';

/** Every revision a client may name, newest first (UnsupportedProtocolVersionError data.supported). */
export const FRONT_PROTOCOL_VERSIONS: readonly string[] = [
  MODERN_PROTOCOL_VERSION,
  ...[...SUPPORTED_PROTOCOL_VERSIONS].reverse(),
];
