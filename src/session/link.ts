/**
 * One session's connection to one upstream server: JSON-RPC id mapping and the
 * table of requests waiting for an answer.
 *
 * INVARIANT: every request the gateway sends upstream carries an id allocated
 * here, so client ids, gateway-internal requests and several clients never
 * collide; responses are mapped back before anything else sees them.
 */
import { GatehouseError } from '../errors.ts';
import type {
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../protocol/jsonrpc.ts';
import type { UpstreamTransport } from '../upstream/transport.ts';

/** What waits for an upstream response. */
export type PendingEntry =
  | {
      kind: 'internal';
      resolve: (r: Record<string, unknown>) => void;
      reject: (e: GatehouseError) => void;
      timer: NodeJS.Timeout;
    }
  | { kind: 'front'; onResponse: (msg: JsonRpcResponse) => void };

export interface LinkEvents {
  /** A request initiated by the upstream (sampling, elicitation, roots, ping). */
  onRequest(link: UpstreamLink, msg: JsonRpcRequest): void;
  onNotification(link: UpstreamLink, msg: JsonRpcNotification): void;
  /** The transport ended; `pending` front requests were already failed. */
  onClosed(link: UpstreamLink, reason: GatehouseError): void;
}

export class UpstreamLink {
  private nextId = 1;
  private readonly pending = new Map<number, PendingEntry>();
  private dead: GatehouseError | undefined;
  /** Capabilities and info from the upstream's initialize result. */
  capabilities: Record<string, unknown> = {};
  instructions: string | undefined;
  protocolVersion: string | undefined;

  constructor(
    readonly server: string,
    readonly transport: UpstreamTransport,
    private readonly events: LinkEvents,
  ) {
    transport.onmessage = (m) => this.receive(m);
    transport.onclose = (reason) => this.fail(reason);
    transport.onoversize = (id) => {
      // T30: answer the request the oversized message was for; if unknown, the stream is unusable.
      const err = new GatehouseError('result_too_large');
      if (typeof id === 'number' && this.pending.has(id))
        this.settle({ jsonrpc: '2.0', id, error: err.toJsonRpcError() });
      else
        void this.close(
          new GatehouseError('upstream_failed', `upstream ${server} sent an oversized message`),
        );
    };
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  get deathReason(): GatehouseError | undefined {
    return this.dead;
  }

  /** Number of requests still waiting for the upstream. */
  get inflight(): number {
    return this.pending.size;
  }

  /** Sends a gateway-originated request and resolves with its result. */
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        void this.transport
          .send({
            jsonrpc: '2.0',
            method: 'notifications/cancelled',
            params: { requestId: id, reason: 'timeout' },
          })
          .catch(() => {});
        reject(
          new GatehouseError('upstream_timeout', `upstream ${this.server} did not answer ${method} in time`),
        );
      }, timeoutMs);
      this.pending.set(id, { kind: 'internal', resolve, reject, timer });
      const msg: JsonRpcRequest = { jsonrpc: '2.0', id, method };
      if (params) msg.params = params;
      this.transport.send(msg).catch((e: GatehouseError) => {
        if (this.pending.delete(id)) {
          clearTimeout(timer);
          reject(e);
        }
      });
    });
  }

  /**
   * Forwards a client request with a fresh upstream id; `onResponse` receives
   * the response with the upstream id (the caller restores the client's id).
   * Returns the upstream id, used to forward cancellations.
   */
  forward(
    method: string,
    params: Record<string, unknown> | undefined,
    onResponse: (msg: JsonRpcResponse) => void,
  ): number {
    const id = this.nextId++;
    if (this.dead) {
      const err = this.dead;
      queueMicrotask(() => onResponse({ jsonrpc: '2.0', id, error: err.toJsonRpcError() }));
      return id;
    }
    this.pending.set(id, { kind: 'front', onResponse });
    const msg: JsonRpcRequest = { jsonrpc: '2.0', id, method };
    if (params) msg.params = params;
    this.transport
      .send(msg)
      .catch((e: GatehouseError) => this.settle({ jsonrpc: '2.0', id, error: e.toJsonRpcError() }));
    return id;
  }

  /** Stops waiting for a forwarded request (timeout or cancellation); tells the upstream. */
  abandon(upstreamId: number, reason: string): boolean {
    if (!this.pending.delete(upstreamId)) return false;
    this.notify({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: upstreamId, reason },
    });
    return true;
  }

  /** Sends a notification or a response; resolves when the upstream accepted it. */
  notify(msg: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    return this.transport.send(msg);
  }

  private receive(msg: JsonRpcMessage): void {
    if ('method' in msg) {
      if ('id' in msg && msg.id !== undefined) this.events.onRequest(this, msg as JsonRpcRequest);
      else this.events.onNotification(this, msg);
      return;
    }
    this.settle(msg);
  }

  private settle(msg: JsonRpcResponse): void {
    if (typeof msg.id !== 'number') return; // not one of ours: ids we allocate are integers
    const entry = this.pending.get(msg.id);
    if (!entry) return; // late answer to an abandoned request
    this.pending.delete(msg.id);
    if (entry.kind === 'front') {
      entry.onResponse(msg);
      return;
    }
    clearTimeout(entry.timer);
    if (msg.error) {
      entry.reject(
        new GatehouseError('upstream_failed', `upstream ${this.server}: ${msg.error.message}`, {
          data: { upstreamCode: msg.error.code },
        }),
      );
    } else entry.resolve(msg.result ?? {});
  }

  /** Fails everything in flight with `reason` and marks the link dead. */
  fail(reason: GatehouseError): void {
    if (this.dead) return;
    this.dead = reason;
    const entries = [...this.pending.entries()];
    this.pending.clear();
    for (const [id, entry] of entries) {
      if (entry.kind === 'front') entry.onResponse({ jsonrpc: '2.0', id, error: reason.toJsonRpcError() });
      else {
        clearTimeout(entry.timer);
        entry.reject(reason);
      }
    }
    this.events.onClosed(this, reason);
  }

  /** Ends the link: answers in-flight requests with `reason` and closes the transport. */
  async close(reason: GatehouseError): Promise<void> {
    const wasAlive = !this.dead;
    if (wasAlive) {
      for (const [id, entry] of this.pending) {
        if (entry.kind === 'front') {
          void this.transport
            .send({
              jsonrpc: '2.0',
              method: 'notifications/cancelled',
              params: { requestId: id, reason: reason.message },
            })
            .catch(() => {});
        }
      }
    }
    this.fail(reason);
    await this.transport.close();
  }
}
