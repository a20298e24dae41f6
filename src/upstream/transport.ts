import type { GatehouseError } from '../errors.ts';
import type { JsonRpcMessage } from '../protocol/jsonrpc.ts';

/**
 * A message pipe to one upstream MCP server for one session. Implementations
 * parse the wire format and deliver classified messages; they do not know about
 * ids, routing or sessions.
 */
export interface UpstreamTransport {
  /**
   * Sends one message. Resolves when the upstream has accepted it, so callers
   * can order a notification before what follows (ORDER: a client's
   * `notifications/initialized` must reach the upstream before its next request).
   * Rejections are GatehouseErrors.
   */
  send(msg: JsonRpcMessage): Promise<void>;
  /** Called for every message from the upstream. */
  onmessage: (msg: JsonRpcMessage) => void;
  /** Called once when the transport ends for a reason other than close(). */
  onclose: (reason: GatehouseError) => void;
  /** Called when an oversized message was discarded; `id` when it could be recovered (stdio). */
  onoversize?: (id: string | number | undefined) => void;
  /** Tells the transport that the MCP handshake finished (HTTP opens its GET stream). */
  initialized?(protocolVersion: string): void;
  close(): Promise<void>;
  /** Process id for stdio upstreams (observability and tests). */
  readonly pid?: number | undefined;
}
