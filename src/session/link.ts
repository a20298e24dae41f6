/**
 * One session's connection to one upstream server: JSON-RPC id mapping, the
 * table of requests waiting for an answer, and restarts.
 *
 * INVARIANT: every request the gateway sends upstream carries an id allocated
 * here, so client ids, gateway-internal requests and several clients never
 * collide; responses are mapped back before anything else sees them.
 *
 * Restarts: a transport that ends on its own (a stdio process exits, an HTTP upstream answers 404 for
 * its session) fails the calls sent on it, and the link opens a replacement for this session after a
 * backoff (a new process or upstream session, credentials leased as at session start) and runs the
 * MCP handshake again with the client's protocol version and capabilities. Calls made meanwhile wait
 * for it (each under its own timeout). {@link BREAKER_FAILURES} failures within
 * {@link BREAKER_WINDOW_MS} open the breaker: the link ends for good with a clear error. A link that is
 * closed on purpose (session end, revoked credential) is never restarted.
 */
import { GatehouseError, toGatehouseError } from '../errors.ts';
import type {
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../protocol/jsonrpc.ts';
import type { UpstreamTransport } from '../upstream/transport.ts';

/** Failures (exits, failed restarts) within {@link BREAKER_WINDOW_MS} that open the breaker. */
export const BREAKER_FAILURES = 5;
/** The breaker's window. */
export const BREAKER_WINDOW_MS = 60_000;
/** Delay before the first restart; it doubles with every failure in the window. */
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 10_000;
/** Errors after which a restart would be wrong, not just unlucky: the link ends for good. */
const FINAL = new Set(['credential_revoked', 'grant_ended', 'shutting_down']);

/** What waits for an upstream response. */
export type PendingEntry = (
  | {
      kind: 'internal';
      resolve: (r: Record<string, unknown>) => void;
      reject: (e: GatehouseError) => void;
      timer: NodeJS.Timeout;
    }
  | { kind: 'front'; onResponse: (msg: JsonRpcResponse) => void }
) & {
  /** The transport generation it was sent on; 0 while it waits for a restarting upstream. */
  gen: number;
  /** The request, kept while it waits to be sent. */
  queued: JsonRpcRequest | undefined;
};

export interface LinkEvents {
  /** A request initiated by the upstream (sampling, elicitation, roots, ping). */
  onRequest(link: UpstreamLink, msg: JsonRpcRequest): void;
  onNotification(link: UpstreamLink, msg: JsonRpcNotification): void;
  /** The transport ended on its own; calls sent on it were failed; a replacement opens in `delayMs`. */
  onRestarting(link: UpstreamLink, reason: GatehouseError, delayMs: number): void;
  /** A replacement finished the MCP handshake (`reason`: why the previous one ended). */
  onRestarted(link: UpstreamLink, reason: GatehouseError): void;
  /** The link ended for good; `pending` front requests were already failed. */
  onClosed(link: UpstreamLink, reason: GatehouseError): void;
}

/** What the link sends as `initialize`: the client's protocol version, capabilities and info. */
export interface LinkInit {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown>;
}

/** Where a link's transports come from, and what it holds on the upstream. */
export interface LinkSource {
  /**
   * A fresh transport for this session (a new process, a new upstream MCP session), its credentials
   * leased through the same path as at session start. Rejects with a GatehouseError.
   */
  open(): Promise<UpstreamTransport>;
  /** Whether a transport that ends on its own is replaced (stdio and Streamable HTTP). */
  readonly restartable: boolean;
  readonly init: LinkInit;
  readonly initializeTimeoutMs: number;
  /** Gives back the session's place on the upstream (limits.maxSessionsPerUpstream), when the link ends. */
  release(): void;
}

/**
 * Whether an upstream may send messages outside any request, so the optional standalone stream is
 * worth opening. Lifecycle: "Both parties MUST: [...] Only use capabilities that were successfully
 * negotiated": list changes, resource updates, log messages and task status need the server's
 * capability, and its own requests (roots, sampling, elicitation) the client's.
 */
export function mayPush(server: Record<string, unknown>, client: Record<string, unknown>): boolean {
  const flag = (cap: unknown, key: string): boolean =>
    typeof cap === 'object' && cap !== null && (cap as Record<string, unknown>)[key] === true;
  return (
    flag(server.tools, 'listChanged') ||
    flag(server.prompts, 'listChanged') ||
    flag(server.resources, 'listChanged') ||
    flag(server.resources, 'subscribe') ||
    ['logging', 'tasks', 'experimental'].some((k) => server[k] !== undefined) ||
    ['roots', 'sampling', 'elicitation', 'tasks'].some((k) => client[k] !== undefined)
  );
}

export class UpstreamLink {
  private nextId = 1;
  private readonly pending = new Map<number, PendingEntry>();
  private current: UpstreamTransport;
  /** Generation of `current`; bumped for every replacement. */
  private gen = 0;
  /** True from a transport's unexpected end until its replacement finished the handshake. */
  private restarting = false;
  private dead: GatehouseError | undefined;
  private closing = false;
  /** Set by the first handshake: a link that never came up is not restarted (initialize failed). */
  private established = false;
  private breaker = false;
  /** When recent failures happened (the breaker's window). */
  private failures: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Replacements that finished the handshake. */
  restarts = 0;
  /** Capabilities and info from the upstream's initialize result. */
  capabilities: Record<string, unknown> = {};
  instructions: string | undefined;
  protocolVersion: string | undefined;

  constructor(
    readonly server: string,
    transport: UpstreamTransport,
    private readonly events: LinkEvents,
    private readonly source: LinkSource,
  ) {
    this.current = transport;
    this.attach(transport);
  }

  /** The transport in use (a replacement after a restart). */
  get transport(): UpstreamTransport {
    return this.current;
  }

  /** False once the link ended for good; true while it restarts (calls wait for it). */
  get alive(): boolean {
    return this.dead === undefined;
  }

  get deathReason(): GatehouseError | undefined {
    return this.dead;
  }

  /** True when the breaker ended the link. */
  get breakerOpen(): boolean {
    return this.breaker;
  }

  /**
   * What a new call gets once the link is dead: a revoked credential or an open breaker says so;
   * anything else is "not available" (the exit details stay in the logs).
   */
  get refusal(): GatehouseError | undefined {
    const d = this.dead;
    if (!d) return undefined;
    if (d.code === 'credential_revoked' || this.breaker) return d;
    return new GatehouseError('upstream_unavailable', `upstream ${this.server} is not available`, {
      detail: d.detail ?? d.message,
    });
  }

  /** Number of requests still waiting for the upstream. */
  get inflight(): number {
    return this.pending.size;
  }

  private attach(t: UpstreamTransport): number {
    const g = ++this.gen;
    this.current = t;
    // Only the current transport speaks for the link: a late message of a replaced one is dropped.
    t.onmessage = (m) => {
      if (g === this.gen) this.receive(m);
    };
    t.onclose = (reason) => this.lost(g, reason);
    t.onoversize = (id) => {
      if (g !== this.gen) return;
      // T30: answer the request the oversized message was for; if unknown, the stream is unusable.
      const err = new GatehouseError('result_too_large');
      if (typeof id === 'number' && this.pending.has(id))
        this.settle({ jsonrpc: '2.0', id, error: err.toJsonRpcError() });
      else
        void this.close(
          new GatehouseError('upstream_failed', `upstream ${this.server} sent an oversized message`),
        );
    };
    return g;
  }

  /** The MCP handshake on the current transport: `initialize` with the client's parameters. */
  async handshake(): Promise<void> {
    const result = await this.request(
      'initialize',
      { ...this.source.init },
      this.source.initializeTimeoutMs,
      true,
    );
    this.capabilities = isObject(result.capabilities) ? result.capabilities : {};
    this.instructions = typeof result.instructions === 'string' ? result.instructions : undefined;
    this.protocolVersion = typeof result.protocolVersion === 'string' ? result.protocolVersion : undefined;
    this.current.listen = mayPush(this.capabilities, this.source.init.capabilities);
    this.established = true;
  }

  /**
   * Sends a gateway-originated request and resolves with its result. `direct`: on the current
   * transport even while it restarts (the handshake itself).
   */
  request(
    method: string,
    params: Record<string, unknown> | undefined,
    timeoutMs: number,
    direct = false,
  ): Promise<Record<string, unknown>> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const entry = this.pending.get(id);
        this.pending.delete(id);
        if (entry) this.cancelUpstream(id, entry, 'timeout');
        reject(
          new GatehouseError('upstream_timeout', `upstream ${this.server} did not answer ${method} in time`),
        );
      }, timeoutMs);
      const entry: PendingEntry = { kind: 'internal', resolve, reject, timer, gen: 0, queued: undefined };
      this.pending.set(id, entry);
      const msg: JsonRpcRequest = { jsonrpc: '2.0', id, method };
      if (params) msg.params = params;
      this.dispatch(id, entry, msg, direct);
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
    const refusal = this.refusal;
    if (refusal) {
      queueMicrotask(() => onResponse({ jsonrpc: '2.0', id, error: refusal.toJsonRpcError() }));
      return id;
    }
    const entry: PendingEntry = { kind: 'front', onResponse, gen: 0, queued: undefined };
    this.pending.set(id, entry);
    const msg: JsonRpcRequest = { jsonrpc: '2.0', id, method };
    if (params) msg.params = params;
    this.dispatch(id, entry, msg, false);
    return id;
  }

  /** Sends a request now, or keeps it until the restarting upstream is back. */
  private dispatch(id: number, entry: PendingEntry, msg: JsonRpcRequest, direct: boolean): void {
    if (this.restarting && !direct) {
      entry.queued = msg;
      return;
    }
    entry.gen = this.gen;
    this.current.send(msg).catch((e: GatehouseError) => {
      if (this.pending.get(id) !== entry) return;
      this.pending.delete(id);
      this.failEntry(id, entry, e);
    });
  }

  /** Stops waiting for a forwarded request (timeout or cancellation); tells the upstream. */
  abandon(upstreamId: number, reason: string): boolean {
    const entry = this.pending.get(upstreamId);
    if (!entry) return false;
    this.pending.delete(upstreamId);
    this.cancelUpstream(upstreamId, entry, reason);
    return true;
  }

  /** Cancels a request the current transport carries (one still queued was never sent: nothing to say). */
  private cancelUpstream(id: number, entry: PendingEntry, reason: string): void {
    if (entry.gen !== this.gen || this.dead) return;
    const t = this.current;
    void t
      .send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } })
      .catch(() => {});
    t.abandon?.(id);
  }

  /** Sends a notification or a response; resolves when the upstream accepted it. */
  notify(msg: JsonRpcNotification | JsonRpcResponse): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    // Nothing to deliver it to: the process or upstream session it was meant for is gone.
    if (this.restarting)
      return Promise.reject(
        new GatehouseError('upstream_unavailable', `upstream ${this.server} is restarting`),
      );
    return this.current.send(msg);
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

  private failEntry(id: number, entry: PendingEntry, reason: GatehouseError): void {
    if (entry.kind === 'front') entry.onResponse({ jsonrpc: '2.0', id, error: reason.toJsonRpcError() });
    else {
      clearTimeout(entry.timer);
      entry.reject(reason);
    }
  }

  /** Fails the requests sent on transport generation `g` (all of them when `g` is undefined). */
  private failSent(reason: GatehouseError, g?: number): void {
    const entries = [...this.pending.entries()].filter(([, e]) => g === undefined || e.gen === g);
    for (const [id] of entries) this.pending.delete(id);
    for (const [id, entry] of entries) this.failEntry(id, entry, reason);
  }

  /** Transport generation `g` ended on its own. */
  private lost(g: number, reason: GatehouseError): void {
    if (g !== this.gen || this.dead || this.closing) return;
    if (!this.source.restartable || !this.established) {
      this.fail(reason);
      return;
    }
    // The calls it carried are lost with it ("calls in flight get upstream_failed"); queued ones wait.
    this.failSent(reason, g);
    this.failed(reason);
  }

  /** Counts a failure in the breaker's window, then restarts after a backoff or opens the breaker. */
  private failed(reason: GatehouseError): void {
    const now = Date.now();
    this.failures = this.failures.filter((t) => now - t < BREAKER_WINDOW_MS);
    this.failures.push(now);
    this.restarting = true;
    if (this.failures.length >= BREAKER_FAILURES) {
      this.breaker = true;
      this.fail(
        new GatehouseError(
          'upstream_unavailable',
          `upstream ${this.server} failed ${this.failures.length} times within ${BREAKER_WINDOW_MS / 1000} s: its circuit breaker is open and it is not restarted again in this session (start a new session to retry)`,
          { detail: reason.detail ?? reason.message, data: { upstream: this.server, breaker: 'open' } },
        ),
      );
      return;
    }
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (this.failures.length - 1));
    this.events.onRestarting(this, reason, delay);
    this.timer = setTimeout(() => void this.reopen(reason), delay);
  }

  /** Opens a replacement transport and runs the handshake on it; on success, sends what waited. */
  private async reopen(cause: GatehouseError): Promise<void> {
    this.timer = undefined;
    if (this.dead || this.closing) return;
    let t: UpstreamTransport;
    try {
      t = await this.source.open();
    } catch (err) {
      if (this.dead || this.closing) return;
      const e = toGatehouseError(err);
      if (FINAL.has(e.code)) this.fail(e);
      else this.failed(e);
      return;
    }
    if (this.dead || this.closing) {
      void t.close();
      return;
    }
    const g = this.attach(t);
    try {
      await this.handshake();
      // The lifecycle's last step, as the client did at session start.
      await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    } catch (err) {
      // Ended on its own meanwhile: `lost` has counted it already.
      if (g !== this.gen || this.dead || this.closing || this.timer !== undefined) return;
      void t.close();
      this.failed(toGatehouseError(err));
      return;
    }
    if (g !== this.gen || this.dead || this.closing) return;
    this.restarting = false;
    this.restarts++;
    t.initialized?.(this.protocolVersion ?? this.source.init.protocolVersion);
    for (const [id, entry] of this.pending) {
      const msg = entry.queued;
      if (!msg) continue;
      entry.queued = undefined;
      this.dispatch(id, entry, msg, false);
    }
    this.events.onRestarted(this, cause);
  }

  /** Fails everything in flight with `reason` and marks the link dead for good. */
  fail(reason: GatehouseError): void {
    if (this.dead) return;
    this.dead = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.failSent(reason);
    this.source.release();
    this.events.onClosed(this, reason);
  }

  /** Ends the link: answers in-flight requests with `reason` and closes the transport. Never restarts. */
  async close(reason: GatehouseError): Promise<void> {
    this.closing = true;
    if (!this.dead && !this.restarting) {
      for (const [id, entry] of this.pending) {
        if (entry.kind === 'front' && entry.gen === this.gen) {
          void this.current
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
    await this.current.close();
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
