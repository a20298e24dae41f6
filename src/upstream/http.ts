/**
 * Streamable HTTP upstream: a lean client with keep-alive. Request traffic (POSTs, resumed streams,
 * DELETE) goes through an undici `Pool` with raw dispatch handlers (about half the CPU per request of
 * node:http's client, measured in bench/README.md); the standalone GET stream, one long-lived socket
 * per session, stays on node:http.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#streamable-http
 *
 * Not the SDK's StreamableHTTPClientTransport: it shares one AbortSignal across
 * all its fetches and leaks an abort listener per request, and its per-call
 * cost is a large share of the gateway's budget. Every request here has its own
 * lifetime and can be destroyed on its own.
 */
import http from 'node:http';
import https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import type { Logger } from 'pino';
import { type Dispatcher, Pool } from 'undici';
import { GatehouseError } from '../errors.ts';
import { classify, type JsonRpcId, type JsonRpcMessage } from '../protocol/jsonrpc.ts';
import type { UpstreamTransport } from './transport.ts';

/**
 * Headers the gateway owns. Configured static headers cannot override them.
 * INVARIANT: no header of the client's request is ever copied upstream, so the
 * client's own token never leaves the gateway.
 */
const GATEWAY_HEADERS = new Set([
  'host',
  'content-length',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
]);

/**
 * Sockets for request traffic per upstream: enough for many concurrent calls, bounded so a burst cannot
 * exhaust file descriptors; beyond it requests wait in the pool's own queue (each for at most its call's
 * timeout: an abandoned call gives its socket back at once).
 */
const REQUEST_SOCKETS = 256;

/**
 * The sockets of one HTTP upstream, in two pools, so that long-lived streams can never starve request
 * traffic. With one shared pool of 256 sockets every session's standalone GET stream held one for
 * good, and at about 255 sessions every request to the upstream queued forever, old sessions' too.
 *
 * - `requests`: keep-alive, at most {@link REQUEST_SOCKETS}; POSTs, resumptions of a POST's stream and
 *   DELETEs. Each lives as long as one exchange.
 * - `streams`: the standalone GET streams, one socket each, never pooled or reused; how many there can
 *   be is bounded by `limits.maxSessionsPerUpstream` (one per upstream session at most).
 */
export class HttpPools {
  readonly requests: Pool;
  readonly streams: http.Agent;

  constructor(url: URL) {
    this.requests = new Pool(url.origin, {
      connections: REQUEST_SOCKETS,
      pipelining: 1,
      // A call has its own deadline (the session abandons it); a stream may stay quiet for long.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    const Agent = url.protocol === 'https:' ? https.Agent : http.Agent;
    this.streams = new Agent({ keepAlive: false });
  }

  /** Closes every socket (called when the upstream's manager stops). */
  destroy(): void {
    this.requests.destroy().catch(() => {});
    this.streams.destroy();
  }
}

/** One request on the request pool: abortable before it started and while it runs. */
interface Exchange {
  abort(): void;
}

/** What an exchange does with its response; `start` picks how the body is consumed. */
interface ResponseHandler {
  /** The status line and headers (after any 1xx). */
  start(status: number, headers: Record<string, string | string[] | undefined>, x: Exchange): BodyReader;
  /** The request failed before a response arrived (connect, reset, abort). */
  fail(err: Error): void;
}

/** How a response body is consumed. */
interface BodyReader {
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
}

const DISCARD: BodyReader = { data() {}, end() {}, error() {} };

/** The undici dispatch handler of one exchange (raw callbacks: no stream objects per request). */
class ExchangeHandler implements Dispatcher.DispatchHandler, Exchange {
  #controller: Dispatcher.DispatchController | undefined;
  #aborted = false;
  #reader: BodyReader | undefined;
  #done = false;

  constructor(
    private readonly handler: ResponseHandler,
    private readonly onSettled: (x: Exchange) => void,
  ) {}

  abort(): void {
    this.#aborted = true;
    this.#controller?.abort(new Error('request abandoned'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted) controller.abort(new Error('request abandoned'));
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (status < 200) return; // 1xx: informational
    // Set first: `start` may abort this exchange (the upstream ended its session), which is no failure to report.
    this.#reader = DISCARD;
    this.#reader = this.handler.start(status, headers, this);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#reader?.data(chunk);
  }

  onResponseEnd(): void {
    if (this.#done) return;
    this.#done = true;
    this.onSettled(this);
    this.#reader?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.onSettled(this);
    if (this.#reader) this.#reader.error(err);
    else this.handler.fail(err);
  }
}

export interface HttpTransportOptions {
  name: string;
  url: string;
  headers: Record<string, string>;
  /** Brokered credentials, read on every request (a lease's token is renewed or revoked meanwhile). */
  credentialHeaders?: (() => Record<string, string>) | undefined;
  maxMessageBytes: number;
  /** The upstream's socket pools (one per upstream, shared by its sessions). */
  pools: HttpPools;
  log: Logger;
}

const MAX_GET_RETRIES = 5;

/** The fixed headers of a POST (content-length comes from the body). */
const POST_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

export class HttpTransport implements UpstreamTransport {
  onmessage: (msg: JsonRpcMessage) => void = () => {};
  onclose: (reason: GatehouseError) => void = () => {};
  listen = true;

  private readonly url: URL;
  private readonly mod: typeof http | typeof https;
  /** The request target on the upstream's origin. */
  private readonly path: string;
  private readonly baseHeaders: Record<string, string>;
  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  private readonly inflight = new Set<Exchange>();
  /**
   * Requests still waiting for their answer, with the HTTP request that carries them now (the POST, or
   * the GET that resumed its stream). Abandoning one destroys that request: its socket is not held for
   * an answer nobody waits for ("Receivers of a cancellation notification SHOULD NOT send a response",
   * so an upstream may keep a cancelled call's stream open for as long as its session lives).
   */
  private readonly waiting = new Map<JsonRpcId, Exchange>();
  /** ORDER: a request waits until earlier notifications and responses were accepted. */
  private barrier: Promise<void> = Promise.resolve();
  /** Notifications and responses on the barrier not yet accepted (or failed). */
  private ordered = 0;
  private closed = false;
  private started = false;
  private getStream: http.ClientRequest | undefined;

  constructor(private readonly opts: HttpTransportOptions) {
    this.url = new URL(opts.url);
    this.mod = this.url.protocol === 'https:' ? https : http;
    this.path = `${this.url.pathname}${this.url.search}`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers)) {
      if (!GATEWAY_HEADERS.has(k.toLowerCase())) headers[k] = v;
    }
    this.baseHeaders = headers;
  }

  /**
   * The headers of a POST while no brokered credential is involved: one object per session id and
   * protocol version, reused by every POST (the request pool only reads it).
   */
  private postHeaders:
    | { sid: string | undefined; pv: string | undefined; h: Record<string, string> }
    | undefined;

  private headersForPost(): Record<string, string> {
    if (this.opts.credentialHeaders) return this.headers(POST_HEADERS);
    const c = this.postHeaders;
    if (c && c.sid === this.sessionId && c.pv === this.protocolVersion) return c.h;
    const h = Object.freeze(this.headers(POST_HEADERS));
    this.postHeaders = { sid: this.sessionId, pv: this.protocolVersion, h };
    return h;
  }

  private headers(extra: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { ...this.baseHeaders, ...extra };
    if (this.opts.credentialHeaders) {
      for (const [k, v] of Object.entries(this.opts.credentialHeaders()))
        if (!GATEWAY_HEADERS.has(k.toLowerCase())) h[k] = v;
    }
    if (this.sessionId) h['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion) h['mcp-protocol-version'] = this.protocolVersion;
    return h;
  }

  send(msg: JsonRpcMessage): Promise<void> {
    if (this.closed)
      return Promise.reject(
        new GatehouseError('upstream_unavailable', `upstream ${this.opts.name} is closed`),
      );
    const isRequest = 'method' in msg && 'id' in msg;
    // A value JSON cannot write (nesting past the stack) fails this send, never the caller's frame.
    let body: string;
    try {
      body = JSON.stringify(msg);
    } catch {
      return Promise.reject(new GatehouseError('invalid_request', 'the message cannot be serialised'));
    }
    const requestId = isRequest ? (msg as { id: JsonRpcId }).id : undefined;
    if (isRequest) {
      // Requests do not block each other: concurrency is the point. They only wait for notifications
      // and responses sent before them (none outstanding: no wait, no extra turn of the microtask queue).
      if (this.ordered === 0) return this.post(body, requestId);
      return this.barrier.then(() => this.post(body, requestId));
    }
    this.ordered++;
    const p = this.barrier.then(() => this.post(body, requestId));
    this.barrier = p.then(
      () => {
        this.ordered--;
      },
      () => {
        this.ordered--;
      },
    );
    return p;
  }

  /** Stops waiting for the answer to request `id` and frees the socket that carries it. */
  abandon(id: JsonRpcId): void {
    const req = this.waiting.get(id);
    this.waiting.delete(id);
    req?.abort();
  }

  /** Every message from the upstream passes here; a response ends the wait for its request. */
  private deliver(msg: JsonRpcMessage): void {
    if (!('method' in msg) && msg.id !== null) this.waiting.delete(msg.id);
    this.onmessage(msg);
  }

  /** Starts one exchange on the request pool; `requestId` (a request's answer it carries) can abandon it. */
  private exchange(
    method: 'POST' | 'GET' | 'DELETE',
    headers: Record<string, string>,
    body: string | null,
    handler: ResponseHandler,
    requestId?: JsonRpcId,
  ): void {
    const x = new ExchangeHandler(handler, (done) => this.inflight.delete(done));
    this.inflight.add(x);
    if (requestId !== undefined) this.waiting.set(requestId, x);
    this.opts.pools.requests.dispatch({ path: this.path, method, headers, body }, x);
  }

  /** Resolves when the upstream accepted the message (status line received). */
  private post(body: string, requestId: JsonRpcId | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new GatehouseError('upstream_unavailable', `upstream ${this.opts.name} is closed`));
        return;
      }
      const headers = this.headersForPost();
      this.exchange(
        'POST',
        headers,
        body,
        {
          fail: (err) => {
            const e = new GatehouseError(
              'upstream_unavailable',
              `upstream ${this.opts.name} is unreachable`,
              {
                detail: err.message,
              },
            );
            if (requestId !== undefined) this.failRequest(requestId, e);
            reject(e);
          },
          start: (status, h, x) => {
            const sid = h['mcp-session-id'];
            if (typeof sid === 'string' && !this.sessionId) this.sessionId = sid;
            if (status === 202 || status === 204) {
              resolve();
              return DISCARD;
            }
            if (status === 404 && this.sessionId) {
              // "The server MAY terminate the session at any time, after which it MUST respond to requests
              // containing that session ID with HTTP 404 Not Found." The link starts a new one.
              const e = new GatehouseError(
                'upstream_unavailable',
                `upstream ${this.opts.name} ended its session`,
              );
              reject(e);
              this.end(e);
              return DISCARD;
            }
            if (status < 200 || status >= 300) return this.readErrorBody(x, status, requestId, reject);
            resolve();
            const ctype = h['content-type'];
            if (typeof ctype === 'string' && ctype.startsWith('text/event-stream'))
              return this.readSse(x, requestId);
            return this.readJson(x, requestId);
          },
        },
        requestId,
      );
    });
  }

  private readErrorBody(
    x: Exchange,
    status: number,
    requestId: JsonRpcId | undefined,
    reject: (e: GatehouseError) => void,
  ): BodyReader {
    return this.readBody(
      x,
      (text) => {
        // An upstream may answer a request with a JSON-RPC error and a 4xx status.
        if (requestId !== undefined && text && this.deliverBody(text)) {
          reject(new GatehouseError('upstream_failed', `upstream ${this.opts.name} answered HTTP ${status}`));
          return;
        }
        const e = new GatehouseError(
          'upstream_failed',
          `upstream ${this.opts.name} answered HTTP ${status}`,
          {
            detail: text.slice(0, 500),
          },
        );
        if (requestId !== undefined) this.failRequest(requestId, e);
        reject(e);
      },
      requestId,
    );
  }

  /** Collects a body (bounded by maxMessageBytes) and hands it over as text when it ends. */
  private readBody(x: Exchange, done: (text: string) => void, requestId?: JsonRpcId): BodyReader {
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    return {
      data: (c) => {
        if (overflow) return;
        size += c.length;
        if (size > this.opts.maxMessageBytes) {
          overflow = true;
          chunks.length = 0;
          x.abort();
          if (requestId !== undefined) {
            this.failRequest(requestId, new GatehouseError('result_too_large'));
          }
          return;
        }
        chunks.push(c);
      },
      end: () => {
        if (!overflow)
          done(
            chunks.length === 1
              ? (chunks[0] as Buffer).toString('utf8')
              : Buffer.concat(chunks).toString('utf8'),
          );
      },
      error: () => {
        if (!overflow && requestId !== undefined) {
          this.failRequest(
            requestId,
            new GatehouseError('upstream_failed', `upstream ${this.opts.name} reset the response`),
          );
        }
      },
    };
  }

  private readJson(x: Exchange, requestId: JsonRpcId | undefined): BodyReader {
    return this.readBody(
      x,
      (text) => {
        if (!this.deliverBody(text) && requestId !== undefined) {
          this.failRequest(
            requestId,
            new GatehouseError('upstream_failed', `upstream ${this.opts.name} sent invalid JSON`),
          );
        }
      },
      requestId,
    );
  }

  /** Parses a JSON body (one message or a batch) and delivers it; false when nothing valid was found. */
  private deliverBody(text: string): boolean {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return false;
    }
    const list = Array.isArray(value) ? value : [value];
    let any = false;
    for (const v of list) {
      const c = classify(v);
      if (c.kind === 'invalid') {
        this.opts.log.warn(
          { upstream: this.opts.name, reason: c.reason },
          'upstream sent an invalid JSON-RPC message',
        );
        continue;
      }
      any = true;
      this.deliver(c.msg);
    }
    return any;
  }

  /**
   * Reads an SSE response. When the upstream closes the stream before answering
   * (2025-11-25 SSE polling), resumes it with GET + Last-Event-ID.
   */
  private readSse(x: Exchange, requestId: JsonRpcId | undefined, attempt = 0): BodyReader {
    let lastEventId: string | undefined;
    let answered = requestId === undefined;
    let size = 0;
    let retryMs = 1000;
    const parser = createParser({
      onEvent: (ev) => {
        if (ev.id) lastEventId = ev.id;
        if (!ev.data || (ev.event && ev.event !== 'message')) return;
        let value: unknown;
        try {
          value = JSON.parse(ev.data);
        } catch {
          return;
        }
        const c = classify(value);
        if (c.kind === 'invalid') return;
        if (c.kind === 'response' && requestId !== undefined && c.msg.id === requestId) answered = true;
        this.deliver(c.msg);
      },
      onRetry: (ms) => {
        retryMs = ms;
      },
    });
    // A multi-byte character may straddle two chunks.
    const decoder = new StringDecoder('utf8');
    const finish = (): void => {
      // Not for a request that was answered elsewhere or abandoned meanwhile.
      if (answered || this.closed || requestId === undefined || !this.waiting.has(requestId)) return;
      if (lastEventId && attempt < MAX_GET_RETRIES) {
        const id = lastEventId;
        setTimeout(() => this.resume(id, requestId, attempt + 1), Math.min(retryMs, 5000)).unref();
        return;
      }
      this.failRequest(
        requestId,
        new GatehouseError(
          'upstream_failed',
          `upstream ${this.opts.name} closed the stream without answering`,
        ),
      );
    };
    return {
      data: (chunk) => {
        const text = decoder.write(chunk);
        size += text.length;
        if (size > this.opts.maxMessageBytes * 4 && !answered && requestId !== undefined) {
          // ORDER: answered first: the abort ends the stream at once, and `finish` must not treat it as
          // an upstream that went away without answering.
          answered = true;
          this.failRequest(requestId, new GatehouseError('result_too_large'));
          x.abort();
          return;
        }
        parser.feed(text);
      },
      end: () => {
        parser.feed(decoder.end());
        finish();
      },
      error: finish,
    };
  }

  private resume(lastEventId: string, requestId: JsonRpcId, attempt: number): void {
    if (this.closed || !this.waiting.has(requestId)) return;
    // Request traffic: this GET carries one call's answer and ends with it.
    const headers = this.headers({ accept: 'text/event-stream', 'last-event-id': lastEventId });
    this.exchange(
      'GET',
      headers,
      null,
      {
        fail: () => this.failRequest(requestId, new GatehouseError('upstream_unavailable')),
        start: (status, _h, x) => {
          if (status !== 200) {
            this.failRequest(
              requestId,
              new GatehouseError(
                'upstream_failed',
                `upstream ${this.opts.name} refused to resume the stream`,
              ),
            );
            return DISCARD;
          }
          return this.readSse(x, requestId, attempt);
        },
      },
      requestId,
    );
  }

  /** Delivers a synthetic JSON-RPC error for a request the upstream can no longer answer. */
  private failRequest(id: JsonRpcId, e: GatehouseError): void {
    this.deliver({ jsonrpc: '2.0', id, error: e.toJsonRpcError() });
  }

  initialized(protocolVersion: string): void {
    if (this.started) return;
    this.started = true;
    this.protocolVersion = protocolVersion;
    // "The client MAY issue an HTTP GET to the MCP endpoint": only worth a socket for an upstream that
    // may send something outside any request (the link sets `listen` from the negotiated capabilities).
    if (this.listen) this.openGetStream(0);
  }

  /**
   * The standalone GET stream carries server-initiated messages (list_changed, logging, requests). It
   * lives as long as the session, so it never takes a socket from the request pool.
   */
  private openGetStream(attempt: number, lastEventId?: string): void {
    if (this.closed || attempt > MAX_GET_RETRIES) return;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId) headers['last-event-id'] = lastEventId;
    const req = this.mod.request(this.url, {
      method: 'GET',
      agent: this.opts.pools.streams,
      headers: this.headers(headers),
    });
    this.getStream = req;
    req.once('error', () => this.retryGet(attempt, lastEventId));
    req.once('response', (res) => {
      if (res.statusCode !== 200) {
        // 405: "the server does not offer an SSE stream at this endpoint". A 404 here is taken the same
        // way, not as the end of the session: servers that route only POST answer a GET with 404.
        res.resume();
        return;
      }
      let last = lastEventId;
      let got = false;
      const parser = createParser({
        onEvent: (ev) => {
          got = true;
          if (ev.id) last = ev.id;
          if (!ev.data) return;
          try {
            const c = classify(JSON.parse(ev.data));
            if (c.kind !== 'invalid') this.deliver(c.msg);
          } catch {
            // ignore malformed events
          }
        },
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => parser.feed(chunk));
      // A stream that delivered something may reconnect indefinitely; one that ends at once backs off and gives up.
      res.once('end', () => this.retryGet(got ? 0 : attempt, last));
      res.once('error', () => this.retryGet(attempt, last));
    });
    req.end();
  }

  private retryGet(attempt: number, lastEventId: string | undefined): void {
    if (this.closed) return;
    setTimeout(() => this.openGetStream(attempt + 1, lastEventId), 250 * 2 ** attempt).unref();
  }

  private end(reason: GatehouseError): void {
    if (this.closed) return;
    this.closed = true;
    this.destroyAll();
    this.onclose(reason);
  }

  private destroyAll(): void {
    this.getStream?.destroy();
    for (const r of this.inflight) r.abort();
    this.inflight.clear();
    this.waiting.clear();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.destroyAll();
    if (!this.sessionId) return;
    // "Clients that no longer need a particular session SHOULD send an HTTP DELETE."
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => x.abort(), 2000);
      const settle = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const x = new ExchangeHandler(
        { fail: settle, start: () => ({ data() {}, end: settle, error: settle }) },
        () => {},
      );
      this.opts.pools.requests.dispatch(
        { path: this.path, method: 'DELETE', headers: this.headers({}), body: null },
        x,
      );
    });
  }
}
