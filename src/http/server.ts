/**
 * The HTTP adapter: MCP Streamable HTTP at /mcp, /healthz and /readyz; it hands /admin/* to the
 * console (src/admin/), /connect/* and the authorization server to theirs.
 * Thin: it runs the pipeline tables from pipeline/order.ts and writes answers.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { GatehouseError } from '../errors.ts';
import type { GatewayParts, HttpContext, MessageContext, Outcome } from '../pipeline/context.ts';
import { MESSAGE_STAGES, REQUEST_STAGES, STREAM_STAGES } from '../pipeline/order.ts';
import { runStages } from '../pipeline/run.ts';
import { errorResponse, idKey, type JsonRpcId, type JsonRpcNotification } from '../protocol/jsonrpc.ts';
import type { Session } from '../session/session.ts';
import { parseEventId } from '../session/sse.ts';
import { checkHost } from '../stages/check-origin.ts';
import { clip } from '../util/clip.ts';

export interface HttpServerHooks {
  /** Readiness of every upstream (for /readyz). */
  ready(): Promise<Record<string, boolean>>;
  /** Readiness of the store (for /readyz): a round trip to PostgreSQL; SQLite is always ready. */
  store?(): Promise<{ kind: string; ok: boolean; error?: string }>;
}

export function createHttpServer(gw: GatewayParts, hooks: HttpServerHooks): http.Server {
  const limits = gw.config.limits;
  // T31: one set of edge limits for every route (/mcp, the authorization server, /connect, metadata).
  // Node answers a head over maxHeaderSize with 431 and a request not received in time with 408 and
  // closes the connection. requestTimeout bounds receiving the request (head and body) only: a long
  // SSE response starts after it is complete.
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.bodyTimeoutMs,
      // How often those timeouts are checked (Node's default, 30 s, would let a stalled body linger).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    (req, res) => {
      const path = req.url?.split('?', 1)[0];
      // Nothing is served half-started: /healthz reports it, everything else fails closed.
      if (path === '/healthz' && req.method === 'GET') {
        return sendJson(res, gw.started ? 200 : 503, { status: gw.started ? 'ok' : 'starting' });
      }
      if (!gw.started) return sendError(res, new GatehouseError('starting'), null);
      if (path === '/mcp') {
        // Cluster mode: a request for a session another replica owns goes there (src/cluster/route.ts).
        if (gw.cluster?.route(req, res, () => handleMcp(gw, req, res))) return;
        return handleMcp(gw, req, res);
      }
      // DNS rebinding: every other path (metadata, the authorization server) checks Host too.
      const hostError = path === '/readyz' ? undefined : checkHost(gw, req);
      if (hostError) return sendError(res, hostError, null);
      if (path?.startsWith('/.well-known/oauth-protected-resource') && gw.auth.mode !== 'none') {
        // RFC 9728 §3: path-inserted form for /mcp and the root form both describe the one resource.
        if (path === '/.well-known/oauth-protected-resource' || gw.auth.metadataUrl.endsWith(path)) {
          if (req.method !== 'GET') return sendError(res, new GatehouseError('method_not_allowed'), null);
          res.setHeader('access-control-allow-origin', '*');
          return sendJson(res, 200, gw.auth.metadata());
        }
      }
      if (path === '/metrics' && req.method === 'GET') {
        // Operational counters only (no principals, tokens or arguments in labels); Host-checked above.
        void gw.metrics.render().then((m) => {
          res.writeHead(200, { 'content-type': m.contentType });
          res.end(m.body);
        });
        return;
      }
      if (path === '/readyz' && req.method === 'GET') {
        void Promise.all([hooks.ready(), hooks.store?.()]).then(([upstreams, store]) => {
          const bus = gw.cluster?.status();
          const ok =
            Object.values(upstreams).every(Boolean) && store?.ok !== false && (bus?.connected ?? true);
          // The store's kind and state only: a driver's message can name hosts, so it stays in the logs.
          const storeState = store && { kind: store.kind, ok: store.ok };
          sendJson(res, ok ? 200 : 503, {
            status: ok ? 'ready' : 'not ready',
            upstreams,
            store: storeState,
            ...(bus ? { bus } : {}),
          });
        });
        return;
      }
      // The console refuses any Authorization header itself: an agent's bearer token never reaches it.
      if (gw.admin?.handle(req, res)) return;
      if (gw.connect?.handle(req, res)) return;
      if (gw.authServer?.handle(req, res)) return;
      sendError(res, new GatehouseError('not_found'), null);
    },
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  limitConnectionsPerAddress(server, limits.maxConnectionsPerAddress);
  return server;
}

/** The answer to a connection over limits.maxConnectionsPerAddress, before it is closed. */
const TOO_MANY_CONNECTIONS =
  'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 47\r\n\r\ntoo many connections from this address; retry\r\n';

/**
 * At most `max` open connections per client address (T30): more are answered 503 and closed. The table
 * holds only addresses with an open connection, so it is bounded by the open connections themselves.
 */
function limitConnectionsPerAddress(server: http.Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const addr = socket.remoteAddress ?? '';
    const n = (open.get(addr) ?? 0) + 1;
    if (n > max) {
      socket.end(TOO_MANY_CONNECTIONS);
      socket.destroySoon();
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
  });
}

function handleMcp(gw: GatewayParts, req: IncomingMessage, res: ServerResponse): void {
  const requestId = randomUUID();
  const ctx: HttpContext = {
    gw,
    req,
    res,
    requestId,
    log: gw.log,
    body: undefined,
    messages: [],
    isBatch: false,
    answerId: undefined,
    session: undefined,
    principal: undefined,
    stageLog: gw.config.observability.tracing ? [] : undefined,
  };
  let stages = REQUEST_STAGES;
  let then: (ctx: HttpContext) => void;
  switch (req.method) {
    case 'POST':
      then = handlePost;
      break;
    case 'GET':
      stages = STREAM_STAGES;
      then = handleGet;
      break;
    case 'DELETE':
      stages = STREAM_STAGES;
      then = handleDelete;
      break;
    default:
      res.setHeader('allow', 'GET, POST, DELETE');
      sendError(res, new GatehouseError('method_not_allowed'), null);
      return;
  }
  const out = runStages(stages, ctx, ctx.gw.observeStage);
  if (out instanceof Promise) void out.then((o) => finish(ctx, o, then));
  else finish(ctx, out, then);
}

function finish(ctx: HttpContext, out: Outcome, then: (ctx: HttpContext) => void): void {
  if (out === undefined) {
    then(ctx);
    return;
  }
  if (out instanceof GatehouseError) {
    logReject(ctx, out);
    const first = ctx.messages[0];
    const id =
      ctx.answerId !== undefined
        ? ctx.answerId
        : !ctx.isBatch && first && first.kind !== 'invalid' && 'id' in first.msg
          ? (first.msg.id ?? null)
          : null;
    sendError(ctx.res, out, id);
  }
}

const AUTH_FAILURES = new Set(['unauthorized', 'invalid_token', 'insufficient_scope', 'auth_unavailable']);

function logReject(ctx: HttpContext, e: GatehouseError): void {
  if (AUTH_FAILURES.has(e.code)) {
    ctx.gw.metrics.authFailure(e.code);
    // Address, User-Agent and the token's unverified iss/kid (hashed) sample anonymous failures, which the audit counts per window.
    ctx.gw.audit.authFailed(ctx.requestId, e.code, e.detail, ctx.principal, {
      address: ctx.req.socket.remoteAddress,
      userAgent: ctx.req.headers['user-agent'],
      authorization: ctx.req.headers.authorization,
    });
  }
  const level = e.httpStatus >= 500 ? 'error' : 'info';
  ctx.log[level](
    { requestId: ctx.requestId, session: ctx.session?.id, code: e.code, stage: e.stage, detail: e.detail },
    // Some messages name what the client sent (a tool, a method): bounded like every log field.
    clip(e.message, 1024),
  );
}

function handlePost(ctx: HttpContext): void {
  const session = ctx.session as Session;
  const requests: MessageContext[] = [];
  const pending: Promise<void>[] = [];
  const exchange = session.exchange(ctx.res, ctx.isBatch, ctx.modern?.clientId);
  for (const m of ctx.messages) {
    switch (m.kind) {
      case 'request':
        exchange.expect(m.msg.id);
        requests.push({
          http: ctx,
          session,
          msg: m.msg,
          exchange,
          target: undefined,
          stageLog: ctx.stageLog ? [] : undefined,
          decision: undefined,
          leases: undefined,
          onDone: undefined,
        });
        break;
      case 'notification':
        // MCP 2026-07-28 defines no client notifications over HTTP: accepted, never forwarded to the
        // upstream session the grant's requests share.
        if (!session.modern) pending.push(clientNotification(session, m.msg));
        break;
      case 'response':
        session.respondToUpstream(m.msg);
        break;
      case 'invalid':
        break; // parse-message rejects bodies with invalid elements
    }
  }
  if (requests.length === 0) {
    // "If the input consists solely of JSON-RPC responses or notifications [...] the server MUST return 202 Accepted."
    // ORDER: answer only after the upstreams accepted the notifications, so the client's next request cannot overtake them.
    void Promise.allSettled(pending).then(() => {
      ctx.res.writeHead(202, session.modern ? {} : { 'mcp-session-id': session.id }).end();
    });
    return;
  }
  for (const mctx of requests) {
    const out = runStages(MESSAGE_STAGES, mctx, ctx.gw.observeStage);
    if (out instanceof Promise) void out.then((o) => rejectMessage(mctx, o));
    else rejectMessage(mctx, out);
  }
}

function rejectMessage(mctx: MessageContext, out: Outcome): void {
  if (!(out instanceof GatehouseError)) return;
  logReject(mctx.http, out);
  const { session, msg } = mctx;
  const call = session.calls.get(idKey(msg.id));
  const response = errorResponse(msg.id, out.toJsonRpcError());
  if (call) session.answer(call, response);
  else {
    session.release(msg.id);
    const ser = session.serialize(response);
    mctx.exchange.deliver(ser.msg, ser.json);
  }
}

/** Client notifications: cancellation is mapped, everything else reaches every upstream. */
async function clientNotification(session: Session, msg: JsonRpcNotification): Promise<void> {
  await session.ready;
  if (msg.method === 'notifications/cancelled') {
    const id = msg.params?.requestId;
    if (typeof id === 'string' || typeof id === 'number') {
      session.cancel(id, typeof msg.params?.reason === 'string' ? msg.params.reason : undefined);
    }
    return;
  }
  const links = [...session.links.values()].filter((l) => l.alive);
  await Promise.allSettled(links.map((l) => l.notify(msg)));
  if (msg.method === 'notifications/initialized') {
    for (const l of links) l.transport.initialized?.(l.protocolVersion ?? session.protocolVersion);
  }
}

function handleGet(ctx: HttpContext): void {
  const session = ctx.session as Session;
  const last = ctx.req.headers['last-event-id'];
  const headers = { 'mcp-session-id': session.id };
  if (typeof last === 'string' && last.length > 0) {
    // Resumption: replay what the stream sent after that event, then continue on this connection.
    const parsed = parseEventId(last);
    const stream = parsed ? session.stream(parsed.streamId) : undefined;
    if (!parsed || !stream) {
      sendError(ctx.res, new GatehouseError('invalid_request', 'unknown Last-Event-ID'), null);
      return;
    }
    stream.attach(ctx.res, headers, parsed.seq);
    return;
  }
  if (session.standalone.attached) {
    sendError(ctx.res, new GatehouseError('stream_conflict'), null);
    return;
  }
  session.standalone.attach(ctx.res, headers);
}

function handleDelete(ctx: HttpContext): void {
  const session = ctx.session as Session;
  void ctx.gw.registry
    .end(session, new GatehouseError('session_closed', 'session ended by the client'))
    .then(() => {
      ctx.res.writeHead(200, { 'mcp-session-id': session.id }).end();
    });
}

/** A JSON answer with its length. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

/** Transport-level failure: HTTP status from the error table, JSON-RPC error body. */
export function sendError(res: ServerResponse, e: GatehouseError, id: JsonRpcId | null): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (e.headers) for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  sendJson(res, e.httpStatus, errorResponse(id, e.toJsonRpcError()));
}
