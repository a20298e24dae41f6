/**
 * Any replica takes any request: a request for an MCP session another replica owns is forwarded there
 * over an authenticated internal hop, its response (JSON or SSE) streamed back as it comes.
 *
 * The hop: the receiving replica adds `gatehouse-hop: v1.<unix ms>.<from>.<hmac>`, HMAC-SHA256 under
 * the shared cluster secret (`bus.secret`) over the time, the sending replica, the method, the path and
 * the session id. The owner accepts a request carrying that header only when the MAC is valid and the
 * time within ±30 s, and then never forwards it again (no loops); a forged or stale header is refused
 * with 403 `cluster_hop_forbidden` before anything else runs. The hop proves nothing about the caller:
 * the owner authenticates the bearer token and checks the session's principal as for any request
 * (a session id never authenticates, T10-11). Replicas reach each other at `bus.advertiseUrl`, an
 * address the load balancer does not route to (docs/deploy.md).
 *
 * Sessionless requests (initialize, and MCP 2026-07-28 requests without `Mcp-Session-Id`) are served
 * where they land. When the owner is gone (crashed, drained), the session is gone with it: the client
 * gets 404 `session_not_found` and initializes again, as the specification says.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { GatehouseError } from '../errors.ts';
import { errorResponse } from '../protocol/jsonrpc.ts';
import type { ClusterBus } from './bus.ts';

export const HOP_HEADER = 'gatehouse-hop';
const HOP_WINDOW_MS = 30_000;
/** Headers that belong to one connection (RFC 9110 §7.6.1), not to the forwarded message. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-authenticate',
  HOP_HEADER,
]);

export interface ClusterRouterOptions {
  bus: ClusterBus;
  secret: string;
  log: Logger;
  /** Whether this replica holds the session (a live session of its registry). */
  hasSession(id: string): boolean;
  /** This replica's Host and Origin check (stage check-origin), run before forwarding. */
  checkOrigin(req: IncomingMessage): GatehouseError | undefined;
}

/** The HMAC of one hop. */
export function hopMac(
  secret: string,
  at: string,
  from: string,
  method: string,
  path: string,
  session: string,
): string {
  return createHmac('sha256', secret)
    .update(`v1\n${at}\n${from}\n${method}\n${path}\n${session}`)
    .digest('base64url');
}

export class ClusterRouter {
  /** Sockets to the other replicas, kept alive (SSE streams hold one each while open). */
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  readonly stats = { forwarded: 0, ownerGone: 0, hopsAccepted: 0, hopsRefused: 0 };
  /** Requests that arrived over a verified hop (check-origin skips them: the sender checked). */
  private readonly verified = new WeakSet<IncomingMessage>();
  /** Forwarded requests (not GET streams) whose response has not ended: a drain waits for them. */
  private inFlight = 0;

  constructor(private readonly o: ClusterRouterOptions) {}

  /**
   * Takes the request when it belongs elsewhere or carries a bad hop header: true when it did (then it
   * answers, or calls `local` once it knows the request is this replica's after all).
   */
  route(req: IncomingMessage, res: ServerResponse, local: () => void): boolean {
    const hop = req.headers[HOP_HEADER];
    if (hop !== undefined) {
      if (this.verifyHop(req, hop)) {
        this.stats.hopsAccepted++;
        this.verified.add(req);
        return false;
      }
      this.stats.hopsRefused++;
      this.o.log.warn(
        { address: req.socket.remoteAddress },
        'forwarded request with a bad hop header refused',
      );
      send(res, new GatehouseError('cluster_hop_forbidden'));
      return true;
    }
    const sid = req.headers['mcp-session-id'];
    if (typeof sid !== 'string' || sid.length === 0 || sid.length > 256 || this.o.hasSession(sid))
      return false;
    // DNS rebinding (T12): Host and Origin are checked here, against what this replica accepts; the
    // owner trusts the hop for them (its own names and ports differ).
    const originError = this.o.checkOrigin(req);
    if (originError) {
      send(res, originError);
      return true;
    }
    this.o.bus.sessionOwner(sid).then(
      (owner) => {
        if (!owner || owner.replica === this.o.bus.replicaId) return local();
        this.forward(req, res, owner.url, sid);
      },
      (err: unknown) => {
        // Redis unreachable: the session may live elsewhere; answering 404 would end it for the client.
        this.o.log.error({ err: (err as Error).message }, 'session directory unavailable');
        send(res, new GatehouseError('cluster_unavailable'));
      },
    );
    return true;
  }

  private verifyHop(req: IncomingMessage, hop: string | string[]): boolean {
    if (typeof hop !== 'string') return false;
    const parts = hop.split('.');
    if (parts.length !== 4 || parts[0] !== 'v1') return false;
    const [, at = '', from = '', mac = ''] = parts;
    const t = Number(at);
    if (!Number.isSafeInteger(t) || Math.abs(Date.now() - t) > HOP_WINDOW_MS) return false;
    const sid = req.headers['mcp-session-id'];
    const expected = Buffer.from(
      hopMac(this.o.secret, at, from, req.method ?? '', req.url ?? '', typeof sid === 'string' ? sid : ''),
    );
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private forward(req: IncomingMessage, res: ServerResponse, base: string, sid: string): void {
    const target = new URL(req.url ?? '/mcp', base);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers))
      if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    const at = String(Date.now());
    const from = this.o.bus.replicaId;
    headers[HOP_HEADER] =
      `v1.${at}.${from}.${hopMac(this.o.secret, at, from, req.method ?? '', req.url ?? '', sid)}`;
    const remote = req.socket.remoteAddress;
    if (remote) headers['x-forwarded-for'] = remote;
    this.stats.forwarded++;
    const counted = req.method !== 'GET';
    if (counted) this.inFlight++;
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      if (counted) this.inFlight--;
    };
    res.once('close', finished);
    const out = http.request(target, { method: req.method, headers, agent: this.agent });
    let answered = false;
    out.on('response', (up) => {
      answered = true;
      const h: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) h[k] = v;
      res.writeHead(up.statusCode ?? 502, h);
      // SSE: every event is written as it arrives (no buffering here).
      res.flushHeaders();
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) {
        res.destroy();
        return;
      }
      // The owner is gone (connection refused, reset before answering): so is the session.
      this.stats.ownerGone++;
      this.o.log.warn(
        { session: sid, owner: base, err: err.code ?? err.message },
        'session owner unreachable',
      );
      void this.o.bus.releaseSession(sid).catch(() => {});
      // Not `local()`: the body is spent. Before authentication, as a stale id gets nothing but 404.
      if (!res.headersSent) send(res, new GatehouseError('session_not_found'));
      else res.destroy();
    });
    // The client went away: so does the forwarded request (and the owner's stream with it).
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
    });
    req.pipe(out);
  }

  /** Whether `req` arrived over a verified hop. */
  forwarded(req: IncomingMessage): boolean {
    return this.verified.has(req);
  }

  /**
   * Waits (bounded) until the forwarded requests in flight are answered, so a replica that drains
   * does not cut the calls it carries for other replicas' sessions; GET streams are not waited for
   * (the client resumes them through another replica).
   */
  async drain(deadline: number): Promise<void> {
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  close(): void {
    this.agent.destroy();
  }
}

function send(res: ServerResponse, e: GatehouseError): void {
  const text = JSON.stringify(errorResponse(null, e.toJsonRpcError()));
  res.writeHead(e.httpStatus, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}
