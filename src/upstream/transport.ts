import type { GatehouseError } from '../errors.ts';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.ts';

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
  /** Tells the transport that the MCP handshake finished (HTTP opens its GET stream when `listen`). */
  initialized?(protocolVersion: string): void;
  /**
   * Whether the upstream may send messages outside any request (set by the link from the negotiated
   * capabilities before `initialized`). HTTP opens its optional standalone GET stream only then.
   */
  listen?: boolean;
  /** The gateway stopped waiting for the answer to request `id` (timeout, cancellation): free what carries it. */
  abandon?(id: JsonRpcId): void;
  close(): Promise<void>;
  /** Process id for stdio upstreams (observability and tests). */
  readonly pid?: number | undefined;
}
