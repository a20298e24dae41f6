/**
 * Typed error codes and their one-to-one mapping to the wire.
 *
 * Every failure the gateway reports has a code from {@link ERRORS}. The table is
 * the single source of truth for the HTTP status, the JSON-RPC error code and the
 * public description; `docs/errors.md` is generated from it and a test fails
 * when the two drift. The private `detail` of a {@link GatehouseError} goes to
 * logs only, never to the client.
 */

/** JSON-RPC 2.0 and MCP error codes used on the wire. */
export const JsonRpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** MCP: resource not found. */
  ResourceNotFound: -32002,
  /** Gatehouse server-defined range (-32000..-32099). */
  AuditUnavailable: -32017,
  UpstreamUnavailable: -32010,
  UpstreamTimeout: -32011,
  UpstreamFailed: -32012,
  ResultTooLarge: -32013,
  /** Result sanitisers (src/stages/sanitize-result.ts): a finding whose configured action is block. */
  ResultBlocked: -32030,
  SessionClosed: -32014,
  CapacityExceeded: -32015,
  RequestCancelled: -32016,
  /** Least privilege (src/stages/authorize.ts): distinct from "not found" and from invalid params. */
  ToolNotPermitted: -32020,
  ApprovalRequired: -32021,
  GrantEnded: -32022,
  GrantRefused: -32023,
  /** Credential broker (src/credentials/). */
  CredentialRevoked: -32024,
  CredentialUnavailable: -32025,
  ConnectionRequired: -32026,
  /** Approvals (src/approvals/): each carries data.approval, the request's id. */
  ApprovalPending: -32027,
  ApprovalDenied: -32028,
  ApprovalExpired: -32029,
  /** MCP 2025-11-25: URL-mode elicitation required (data.elicitations). */
  UrlElicitationRequired: -32042,
  /** Tool-definition pinning (src/definitions/): a definition not approved (new or changed). */
  ToolQuarantined: -32031,
  /**
   * MCP 2026-07-28 (src/rev2026/): protocol-defined codes. They reuse numbers of Gatehouse's own range
   * (-32020 ToolNotPermitted, -32021 ApprovalRequired, -32022 GrantEnded); `data.gatehouse` tells them
   * apart, and they are only ever sent to 2026-07-28 requests.
   */
  HeaderMismatch: -32020,
  MissingRequiredClientCapability: -32021,
  UnsupportedProtocolVersion: -32022,
} as const;

interface ErrorSpec {
  /** HTTP status when the error ends the HTTP exchange (transport-level errors). */
  readonly http: number;
  /** JSON-RPC error code when the error answers one JSON-RPC request. */
  readonly jsonrpc: number;
  /** Which pipeline stage (or component) produces it. */
  readonly stage: string;
  /** Public, client-visible description. */
  readonly description: string;
}

/**
 * The closed set of error codes. Adding a code here forces the compiler to
 * check every exhaustive switch over {@link ErrorCode}.
 */
export const ERRORS = {
  origin_forbidden: {
    http: 403,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'check-origin',
    description: 'the Origin header names an origin that is not allowed',
  },
  host_forbidden: {
    http: 403,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'check-origin',
    description: 'the Host header names a host that is not allowed',
  },
  unauthorized: {
    http: 401,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'authenticate',
    description:
      'authentication required: send an access token issued for this gateway (Authorization: Bearer)',
  },
  invalid_token: {
    http: 401,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'authenticate',
    description: 'the access token is invalid, expired, revoked, or not issued for this gateway',
  },
  auth_unavailable: {
    http: 503,
    jsonrpc: JsonRpcCode.InternalError,
    stage: 'authenticate',
    description:
      'tokens cannot be validated right now (signing keys or introspection unreachable); request refused',
  },
  insufficient_scope: {
    http: 403,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'check-scope',
    description:
      'the access token lacks a scope this request needs; obtain a token with the scopes in WWW-Authenticate',
  },
  method_not_allowed: {
    http: 405,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'http',
    description: 'this HTTP method is not supported on this path',
  },
  not_found: {
    http: 404,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'http',
    description: 'no such path',
  },
  not_acceptable: {
    http: 406,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'check-protocol',
    description:
      'the Accept header must list both application/json and text/event-stream (POST) or text/event-stream (GET)',
  },
  unsupported_media_type: {
    http: 415,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'check-protocol',
    description: 'the Content-Type must be application/json',
  },
  unsupported_protocol_version: {
    http: 400,
    jsonrpc: JsonRpcCode.UnsupportedProtocolVersion,
    stage: 'check-revision',
    description:
      'the MCP-Protocol-Version header (or the request _meta) names a version this gateway does not support; data.supported lists those it does',
  },
  header_mismatch: {
    http: 400,
    jsonrpc: JsonRpcCode.HeaderMismatch,
    stage: 'check-revision',
    description:
      'a required MCP 2026-07-28 header (MCP-Protocol-Version, Mcp-Method, Mcp-Name) is missing, malformed or differs from the body',
  },
  request_meta_invalid: {
    http: 400,
    jsonrpc: JsonRpcCode.InvalidParams,
    stage: 'check-revision',
    description:
      'an MCP 2026-07-28 request must carry io.modelcontextprotocol/protocolVersion and clientCapabilities in params._meta',
  },
  method_unavailable: {
    http: 404,
    jsonrpc: JsonRpcCode.MethodNotFound,
    stage: 'check-revision',
    description:
      'the method does not exist in MCP 2026-07-28 (initialize, ping, logging/setLevel, resources/subscribe, ...) or is unknown',
  },
  request_state_invalid: {
    http: 400,
    jsonrpc: JsonRpcCode.InvalidParams,
    stage: 'forward-message',
    description:
      'the requestState is not one this gateway issued for this caller and request, or it was already used or expired',
  },
  missing_client_capability: {
    http: 400,
    jsonrpc: JsonRpcCode.MissingRequiredClientCapability,
    stage: 'forward-message',
    description:
      'the upstream needs a client capability (sampling, elicitation, roots) the request did not declare; data.requiredCapabilities names it',
  },
  body_too_large: {
    http: 413,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'read-body',
    description: 'the request body exceeds limits.maxRequestBytes',
  },
  parse_error: {
    http: 400,
    jsonrpc: JsonRpcCode.ParseError,
    stage: 'parse-message',
    description: 'the request body is not valid JSON',
  },
  invalid_request: {
    http: 400,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'parse-message',
    description: 'the message is not a valid JSON-RPC 2.0 request, notification or response',
  },
  batch_not_supported: {
    http: 400,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'parse-message',
    description: 'batches are not allowed in this protocol revision (removed in 2025-06-18)',
  },
  session_required: {
    http: 400,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'resolve-session',
    description: 'the mcp-session-id header is required after initialization',
  },
  session_not_found: {
    http: 404,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'resolve-session',
    description: 'the session does not exist or has ended; start a new one with initialize',
  },
  already_initialized: {
    http: 400,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'resolve-session',
    description: 'initialize must be sent without a session id, once per session',
  },
  stream_conflict: {
    http: 409,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'resolve-session',
    description: 'a standalone SSE stream is already open for this session',
  },
  capacity_exceeded: {
    http: 503,
    jsonrpc: JsonRpcCode.CapacityExceeded,
    stage: 'resolve-session',
    description:
      'a capacity limit was reached (sessions, upstream processes, or requests in flight per grant); retry later',
  },
  method_not_found: {
    http: 200,
    jsonrpc: JsonRpcCode.MethodNotFound,
    stage: 'route-message',
    description: 'the method is not supported by any upstream behind this gateway',
  },
  invalid_params: {
    http: 200,
    jsonrpc: JsonRpcCode.InvalidParams,
    stage: 'route-message',
    description: 'the request parameters are missing or malformed',
  },
  unknown_tool: {
    http: 200,
    jsonrpc: JsonRpcCode.InvalidParams,
    stage: 'route-message',
    description: 'no upstream behind this gateway offers a tool of that name',
  },
  unknown_prompt: {
    http: 200,
    jsonrpc: JsonRpcCode.InvalidParams,
    stage: 'route-message',
    description: 'no upstream behind this gateway offers a prompt of that name',
  },
  unknown_resource: {
    http: 200,
    jsonrpc: JsonRpcCode.ResourceNotFound,
    stage: 'route-message',
    description: 'no upstream behind this gateway offers that resource',
  },
  invalid_cursor: {
    http: 200,
    jsonrpc: JsonRpcCode.InvalidParams,
    stage: 'route-message',
    description: 'the pagination cursor was not issued by this gateway',
  },
  upstream_unavailable: {
    http: 502,
    jsonrpc: JsonRpcCode.UpstreamUnavailable,
    stage: 'forward-message',
    description: 'the upstream server could not be reached or is not running',
  },
  upstream_timeout: {
    http: 504,
    jsonrpc: JsonRpcCode.UpstreamTimeout,
    stage: 'forward-message',
    description: 'the upstream server did not answer within limits.callTimeoutMs',
  },
  upstream_failed: {
    http: 502,
    jsonrpc: JsonRpcCode.UpstreamFailed,
    stage: 'forward-message',
    description: 'the upstream server failed while handling the request',
  },
  result_too_large: {
    http: 502,
    jsonrpc: JsonRpcCode.ResultTooLarge,
    stage: 'limit-result',
    description: 'the upstream result exceeds limits.maxResultBytes',
  },
  result_blocked: {
    http: 502,
    jsonrpc: JsonRpcCode.ResultBlocked,
    stage: 'sanitize-result',
    description:
      'the upstream result was withheld: a result sanitiser found content the configuration blocks',
  },
  request_cancelled: {
    http: 200,
    jsonrpc: JsonRpcCode.RequestCancelled,
    stage: 'forward-message',
    description: 'the request was cancelled',
  },
  audit_unavailable: {
    http: 503,
    jsonrpc: JsonRpcCode.AuditUnavailable,
    stage: 'record-intent',
    description: 'the audit log cannot record this call, so it is refused (fail closed)',
  },
  session_closed: {
    http: 404,
    jsonrpc: JsonRpcCode.SessionClosed,
    stage: 'lifecycle',
    description: 'the session ended while the request was in flight',
  },
  starting: {
    http: 503,
    jsonrpc: JsonRpcCode.SessionClosed,
    stage: 'lifecycle',
    description: 'the gateway is starting; retry shortly',
  },
  shutting_down: {
    http: 503,
    jsonrpc: JsonRpcCode.SessionClosed,
    stage: 'lifecycle',
    description: 'the gateway is shutting down',
  },
  cluster_hop_forbidden: {
    http: 403,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'cluster',
    description: 'the request carries a forwarding header between replicas that is not valid',
  },
  cluster_unavailable: {
    http: 503,
    jsonrpc: JsonRpcCode.SessionClosed,
    stage: 'cluster',
    description: 'the cluster bus cannot be reached to find the replica that holds this session; retry',
  },
  tool_not_permitted: {
    http: 403,
    jsonrpc: JsonRpcCode.ToolNotPermitted,
    stage: 'authorize',
    description:
      'this call is outside the grant or denied by policy; quote data.reference to find the audit record',
  },
  approval_required: {
    http: 403,
    jsonrpc: JsonRpcCode.ApprovalRequired,
    stage: 'authorize',
    description:
      'policy requires a human approval for this call and no approval is available; quote data.reference',
  },
  approval_pending: {
    http: 403,
    jsonrpc: JsonRpcCode.ApprovalPending,
    stage: 'await-approval',
    description:
      'the call waits for a human approval (data.approval) that was not given in time; retry the identical call later to use it once approved',
  },
  approval_denied: {
    http: 403,
    jsonrpc: JsonRpcCode.ApprovalDenied,
    stage: 'await-approval',
    description: 'an approver denied this call (data.approval names the request)',
  },
  approval_expired: {
    http: 403,
    jsonrpc: JsonRpcCode.ApprovalExpired,
    stage: 'await-approval',
    description:
      'the approval request for this call (data.approval) expired before it was decided or used; call again for a new one',
  },
  invalid_arguments: {
    http: 200,
    jsonrpc: JsonRpcCode.InvalidParams,
    stage: 'authorize',
    description: "the tool arguments do not match the tool's inputSchema",
  },
  grant_ended: {
    http: 403,
    jsonrpc: JsonRpcCode.GrantEnded,
    stage: 'resolve-session',
    description: 'the grant this request ran under has ended (revoked, expired, idle or its session closed)',
  },
  grant_refused: {
    http: 403,
    jsonrpc: JsonRpcCode.GrantRefused,
    stage: 'resolve-session',
    description: 'no grant can be made for this agent (e.g. grants.requireOwner and the agent has no owner)',
  },
  credential_revoked: {
    http: 403,
    jsonrpc: JsonRpcCode.CredentialRevoked,
    stage: 'lease-credential',
    description:
      'the upstream credential this call needs was revoked (its lease, service, secret, grant, agent or user); data.service names it',
  },
  credential_unavailable: {
    http: 503,
    jsonrpc: JsonRpcCode.CredentialUnavailable,
    stage: 'lease-credential',
    description:
      'the broker could not obtain the upstream credential (e.g. the upstream token endpoint refused)',
  },
  connection_required: {
    http: 403,
    jsonrpc: JsonRpcCode.ConnectionRequired,
    stage: 'lease-credential',
    description:
      'the user has not connected this service yet; the message and data.elicitations[0].url give the link to open',
  },
  url_elicitation_required: {
    http: 403,
    jsonrpc: JsonRpcCode.UrlElicitationRequired,
    stage: 'lease-credential',
    description:
      'as connection_required, for clients that declared URL-mode elicitation: open data.elicitations[0].url, then retry',
  },
  internal: {
    http: 500,
    jsonrpc: JsonRpcCode.InternalError,
    stage: 'any',
    description: 'internal gateway error',
  },
  tool_quarantined: {
    http: 403,
    jsonrpc: JsonRpcCode.ToolQuarantined,
    stage: 'authorize',
    description:
      "the tool's definition is new or changed since it was approved and waits for an admin (gatehouse tools pending)",
  },
  admin_login_required: {
    http: 401,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'admin',
    description: 'log in to the console first (/admin/login); the session is missing or has expired',
  },
  admin_bearer_refused: {
    http: 401,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'admin',
    description: 'the admin console never accepts an Authorization header; log in through /admin/login',
  },
  admin_forbidden: {
    http: 403,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'admin',
    description: 'your console login has no role that allows this (admin.admins, approvals.approvers)',
  },
  admin_csrf: {
    http: 403,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'admin',
    description:
      'a state-changing console request needs the CSRF token of its session (and a same-origin Origin)',
  },
  admin_refused: {
    http: 409,
    jsonrpc: JsonRpcCode.InvalidRequest,
    stage: 'admin',
    description: 'the console could not do this (the message says why: e.g. self-approval, already decided)',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * A failure with a typed code. `message` is the public text (defaults to the
 * table's description); `detail` is private and only logged.
 */
export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;
  /** Optional structured data returned in the JSON-RPC error `data` (public). */
  readonly data: Record<string, unknown> | undefined;
  /** The pipeline stage that produced the error (for logs). */
  stage: string | undefined;
  /** HTTP headers that go with a transport-level answer (e.g. WWW-Authenticate). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    opts?: { detail?: string; data?: Record<string, unknown>; headers?: Record<string, string> },
  ) {
    super(message ?? ERRORS[code].description);
    this.name = 'GatehouseError';
    this.code = code;
    this.detail = opts?.detail;
    this.data = opts?.data;
    this.headers = opts?.headers;
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }

  get jsonRpcCode(): number {
    return ERRORS[this.code].jsonrpc;
  }

  /** The JSON-RPC `error` object sent to the client. */
  toJsonRpcError(): { code: number; message: string; data: Record<string, unknown> } {
    return { code: this.jsonRpcCode, message: this.message, data: { gatehouse: this.code, ...this.data } };
  }
}

/** Normalises anything thrown into a GatehouseError without leaking internals. */
export function toGatehouseError(err: unknown): GatehouseError {
  if (err instanceof GatehouseError) return err;
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return new GatehouseError('internal', undefined, { detail });
}
