/**
 * What the pipeline stages read and write. Stages get plain data and return an
 * outcome; they never call each other.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ApprovalManager } from '../approvals/manager.ts';
import type { AuditRecorder, CallDecision } from '../audit/recorder.ts';
import type { Principal } from '../auth/principal.ts';
import type { ResourceServer } from '../auth/resource-server.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { GatehouseError } from '../errors.ts';
import type { GrantManager } from '../grants/grant.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { Authorizer } from '../policy/authorizer.ts';
import type { Classified, JsonRpcId, JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.ts';
import type { ModernRequest } from '../rev2026/request.ts';
import type { PostExchange } from '../session/exchange.ts';
import type { SessionRegistry } from '../session/registry.ts';
import type { Route, Router } from '../session/router.ts';
import type { Session } from '../session/session.ts';

/** Long-lived parts of the gateway that stages use. */
export interface GatewayParts {
  readonly config: GatehouseConfig;
  readonly registry: SessionRegistry;
  readonly router: Router;
  /** Policy decisions and argument validation. */
  readonly authorizer: Authorizer;
  readonly grants: GrantManager;
  readonly log: Logger;
  /** Prometheus metrics, served at /metrics. */
  readonly metrics: GatewayMetrics;
  /** Stage run times into `gatehouse_stage_duration_seconds` (every request and message stage). */
  readonly observeStage: StageObserver;
  /** The audit log (write-ahead for calls). */
  readonly audit: AuditRecorder;
  /** Approval requests and decisions (stage await-approval). */
  readonly approvals: ApprovalManager | undefined;
  /** MCP 2026-07-28 requests: the grant's pooled session (src/rev2026/front.ts). */
  readonly stateless: StatelessSessions;
  /** Set once the listener knows its public URL; until then every request fails closed. */
  auth: ResourceServer;
  /** False until start-up finished (authorization server and resource server in place): requests get 503. */
  started: boolean;
  /** The embedded authorization server, when auth.mode is embedded (owns /oauth/* and its metadata). */
  authServer?: { handle(req: IncomingMessage, res: ServerResponse): boolean };
  /** The per-user connection flow at /connect/*, when a credential of type oauth-user is configured. */
  connect?: { handle(req: IncomingMessage, res: ServerResponse): boolean };
  /** The admin API and console at /admin/* (src/admin/), when enabled and a login is configured. */
  admin?: { handle(req: IncomingMessage, res: ServerResponse): boolean };
  /**
   * Cluster mode (src/cluster/): takes a request for a session another replica owns (true when it
   * did); reports the bus for /readyz.
   */
  cluster?: {
    route(req: IncomingMessage, res: ServerResponse, local: () => void): boolean;
    /** Whether `req` came from another replica over a verified hop (it checked Host and Origin). */
    forwarded(req: IncomingMessage): boolean;
    status(): { kind: string; replica: string; connected: boolean };
  };
  /** Host header values accepted (lower-case, with and without port). */
  readonly allowedHosts: ReadonlySet<string>;
  /** Origin header values accepted (exact). */
  readonly allowedOrigins: ReadonlySet<string>;
}

/** Sessionless (MCP 2026-07-28) requests onto their grant's pooled session; src/rev2026/front.ts implements it. */
export interface StatelessSessions {
  resolve(
    gw: Pick<GatewayParts, 'registry' | 'router'>,
    principal: Principal,
    modern: ModernRequest,
  ): Promise<Session | GatehouseError>;
  /** The server/discover result of a pooled session. */
  discover(session: Session): Promise<Record<string, unknown>>;
}

/** One HTTP exchange on /mcp. */
export interface HttpContext {
  readonly gw: GatewayParts;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  log: Logger;
  body: Buffer | undefined;
  messages: Classified[];
  isBatch: boolean;
  /** The id a transport-level refusal answers with, when a stage decided it (parse-message); else the first request's. */
  answerId: JsonRpcId | null | undefined;
  session: Session | undefined;
  /** Set by check-revision for an MCP 2026-07-28 request (sessionless); undefined for 2025-xx ones. */
  modern?: ModernRequest | undefined;
  /** Who is calling (set by authenticate). */
  principal: Principal | undefined;
  /** Stage timings for trace spans; undefined unless observability.tracing is on. */
  stageLog: StageLog | undefined;
}

/** How a routed request is served. */
export type Target = { kind: 'local' } | ({ kind: 'upstream' } & Route);

/** One client request moving through the message stages. */
export interface MessageContext {
  readonly http: HttpContext;
  readonly session: Session;
  readonly msg: JsonRpcRequest;
  readonly exchange: PostExchange;
  target: Target | undefined;
  /** Stage timings for trace spans; undefined unless observability.tracing is on. */
  stageLog: StageLog | undefined;
  /** Set by authorize: the decision and the policies behind it (audit, traces). */
  decision: CallDecision | undefined;
  /** Set by lease-credential: the leases the call's credentials come from (audit). */
  leases: readonly { id: string; credential: string; expiresAt: number }[] | undefined;
  /** Set by record-intent: called with the final answer (and its size) to append the outcome. */
  onDone: ((res: JsonRpcResponse, bytes: number) => void) | undefined;
}

/** Receives each stage's run time (seconds) and context; async stages are timed until they settle. */
export type StageObserver = (stage: string, seconds: number, ctx: { stageLog: StageLog | undefined }) => void;

/** When tracing is on: each stage that ran, with its start and end (epoch ms, sub-ms precision). */
export type StageLog = [stage: string, start: number, end: number][];

/** A stage's verdict: continue (undefined), reject with a typed error, or done (the stage answered). */
export type Outcome = undefined | GatehouseError | 'done';

/** A request- or message-phase stage (one row of a table in `order.ts`); run by `runStages`. */
export interface Stage<C> {
  readonly name: string;
  readonly run: (ctx: C) => Outcome | Promise<Outcome>;
}
