/**
 * One stdio process serving several sessions (`upstreams.<name>.isolation: principal | shared`): a
 * multiplexer between the process's transport and the sessions' links. Each link gets a
 * {@link SharedPort}, an {@link UpstreamTransport} of its own, and keeps doing what it does for a
 * process of its own (its ids, its pending table, restarts); the multiplexer makes the one MCP session
 * the process sees hold several sessions without any of them seeing another's messages.
 *
 * The rules (docs/architecture.md, "Upstream process model"):
 *
 * - **Ids.** MCP: "The request ID MUST NOT have been previously used by the requestor within the same
 *   session": the process has one session, so every request gets a wire id allocated here, unique per
 *   process; its response goes back to the port that sent it, under that port's id. An answer to an id
 *   nobody waits for (cancelled, or never ours) is dropped.
 * - **Progress.** "The progress token MUST be unique across all active requests": two sessions may use
 *   the same token, so a request's `_meta.progressToken` is replaced by its wire id on the way up, and a
 *   progress notification is delivered, with the session's own token, only to the port whose request
 *   has that wire id. A token nobody holds is dropped.
 * - **Cancellation** names the wire id of the port's own request; no port can name another's.
 * - **Initialize.** The process is initialized once, by the first session, with the session's protocol
 *   revision (the key includes it), the gateway's clientInfo and no client capabilities: no sampling,
 *   elicitation or roots, which belong to one client ("Both parties MUST [...] only use capabilities
 *   that were successfully negotiated"). Later sessions get the same result; `notifications/initialized`
 *   is sent once, by the multiplexer, and the sessions' own are not forwarded.
 * - **Server-to-client requests.** `ping` is answered here. Every other request (sampling, elicitation,
 *   roots, anything) is refused with -32601: stdio says nothing about which call caused it, and "the
 *   only call in flight" is a guess that a finished call of another session, still working in the
 *   background, can defeat; a wrong guess would hand one session's prompt to another. A conforming
 *   server never sends them (none of those capabilities was declared).
 * - **Notifications.** List changes are the same server's, so every session on the process gets them.
 *   `resources/updated` goes to the sessions that subscribed to that URI (subscriptions are counted: the
 *   process is told to unsubscribe when the last one does). Log messages, `notifications/cancelled` and
 *   anything else cannot be attributed to one session and are dropped; `logging/setLevel` is answered
 *   here (the level would change the process for everyone, for messages that are dropped anyway).
 *   Client notifications other than cancellation are not forwarded either: they would speak for every
 *   session (roots were not declared; no server request is ever delivered, so no client progress).
 * - **Tasks** (`tasks/*`) name server-wide ids and lists: refused.
 * - **Lifetime.** The last port to close stops the process. When the process ends on its own, every
 *   port is closed with the reason, so each link fails its calls and restarts as it would with a process
 *   of its own; the replacements join one new process (the manager keys it), which is initialized once.
 */
import type { Logger } from 'pino';
import { GatehouseError } from '../errors.ts';
import type {
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../protocol/jsonrpc.ts';
import type { UpstreamTransport } from './transport.ts';

/** Resource subscriptions one session may hold on a shared process (T30: bounded by the session). */
export const MAX_SUBSCRIPTIONS = 1000;

/** What a shared process is initialized with, once for every session on it. */
export interface SharedInit {
  /** The protocol revision of every session on the process (it is part of the key). */
  protocolVersion: string;
  /** The gateway's own clientInfo: no one session's. */
  clientInfo: Record<string, unknown>;
}

export interface SharedOptions {
  readonly name: string;
  readonly init: SharedInit;
  /** How long the process may take to answer initialize before it is given up. */
  readonly initializeTimeoutMs: number;
  readonly log: Logger;
  /** Called once when the process stops serving (ended on its own, failed, or the last port closed). */
  readonly onEnd: () => void;
}

/** A request of a port in flight on the process, by wire id. */
interface WireEntry {
  readonly port: SharedPort;
  readonly localId: JsonRpcId;
  /** Whether the request carried a progress token (replaced by the wire id). */
  readonly tracked: boolean;
  /** The port's own progress token. */
  readonly token: unknown;
  /** A resources/subscribe for this URI: undone if the process refuses it. */
  readonly subscribe: string | undefined;
}

/** One stdio process and the sessions (ports) it serves. */
export class SharedProcess {
  private readonly ports = new Set<SharedPort>();
  private nextWire = 1;
  private readonly inflight = new Map<number, WireEntry>();
  /** Resource URI → the ports subscribed to it. */
  private readonly subscribers = new Map<string, Set<SharedPort>>();
  private initResult: Record<string, unknown> | undefined;
  private initWire: number | undefined;
  private initTimer: NodeJS.Timeout | undefined;
  private ended: GatehouseError | undefined;
  /** Settles when the process has been stopped. */
  private stopped: Promise<void> | undefined;
  /** Server-to-client requests refused and notifications dropped (no session they could be given to). */
  readonly stats = { refused: 0, dropped: 0 };

  constructor(
    private readonly transport: UpstreamTransport,
    private readonly o: SharedOptions,
  ) {
    transport.onmessage = (m) => this.receive(m);
    transport.onclose = (reason) => this.fail(reason);
    transport.onoversize = (id) => this.oversize(id);
  }

  /** False once the process stopped serving: new sessions get a new one. */
  get alive(): boolean {
    return this.ended === undefined;
  }

  get pid(): number | undefined {
    return this.transport.pid;
  }

  /** Sessions on the process. */
  get sessions(): number {
    return this.ports.size;
  }

  /** A new session's transport on this process. */
  attach(): SharedPort {
    const port = new SharedPort(this);
    this.ports.add(port);
    return port;
  }

  // ---- from a session ---------------------------------------------------------

  /** @internal A message a port sends. */
  fromPort(port: SharedPort, msg: JsonRpcMessage): Promise<void> {
    if (this.ended || !this.ports.has(port))
      return Promise.reject(
        new GatehouseError('upstream_unavailable', `upstream ${this.o.name} is not running`),
      );
    if (!('method' in msg)) {
      // A client's answer to a server-to-client request: none is ever delivered from a shared process.
      return Promise.resolve();
    }
    if ('id' in msg && msg.id !== undefined) return this.request(port, msg as JsonRpcRequest);
    return this.notification(port, msg);
  }

  private request(port: SharedPort, msg: JsonRpcRequest): Promise<void> {
    const params = msg.params;
    switch (msg.method) {
      case 'initialize':
        return this.initialize(port, msg.id);
      case 'logging/setLevel':
        // The process's log messages are dropped (they cannot be attributed); one session's level
        // would change the process for all.
        port.reply({ jsonrpc: '2.0', id: msg.id, result: {} });
        return Promise.resolve();
      case 'resources/subscribe': {
        const uri = params?.uri;
        if (typeof uri !== 'string') break;
        if (!port.subscriptions.has(uri) && port.subscriptions.size >= MAX_SUBSCRIPTIONS) {
          const err = new GatehouseError(
            'capacity_exceeded',
            `at most ${MAX_SUBSCRIPTIONS} resource subscriptions per session on a shared upstream process`,
          );
          port.reply({ jsonrpc: '2.0', id: msg.id, error: err.toJsonRpcError() });
          return Promise.resolve();
        }
        this.subscribe(port, uri);
        return this.forward(port, msg, uri);
      }
      case 'resources/unsubscribe': {
        const uri = params?.uri;
        if (typeof uri !== 'string') break;
        if (!this.unsubscribe(port, uri)) {
          // Other sessions still want its updates: the process keeps the subscription.
          port.reply({ jsonrpc: '2.0', id: msg.id, result: {} });
          return Promise.resolve();
        }
        break;
      }
    }
    if (msg.method.startsWith('tasks/')) {
      const err = new GatehouseError(
        'method_not_found',
        `${msg.method} is not available on a shared upstream process: task ids and lists are the whole process's`,
      );
      port.reply({ jsonrpc: '2.0', id: msg.id, error: err.toJsonRpcError() });
      return Promise.resolve();
    }
    return this.forward(port, msg, undefined);
  }

  /** Sends a port's request under a fresh wire id (and its progress token replaced by that id). */
  private forward(port: SharedPort, msg: JsonRpcRequest, subscribe: string | undefined): Promise<void> {
    const wire = this.nextWire++;
    let params = msg.params;
    const meta = params?._meta;
    let tracked = false;
    let token: unknown;
    if (typeof meta === 'object' && meta !== null && !Array.isArray(meta) && 'progressToken' in meta) {
      tracked = true;
      token = (meta as Record<string, unknown>).progressToken;
      params = { ...params, _meta: { ...meta, progressToken: wire } };
    }
    this.inflight.set(wire, { port, localId: msg.id, tracked, token, subscribe });
    port.local.set(msg.id, wire);
    const out: JsonRpcRequest = { jsonrpc: '2.0', id: wire, method: msg.method };
    if (params) out.params = params;
    return this.transport.send(out).catch((err: unknown) => {
      this.forget(wire);
      throw err;
    });
  }

  private notification(port: SharedPort, msg: JsonRpcNotification): Promise<void> {
    if (msg.method !== 'notifications/cancelled') return Promise.resolve();
    const id = msg.params?.requestId;
    if (typeof id !== 'string' && typeof id !== 'number') return Promise.resolve();
    if (port.initId === id) {
      // "The initialize request MUST NOT be cancelled by clients": the session stops waiting, the
      // process's initialize goes on for the others.
      port.initId = undefined;
      return Promise.resolve();
    }
    const wire = port.local.get(id);
    if (wire === undefined) return Promise.resolve();
    this.forget(wire);
    return this.transport.send({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { ...msg.params, requestId: wire },
    });
  }

  private initialize(port: SharedPort, id: JsonRpcId): Promise<void> {
    if (this.initResult) {
      port.reply({ jsonrpc: '2.0', id, result: structuredClone(this.initResult) });
      return Promise.resolve();
    }
    port.initId = id;
    if (this.initWire !== undefined) return Promise.resolve();
    const wire = this.nextWire++;
    this.initWire = wire;
    this.initTimer = setTimeout(
      () =>
        this.fail(
          new GatehouseError('upstream_timeout', `upstream ${this.o.name} did not answer initialize in time`),
        ),
      this.o.initializeTimeoutMs,
    );
    return this.transport.send({
      jsonrpc: '2.0',
      id: wire,
      method: 'initialize',
      params: {
        protocolVersion: this.o.init.protocolVersion,
        capabilities: {},
        clientInfo: this.o.init.clientInfo,
      },
    });
  }

  /** The process answered its initialize. */
  private initialized(msg: JsonRpcResponse): void {
    clearTimeout(this.initTimer);
    this.initTimer = undefined;
    this.initWire = undefined;
    if (msg.error || !msg.result) {
      this.fail(
        new GatehouseError(
          'upstream_failed',
          `upstream ${this.o.name}: ${msg.error?.message ?? 'initialize without a result'}`,
          { data: { upstreamCode: msg.error?.code } },
        ),
      );
      return;
    }
    this.initResult = msg.result;
    // The lifecycle's last step, once for the process; before any session's next request.
    void this.transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' }).catch(() => {});
    for (const port of this.ports) {
      const id = port.initId;
      if (id === undefined) continue;
      port.initId = undefined;
      port.reply({ jsonrpc: '2.0', id, result: structuredClone(msg.result) });
    }
  }

  // ---- subscriptions ------------------------------------------------------------

  private subscribe(port: SharedPort, uri: string): void {
    port.subscriptions.add(uri);
    let set = this.subscribers.get(uri);
    if (!set) {
      set = new Set();
      this.subscribers.set(uri, set);
    }
    set.add(port);
  }

  /** Removes a port's subscription; true when no session is left subscribed to the URI. */
  private unsubscribe(port: SharedPort, uri: string): boolean {
    port.subscriptions.delete(uri);
    const set = this.subscribers.get(uri);
    if (!set) return true;
    set.delete(port);
    if (set.size > 0) return false;
    this.subscribers.delete(uri);
    return true;
  }

  // ---- from the process -----------------------------------------------------------

  private receive(msg: JsonRpcMessage): void {
    if ('method' in msg) {
      if ('id' in msg && msg.id !== undefined) this.serverRequest(msg as JsonRpcRequest);
      else this.serverNotification(msg);
      return;
    }
    const id = msg.id;
    if (typeof id !== 'number') return; // wire ids are integers: not one of ours
    if (id === this.initWire) {
      this.initialized(msg);
      return;
    }
    const entry = this.inflight.get(id);
    if (!entry) return; // cancelled, or its session left
    this.forget(id);
    // A refused subscription is not one.
    if (entry.subscribe !== undefined && msg.error) this.unsubscribe(entry.port, entry.subscribe);
    msg.id = entry.localId;
    entry.port.deliver(msg);
  }

  private serverRequest(msg: JsonRpcRequest): void {
    if (msg.method === 'ping') {
      void this.transport.send({ jsonrpc: '2.0', id: msg.id, result: {} }).catch(() => {});
      return;
    }
    // Once per process at warn (the operator chose the isolation; the server wants a capability it
    // cannot have), then at debug: a server may ask on every call.
    this.o.log[this.stats.refused === 0 ? 'warn' : 'debug'](
      { upstream: this.o.name, method: msg.method, pid: this.pid },
      'server-to-client request refused on a shared upstream process (isolation principal or shared)',
    );
    this.stats.refused++;
    const err = new GatehouseError(
      'method_not_found',
      `${msg.method}: a shared upstream process (isolation principal or shared) cannot send requests to a client: they cannot be attributed to one session`,
    );
    void this.transport.send({ jsonrpc: '2.0', id: msg.id, error: err.toJsonRpcError() }).catch(() => {});
  }

  private serverNotification(msg: JsonRpcNotification): void {
    const params = msg.params;
    switch (msg.method) {
      case 'notifications/progress': {
        const token = params?.progressToken;
        const entry = typeof token === 'number' ? this.inflight.get(token) : undefined;
        if (!entry?.tracked) break;
        entry.port.deliver({ ...msg, params: { ...params, progressToken: entry.token } });
        return;
      }
      case 'notifications/tools/list_changed':
      case 'notifications/prompts/list_changed':
      case 'notifications/resources/list_changed':
        // The same server's lists: true for every session on the process, and only for them.
        for (const port of this.ports) port.deliver({ ...msg });
        return;
      case 'notifications/resources/updated': {
        const uri = params?.uri;
        const set = typeof uri === 'string' ? this.subscribers.get(uri) : undefined;
        if (!set) break;
        for (const port of set) port.deliver({ ...msg });
        return;
      }
    }
    this.stats.dropped++;
  }

  /** T30: an oversized message answers the request it was for; one nobody can be named for ends every link. */
  private oversize(id: string | number | undefined): void {
    if (typeof id === 'number') {
      if (id === this.initWire) {
        this.fail(new GatehouseError('upstream_failed', `upstream ${this.o.name} sent an oversized message`));
        return;
      }
      const entry = this.inflight.get(id);
      if (entry) {
        this.forget(id);
        entry.port.onoversize?.(entry.localId);
        return;
      }
    }
    // As with a process of its own: the stream is not trusted any more, by any session on it.
    for (const port of [...this.ports]) port.onoversize?.(undefined);
  }

  /** Stops waiting for a wire id. */
  private forget(wire: number): void {
    const entry = this.inflight.get(wire);
    if (!entry) return;
    this.inflight.delete(wire);
    entry.port.local.delete(entry.localId);
  }

  // ---- lifetime ----------------------------------------------------------------------

  /** @internal A port closes: its requests are cancelled upstream; the last one stops the process. */
  detach(port: SharedPort): Promise<void> {
    if (!this.ports.delete(port)) return Promise.resolve();
    port.initId = undefined;
    for (const wire of [...port.local.values()]) {
      this.forget(wire);
      void this.transport
        .send({
          jsonrpc: '2.0',
          method: 'notifications/cancelled',
          params: { requestId: wire, reason: 'session ended' },
        })
        .catch(() => {});
    }
    for (const uri of [...port.subscriptions]) {
      if (!this.unsubscribe(port, uri) || this.ports.size === 0) continue;
      // Nobody is left subscribed: the process stops sending its updates (the answer is not awaited).
      const wire = this.nextWire++;
      void this.transport
        .send({ jsonrpc: '2.0', id: wire, method: 'resources/unsubscribe', params: { uri } })
        .catch(() => {});
    }
    if (this.ports.size > 0 || this.ended) return Promise.resolve();
    this.ended = new GatehouseError('session_closed', `no session uses upstream ${this.o.name} any more`);
    clearTimeout(this.initTimer);
    this.o.onEnd();
    this.stopped = this.transport.close();
    return this.stopped;
  }

  /** The process ended on its own or cannot be used: every session on it is told, as for its own process. */
  private fail(reason: GatehouseError): void {
    if (this.ended) return;
    this.ended = reason;
    clearTimeout(this.initTimer);
    this.o.onEnd();
    const ports = [...this.ports];
    this.ports.clear();
    this.inflight.clear();
    this.subscribers.clear();
    this.stopped = this.transport.close();
    for (const port of ports) {
      port.local.clear();
      port.onclose(reason);
    }
  }

  /** Stops the process whoever still uses it (gateway shutdown). */
  close(): Promise<void> {
    this.fail(new GatehouseError('shutting_down'));
    return this.stopped ?? Promise.resolve();
  }
}

/** One session's transport on a shared process. */
export class SharedPort implements UpstreamTransport {
  onmessage: (msg: JsonRpcMessage) => void = () => {};
  onclose: (reason: GatehouseError) => void = () => {};
  onoversize?: (id: string | number | undefined) => void;
  /** The session's ids of its requests in flight → their wire ids. */
  readonly local = new Map<JsonRpcId, number>();
  /** Resource URIs this session subscribed to. */
  readonly subscriptions = new Set<string>();
  /** The id of this session's initialize while the process's own is under way. */
  initId: JsonRpcId | undefined;

  constructor(private readonly owner: SharedProcess) {}

  get pid(): number | undefined {
    return this.owner.pid;
  }

  send(msg: JsonRpcMessage): Promise<void> {
    return this.owner.fromPort(this, msg);
  }

  /** @internal A message from the process for this session. */
  deliver(msg: JsonRpcMessage): void {
    this.onmessage(msg);
  }

  /** @internal An answer made here, delivered after the send that asked for it returned. */
  reply(msg: JsonRpcResponse): void {
    queueMicrotask(() => this.onmessage(msg));
  }

  close(): Promise<void> {
    return this.owner.detach(this);
  }
}
