/**
 * The answer to one POST that carried requests. The reply format is chosen
 * late: when the first message for this POST is the (only) response, it goes
 * back as `application/json` (the fast path); when a related notification or
 * server-to-client request comes first (progress, logging, elicitation), the
 * reply becomes an SSE stream and stays one.
 */
import type { ServerResponse } from 'node:http';
import { idKey, type JsonRpcId, type JsonRpcMessage } from '../protocol/jsonrpc.ts';
import type { SseStream } from './sse.ts';

export class PostExchange {
  private readonly expected = new Set<string>();
  private stream: SseStream | undefined;
  private jsonSent = false;
  /** HTTP status of a JSON answer: 200, or the error's status when the exchange refused its session. */
  private status = 200;
  /** Responses collected for a 2025-03-26 batch answered as JSON. */
  private readonly batch: string[] | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string>,
    private readonly openStream: () => SseStream,
    isBatch: boolean,
    /** MCP 2026-07-28: the client's id of the one request, which travels under a gateway id. */
    private readonly clientId?: JsonRpcId,
  ) {
    this.batch = isBatch ? [] : undefined;
  }

  expect(id: JsonRpcId): void {
    this.expected.add(idKey(id));
  }

  /** True while a response is still owed. */
  get open(): boolean {
    return this.expected.size > 0;
  }

  /** Sends a message that belongs to this POST. `json` is the serialised message. */
  deliver(msg: JsonRpcMessage, json: string): void {
    const isResponse = !('method' in msg);
    if (isResponse) {
      const id = (msg as { id: JsonRpcId | null }).id;
      if (id !== null) this.expected.delete(idKey(id));
      if (this.clientId !== undefined) json = JSON.stringify({ ...msg, id: this.clientId });
    }
    if (this.jsonSent) return;
    if (!this.stream && isResponse) {
      if (this.batch) {
        this.batch.push(json);
        if (this.expected.size === 0) this.sendJson(`[${this.batch.join(',')}]`);
        return;
      }
      if (this.expected.size === 0) {
        this.sendJson(json);
        return;
      }
    }
    if (!this.stream) {
      this.stream = this.openStream();
      this.stream.attach(this.res, this.headers);
      if (this.batch) for (const j of this.batch.splice(0)) this.stream.write(j);
    }
    this.stream.write(json);
    if (this.expected.size === 0) this.stream.finish();
  }

  /**
   * The POST was an initialize that failed: the session it would have opened does not exist, so the
   * answer carries no Mcp-Session-Id and the error's HTTP status (503 at capacity, 502 without an
   * upstream), not 200. No effect once the reply has started.
   */
  refuseSession(httpStatus: number): void {
    if (this.jsonSent || this.stream) return;
    this.status = httpStatus;
    delete this.headers['mcp-session-id'];
  }

  /** The HTTP status of a JSON answer not yet sent (MCP 2026-07-28: -32021 is HTTP 400). */
  setStatus(httpStatus: number): void {
    if (this.jsonSent || this.stream) return;
    this.status = httpStatus;
  }

  /** A request that will not be answered (cancelled by the client). */
  abandon(id: JsonRpcId): void {
    this.expected.delete(idKey(id));
    if (this.expected.size > 0 || this.jsonSent) return;
    if (this.stream) this.stream.finish();
    else if (this.batch && this.batch.length > 0) this.sendJson(`[${this.batch.join(',')}]`);
    else {
      this.jsonSent = true;
      if (!this.res.destroyed) this.res.writeHead(202, this.headers).end();
    }
  }

  private sendJson(body: string): void {
    this.jsonSent = true;
    if (this.res.destroyed) return;
    this.res.writeHead(this.status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      ...this.headers,
    });
    this.res.end(body);
  }
}
