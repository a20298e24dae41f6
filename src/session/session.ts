/**
 * One client session: its upstream links, the requests in flight, the
 * server-to-client requests waiting for the client, and its SSE streams.
 *
 * Message-level pass-through: the session rewrites only what it must (request
 * ids, namespaced names) and delivers everything else unchanged and in order.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { type Principal, principalKey } from '../auth/principal.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { UpstreamCredentials } from '../credentials/broker.ts';
import { GatehouseError } from '../errors.ts';
import type { Grant, GrantMember } from '../grants/grant.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { ToolDefinition } from '../policy/authorizer.ts';
import {
  idKey,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../protocol/jsonrpc.ts';
import { type ProtocolVersion, supportsPriming } from '../protocol/versions.ts';
import { logAllowed, toModernResponse } from '../rev2026/translate.ts';
import type { MessageFinding, Verdict } from '../sanitize/index.ts';
import type { ProfileResolver } from '../sanitize/profile.ts';
import type { LeakGuard } from '../secrets/leak-guard.ts';
import { CappedMap } from '../util/bounded.ts';
import { PostExchange } from './exchange.ts';
import type { UpstreamLink } from './link.ts';
import { SseStream } from './sse.ts';

/**
 * One message from an upstream on its way to the client (response phase). The session builds it in
 * `serialize` and hands it to the response stages it was given.
 */
export interface ResponseContext {
  msg: JsonRpcMessage;
  /** The serialised message; a stage that empties it drops the message. */
  json: string;
  readonly limits: GatehouseConfig['limits'];
  readonly log: Logger;
  /** Secret values the gateway holds; redact-secrets removes them from the message. */
  readonly leakGuard: LeakGuard;
  /** Told what the leak guard removed (labels and forms, never values): metrics and audit. */
  readonly onRedacted: ((findings: readonly { label: string; form: string }[]) => void) | undefined;
  /** Where the message comes from; undefined for the gateway's own messages (nothing to sanitise). */
  readonly origin: ResponseOrigin | undefined;
  /** The result sanitisers' profiles (config `sanitize`). */
  readonly sanitizer: ProfileResolver;
  /** Told what the result sanitisers found (and did): metrics and audit. */
  readonly onFindings: SanitizerListener | undefined;
  /** Told the read labels (taint) a message to the client carries: the grant keeps them for policy. */
  readonly onTaint: TaintListener | undefined;
}

/** Receives the read labels (taint, `context.read`) of one message to the client and where it came from. */
export type TaintListener = (labels: readonly string[], origin: ResponseOrigin) => void;

/** The upstream a message to the client comes from, and the request it answers (if any). */
export interface ResponseOrigin {
  readonly server: string;
  /** The client request's method for a response; the message's own method otherwise. */
  readonly method: string;
  /** Exposed tool or prompt name, or resource URI, the request named. */
  readonly target: string | undefined;
  /** The tool's definition as last listed, for a tools/call response. */
  readonly tool: ToolDefinition | undefined;
}

/** Receives the result sanitisers' findings for one message and the action taken. */
export type SanitizerListener = (
  findings: readonly MessageFinding[],
  action: Verdict,
  origin: ResponseOrigin,
) => void;

/**
 * A response-phase stage: it may rewrite or drop the message, never reject it. The session only runs
 * them; which stages, in which order, is the pipeline's (`RESPONSE_STAGES`, handed in by the gateway).
 */
export interface ResponseStage {
  readonly name: string;
  readonly run: (ctx: ResponseContext) => void;
}

/**
 * Resource URIs and templates learned from an upstream's lists, per session: an upstream listing
 * millions cannot grow the session past this (the oldest are forgotten; reads then route by template
 * or to the only resource server, as for a URI never listed).
 */
const MAX_LEARNED = 10_000;

/** Server-to-client requests (sampling, elicitation, roots) waiting for the client, per session. */
const MAX_OUTGOING = 256;

/** A client request forwarded upstream and not yet answered. */
export interface FrontCall {
  /** The client's request id; a held 2026-07-28 call takes its retry's (src/rev2026/mrtr.ts). */
  id: JsonRpcId;
  readonly method: string;
  /** Where the answer goes; a held 2026-07-28 call moves to its retry's exchange. */
  exchange: PostExchange;
  link: UpstreamLink | undefined;
  upstreamId: number | undefined;
  timer: NodeJS.Timeout | undefined;
  timeoutMs: number;
  progressToken: string | number | undefined;
  /** Name of the tool/prompt/resource, for logs and later stages. */
  target: string | undefined;
  /** The upstream's name of the tool (tools/call): finds its definition (outputSchema). */
  tool?: string | undefined;
  started: number;
  /** Called once with the final answer (the audit outcome). */
  onDone: ((res: JsonRpcResponse, bytes: number) => void) | undefined;
  /** Set for a 2026-07-28 request: what its `_meta` declared (src/rev2026/mrtr.ts). */
  modern?: ModernCall | undefined;
}

/** What a 2026-07-28 request declared in its `_meta`, kept on its call (src/rev2026/mrtr.ts). */
export interface ModernCall {
  readonly capabilities: Record<string, unknown>;
  readonly logLevel: string | undefined;
  /** The tool, prompt or resource the request names (as the client named it). */
  readonly name: string;
  /** Digest of the request's arguments: a requestState resumes only the same call (src/rev2026/mrtr.ts). */
  readonly digest: string;
  /** The approval the call consumed, if policy held it for one: its retries continue under it. */
  readonly approval?: { id: string; approver: string | undefined; reason: string | undefined } | undefined;
}

/** A server-to-client request waiting for the client's response. */
interface OutgoingRequest {
  link: UpstreamLink;
  upstreamId: JsonRpcId;
}

/** MCP log levels (RFC 5424 severities), least severe first. */
const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
/** One MCP log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** ≥128 bits of randomness (here 192), URL-safe: session ids are unguessable. */
export function newSessionId(): string {
  return randomBytes(24).toString('base64url');
}

export class Session {
  readonly id = newSessionId();
  readonly created = Date.now();
  lastSeen = Date.now();
  protocolVersion: ProtocolVersion;
  clientInfo: Record<string, unknown> = {};
  clientCapabilities: Record<string, unknown> = {};
  readonly links = new Map<string, UpstreamLink>();
  /** Told when the leak guard redacted a message to the client (set by the registry: metrics, audit). */
  onRedacted: ((findings: readonly { label: string; form: string }[]) => void) | undefined;
  /** Told what the result sanitisers found (set by the registry: metrics, audit). */
  onFindings: SanitizerListener | undefined;
  /** Set by the registry: a message to the client carries taint (the grant's read labels grow). */
  onTaint: TaintListener | undefined;
  /** Brokered credentials per upstream (leases of the grant), for upstreams that need them. */
  readonly credentials = new Map<string, UpstreamCredentials>();
  closed: GatehouseError | undefined;
  /** The least severe level of the gateway's own log messages the client wants (logging/setLevel). */
  logLevel: LogLevel | undefined;
  /**
   * MCP 2026-07-28: the grant's pooled session, never shown to a client (src/rev2026/front.ts). Its
   * answers carry no Mcp-Session-Id and are in 2026-07-28 shape; nothing goes to a standalone stream.
   */
  modern = false;
  /** For a pooled session: where its upstreams' server-to-client requests go (src/rev2026/mrtr.ts). */
  inputRequest: ((link: UpstreamLink, msg: JsonRpcRequest) => void) | undefined;
  /** Resolves when `initialize` finished (successfully or not). */
  ready: Promise<void> = Promise.resolve();

  /** Client requests in flight, by idKey. */
  readonly calls = new Map<string, FrontCall>();
  /**
   * Ids (idKey) of every client request accepted and not yet answered, from the moment its POST is
   * accepted (check-ids) until its one response: a second request with the same id is refused instead
   * of silently replacing the first (JSON-RPC 2.0 §4: the response "MUST be the same as the value of the
   * id member in the Request Object").
   */
  private readonly openIds = new Set<string>();
  private readonly byProgress = new Map<string | number, FrontCall>();
  private nextOutgoing = 1;
  private readonly outgoing = new Map<string, OutgoingRequest>();
  /** Resource URI → owning server, learned from list results. */
  readonly resourceOwners = new CappedMap<string, string>(MAX_LEARNED);
  /** Resource template URIs per server, learned from list results. */
  readonly templates = new Map<string, string[]>();

  private streamSeq = 0;
  private readonly streams = new Map<string, SseStream>();
  /** The standalone stream (GET) for messages unrelated to any request; queues while no GET is open. */
  readonly standalone: SseStream;

  /** Tool definitions by server, then upstream tool name, as last listed (argument validation, annotations). */
  readonly toolDefs = new Map<string, Map<string, ToolDefinition>>();

  /** The principal that created the session; the session is bound to it. */
  readonly principalKey: string;
  /** How the grant sees this session; the registry sets `end`. */
  readonly member: GrantMember = {
    busy: () => this.calls.size > 0,
    end: async () => {},
  };

  constructor(
    protocolVersion: ProtocolVersion,
    readonly principal: Principal,
    /** The grant the session runs under: every request is decided against it. */
    readonly grant: Grant,
    readonly log: Logger,
    private readonly limits: GatehouseConfig['limits'],
    private readonly responseStages: readonly ResponseStage[],
    private readonly metrics: GatewayMetrics,
    /** Registered secret values, redacted from everything sent to the client. */
    private readonly leakGuard: LeakGuard,
    /** Result sanitiser profiles (config `sanitize`), for the response stage. */
    private readonly sanitizer: ProfileResolver,
  ) {
    this.protocolVersion = protocolVersion;
    this.principalKey = principalKey(principal);
    this.standalone = this.newStream('g');
  }

  private newStream(prefix: string): SseStream {
    const s = new SseStream(`${prefix}${++this.streamSeq}`, supportsPriming(this.protocolVersion));
    this.streams.set(s.id, s);
    s.onfinish = () => {
      // Keep finished streams briefly for clients that resume after a drop.
      setTimeout(() => {
        this.streams.delete(s.id);
        s.release();
      }, 60_000).unref();
    };
    return s;
  }

  stream(id: string): SseStream | undefined {
    return this.streams.get(id);
  }

  /** An exchange for one POST carrying requests. */
  exchange(res: ServerResponse, isBatch: boolean, clientId?: JsonRpcId): PostExchange {
    if (this.modern) {
      // One request per POST, under a gateway id; the client gets its own id back (src/rev2026/).
      return new PostExchange(res, {}, () => this.newStream('p'), false, clientId);
    }
    return new PostExchange(res, { 'mcp-session-id': this.id }, () => this.newStream('p'), isBatch);
  }

  /**
   * Serialises a message for the client and runs the response phase; an empty `json` means dropped.
   * `origin` says which upstream it comes from (undefined: the gateway's own message).
   */
  serialize(msg: JsonRpcMessage, origin?: ResponseOrigin): { msg: JsonRpcMessage; json: string } {
    const ctx: ResponseContext = {
      msg,
      json: JSON.stringify(msg),
      limits: this.limits,
      log: this.log,
      leakGuard: this.leakGuard,
      onRedacted: this.onRedacted,
      origin,
      sanitizer: this.sanitizer,
      onFindings: this.onFindings,
      onTaint: this.onTaint,
    };
    for (const stage of this.responseStages) {
      stage.run(ctx);
      if (!ctx.json) break;
    }
    return ctx;
  }

  // ---- client → upstream -------------------------------------------------

  /** Whether a request with this id is in flight (accepted, not yet answered). */
  isOpen(id: JsonRpcId): boolean {
    return this.openIds.has(idKey(id));
  }

  /** Marks a request id in flight (and counts it against the grant); the caller checked {@link isOpen} first. */
  claim(id: JsonRpcId): void {
    const key = idKey(id);
    if (this.openIds.has(key)) return;
    this.openIds.add(key);
    this.grant.inflight++;
  }

  /** The request with this id got its response (or will get none): the id may be used again. */
  release(id: JsonRpcId): void {
    this.releaseKey(idKey(id));
  }

  private releaseKey(key: string): void {
    if (this.openIds.delete(key)) this.grant.inflight--;
  }

  /**
   * Whether `id` names a server-to-client request this session sent (it may since have been answered or
   * cancelled): gateway ids are the integers 1 … nextOutgoing - 1.
   */
  issuedOutgoing(id: JsonRpcId | null): boolean {
    return typeof id === 'number' && Number.isSafeInteger(id) && id >= 1 && id < this.nextOutgoing;
  }

  registerCall(call: FrontCall): void {
    this.calls.set(idKey(call.id), call);
    if (call.progressToken !== undefined) this.byProgress.set(call.progressToken, call);
  }

  /** Answers a client request (response phase) and forgets it. */
  answer(call: FrontCall, msg: JsonRpcResponse): void {
    const key = idKey(call.id);
    if (this.calls.get(key) !== call) return; // already answered, cancelled or timed out
    this.calls.delete(key);
    this.releaseKey(key);
    if (call.progressToken !== undefined) this.byProgress.delete(call.progressToken);
    if (call.timer) clearTimeout(call.timer);
    msg.id = call.id;
    if (this.modern) toModernResponse(call.method, msg);
    const server = call.link?.server;
    const out = this.serialize(
      msg,
      server === undefined
        ? undefined
        : {
            server,
            method: call.method,
            target: call.target,
            tool: call.tool === undefined ? undefined : this.toolDefs.get(server)?.get(call.tool),
          },
    );
    if (call.link) {
      const failed =
        out.msg !== msg ||
        'error' in out.msg ||
        (msg.result as { isError?: unknown } | undefined)?.isError === true;
      this.metrics.call(
        call.link.server,
        call.target ?? call.method,
        call.onDone ? 'allow' : 'none', // onDone is set once record-intent recorded the allow
        failed ? 'error' : 'ok',
        (Date.now() - call.started) / 1000,
      );
    }
    call.exchange.deliver(out.msg, out.json);
    // After delivery: the outcome record never delays the answer.
    call.onDone?.(out.msg as JsonRpcResponse, out.json.length);
  }

  /** Restarts a call's timeout clock (progress counts as liveness). */
  armTimeout(call: FrontCall): void {
    if (call.timer) clearTimeout(call.timer);
    // T30: progress keeps a call alive, but never past limits.maxCallMs in total.
    const left = call.started + this.limits.maxCallMs - Date.now();
    const total = left < call.timeoutMs;
    call.timer = setTimeout(
      () => {
        if (call.link && call.upstreamId !== undefined) call.link.abandon(call.upstreamId, 'timeout');
        const why = total ? `limits.maxCallMs (${this.limits.maxCallMs} ms)` : `${call.timeoutMs} ms`;
        this.answer(call, {
          jsonrpc: '2.0',
          id: call.id,
          error: new GatehouseError(
            'upstream_timeout',
            `upstream did not answer ${call.method} within ${why}`,
          ).toJsonRpcError(),
        });
      },
      Math.max(0, Math.min(left, call.timeoutMs)),
    );
  }

  /** notifications/cancelled from the client. */
  cancel(requestId: JsonRpcId, reason: string | undefined): void {
    const call = this.calls.get(idKey(requestId));
    if (!call) return;
    this.calls.delete(idKey(requestId));
    this.releaseKey(idKey(requestId));
    if (call.progressToken !== undefined) this.byProgress.delete(call.progressToken);
    if (call.timer) clearTimeout(call.timer);
    if (call.link && call.upstreamId !== undefined)
      call.link.abandon(call.upstreamId, reason ?? 'cancelled by client');
    call.onDone?.(
      {
        jsonrpc: '2.0',
        id: call.id,
        error: new GatehouseError('request_cancelled', reason).toJsonRpcError(),
      },
      0,
    );
    // "Receivers of a cancellation notification SHOULD NOT send a response".
    call.exchange.abandon(call.id);
  }

  /** The client's response to a server-to-client request. */
  respondToUpstream(msg: JsonRpcResponse): void {
    if (msg.id === null) return;
    const key = idKey(msg.id);
    const out = this.outgoing.get(key);
    if (!out) return;
    this.outgoing.delete(key);
    const fwd: JsonRpcResponse = { jsonrpc: '2.0', id: out.upstreamId };
    if (msg.error) fwd.error = msg.error;
    else fwd.result = msg.result ?? {};
    out.link.notify(fwd).catch(() => {});
  }

  // ---- upstream → client -------------------------------------------------

  /** A request initiated by an upstream (sampling, elicitation, roots). */
  upstreamRequest(link: UpstreamLink, msg: JsonRpcRequest): void {
    if (msg.method === 'ping') {
      // The upstream talks to the gateway; liveness is answered here.
      link.notify({ jsonrpc: '2.0', id: msg.id, result: {} }).catch(() => {});
      return;
    }
    // MCP 2026-07-28: asked through an InputRequiredResult, never as a request to the client.
    if (this.modern) {
      if (this.inputRequest) this.inputRequest(link, msg);
      else
        link
          .notify({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no client to ask' } })
          .catch(() => {});
      return;
    }
    if (this.outgoing.size >= MAX_OUTGOING) {
      // T30: an upstream cannot pile up requests the client never answers; it gets an error at once.
      const err = new GatehouseError(
        'capacity_exceeded',
        `${MAX_OUTGOING} requests to the client are already waiting for an answer`,
      );
      link.notify({ jsonrpc: '2.0', id: msg.id, error: err.toJsonRpcError() }).catch(() => {});
      return;
    }
    const id = this.nextOutgoing++;
    this.outgoing.set(idKey(id), { link, upstreamId: msg.id });
    const fwd: JsonRpcRequest = { jsonrpc: '2.0', id, method: msg.method };
    if (msg.params) fwd.params = msg.params;
    this.toClient(fwd, this.relatedCall(link), link.server);
  }

  upstreamNotification(link: UpstreamLink, msg: JsonRpcNotification): void {
    const params = msg.params;
    switch (msg.method) {
      case 'notifications/progress': {
        const token = params?.progressToken;
        const call =
          typeof token === 'string' || typeof token === 'number' ? this.byProgress.get(token) : undefined;
        if (call && call.link !== link) return; // T10-11: a token is only honoured from the upstream serving that call
        if (call?.timer) this.armTimeout(call);
        this.toClient(msg, call, link.server);
        return;
      }
      case 'notifications/cancelled': {
        // The upstream gave up on one of its server-to-client requests: map its id to ours.
        const upstreamId = params?.requestId;
        for (const [key, out] of this.outgoing) {
          if (out.link === link && out.upstreamId === upstreamId) {
            this.cancelOutgoing(key, params);
            return;
          }
        }
        return;
      }
      case 'notifications/tools/list_changed':
        this.toolDefs.delete(link.server);
        this.toClient(msg, undefined, link.server);
        return;
      case 'notifications/prompts/list_changed':
      case 'notifications/resources/list_changed':
      case 'notifications/resources/updated':
        this.toClient(msg, undefined, link.server);
        return;
      default:
        this.toClient(msg, this.relatedCall(link), link.server);
    }
  }

  /** Withdraws a server-to-client request (by its gateway id key) from the client. */
  private cancelOutgoing(key: string, params: Record<string, unknown> | undefined): void {
    this.outgoing.delete(key);
    const gatewayId = key.startsWith('n') ? Number(key.slice(1)) : key.slice(1);
    this.toClient(
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { ...params, requestId: gatewayId } },
      undefined,
    );
  }

  /**
   * Best effort to keep an upstream message on the stream of the request it
   * belongs to: stdio carries no such relation, so the only call in flight on
   * that link is taken when there is exactly one; otherwise the standalone stream.
   */
  relatedCall(link: UpstreamLink): FrontCall | undefined {
    let found: FrontCall | undefined;
    for (const call of this.calls.values()) {
      if (call.link !== link) continue;
      if (found) return undefined;
      found = call;
    }
    return found;
  }

  /** Delivers a message on the related call's stream, else on the standalone stream (queued if no GET is open). */
  private toClient(msg: JsonRpcMessage, call: FrontCall | undefined, server?: string): void {
    const method = 'method' in msg ? msg.method : '';
    // MCP 2026-07-28: log messages only when the request's _meta asked for them (logLevel).
    if (
      this.modern &&
      method === 'notifications/message' &&
      !logAllowed(call?.modern?.logLevel, (msg as JsonRpcNotification).params)
    )
      return;
    const out = this.serialize(
      msg,
      server === undefined ? undefined : { server, method, target: undefined, tool: undefined },
    );
    if (!out.json) return;
    if (call?.exchange.open) {
      call.exchange.deliver(out.msg, out.json);
      return;
    }
    // MCP 2026-07-28 has no standalone stream: what belongs to no request in flight is dropped.
    if (this.modern) return;
    this.standalone.write(out.json);
  }

  /** A gateway-originated notification to the client (standalone stream), e.g. notifications/elicitation/complete. */
  notify(method: string, params: Record<string, unknown>): void {
    if (this.closed) return;
    this.toClient({ jsonrpc: '2.0', method, params }, undefined);
  }

  /** Sets the least severe level of the gateway's own log messages; ignores anything that is not a level. */
  setLogLevel(level: unknown): void {
    const found = LOG_LEVELS.find((l) => l === level);
    if (found) this.logLevel = found;
  }

  /**
   * A log message from the gateway itself (`notifications/message`, logger `gatehouse`) on the standalone
   * stream, unless the client asked for more severe ones only.
   */
  logToClient(level: LogLevel, data: Record<string, unknown>): void {
    if (this.logLevel && LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(this.logLevel)) return;
    this.notify('notifications/message', { level, logger: 'gatehouse', data });
  }

  /**
   * The upstream behind `link` stopped and is being replaced: the requests it sent the client can no
   * longer be answered to it, so the client is told they are cancelled.
   */
  upstreamRestarting(link: UpstreamLink): void {
    for (const [key, out] of [...this.outgoing]) {
      if (out.link === link) this.cancelOutgoing(key, { reason: `upstream ${link.server} restarted` });
    }
  }

  /**
   * A replacement upstream finished its handshake. What the session learned from the old one (tool
   * definitions, templates) is dropped and learned again; the client is told with a log message and
   * the list changes.
   */
  upstreamRestarted(link: UpstreamLink, reason: GatehouseError): void {
    const server = link.server;
    this.templates.delete(server);
    this.logToClient('warning', {
      upstream: server,
      event: 'upstream_restarted',
      message: `upstream ${server} stopped (${reason.message}) and was restarted for this session; state it held for this session is gone`,
    });
    this.upstreamNotification(link, { jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    if (link.capabilities.prompts !== undefined)
      this.toClient({ jsonrpc: '2.0', method: 'notifications/prompts/list_changed' }, undefined);
    if (link.capabilities.resources !== undefined)
      this.toClient({ jsonrpc: '2.0', method: 'notifications/resources/list_changed' }, undefined);
  }

  /** The link to an upstream ended for good while the session lives: its tools are gone. */
  upstreamEnded(link: UpstreamLink, reason: GatehouseError): void {
    this.logToClient('error', { upstream: link.server, event: 'upstream_ended', message: reason.message });
    this.upstreamNotification(link, { jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
  }

  /**
   * A lease this session's link to `server` uses has ended: its calls in flight are cancelled upstream
   * and answered with `err`; a stdio process holding the credential is stopped (a shared one is left by
   * this session and stops with its last session: the static value it holds is the one the others'
   * live leases hold).
   */
  credentialRevoked(server: string, err: GatehouseError, stopProcess: boolean): void {
    const link = this.links.get(server);
    if (!link) return;
    for (const call of [...this.calls.values()]) {
      if (call.link !== link) continue;
      if (call.upstreamId !== undefined) link.abandon(call.upstreamId, err.message);
      this.answer(call, { jsonrpc: '2.0', id: call.id, error: err.toJsonRpcError() });
    }
    if (stopProcess) void link.close(err);
  }

  // ---- lifecycle ------------------------------------------------------------

  /** Ends the session: answers everything in flight, closes streams and upstreams. */
  async close(reason: GatehouseError): Promise<void> {
    if (this.closed) return;
    this.closed = reason;
    for (const call of [...this.calls.values()]) {
      if (call.link && call.upstreamId !== undefined) call.link.abandon(call.upstreamId, reason.message);
      this.answer(call, { jsonrpc: '2.0', id: call.id, error: reason.toJsonRpcError() });
    }
    for (const s of this.streams.values()) s.close();
    // Requests still in their stages will be refused; the grant (which may outlive this session) stops counting them now.
    for (const key of [...this.openIds]) this.releaseKey(key);
    for (const c of this.credentials.values()) c.release();
    await Promise.all([...this.links.values()].map((l) => l.close(reason)));
  }
}
