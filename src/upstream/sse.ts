/**
 * Legacy HTTP+SSE upstream (protocol 2024-11-05), through the SDK's client
 * transport: rare, not on the hot path, and the SDK does it faithfully.
 * https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
 */
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedUpstreamConfig } from '../config/schema.ts';
import { GatehouseError } from '../errors.ts';
import { classify, type JsonRpcMessage } from '../protocol/jsonrpc.ts';
import type { UpstreamTransport } from './transport.ts';

export class SseTransport implements UpstreamTransport {
  onmessage: (msg: JsonRpcMessage) => void = () => {};
  onclose: (reason: GatehouseError) => void = () => {};
  private readonly inner: SSEClientTransport;
  private started: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly name: string,
    cfg: Extract<ResolvedUpstreamConfig, { type: 'sse' }>,
    credentialHeaders: () => Record<string, string> = () => ({}),
  ) {
    // INVARIANT: only operator-configured headers and brokered credentials; nothing from the client's request.
    const headers = (): Record<string, string> => ({ ...cfg.headers, ...credentialHeaders() });
    const withHeaders = (init: RequestInit | undefined): RequestInit => ({
      ...init,
      headers: { ...(init?.headers as Record<string, string>), ...headers() },
    });
    this.inner = new SSEClientTransport(new URL(cfg.url), {
      fetch: (url, init) => fetch(url, withHeaders(init)),
      eventSourceInit: { fetch: (url, init) => fetch(url, withHeaders(init)) },
    });
    this.inner.onmessage = (m: JSONRPCMessage) => {
      const c = classify(m);
      if (c.kind !== 'invalid') this.onmessage(c.msg);
    };
    this.inner.onclose = () =>
      this.end(new GatehouseError('upstream_failed', `upstream ${name} closed its stream`));
    this.inner.onerror = () => {
      // Errors surface as failed sends or a close.
    };
  }

  async send(msg: JsonRpcMessage): Promise<void> {
    if (this.closed) throw new GatehouseError('upstream_unavailable', `upstream ${this.name} is closed`);
    this.started ??= this.inner.start();
    try {
      await this.started;
      await this.inner.send(msg as JSONRPCMessage);
    } catch (err) {
      throw new GatehouseError('upstream_unavailable', `upstream ${this.name} is unreachable`, {
        detail: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private end(reason: GatehouseError): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose(reason);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inner.close().catch(() => {});
  }
}
