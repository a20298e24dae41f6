/**
 * MCP 2026-07-28 request rules at the edge (stage check-revision): which revision a POST speaks, the
 * per-request `_meta`, and the `Mcp-Method` / `Mcp-Name` headers checked against the body (SEP-2243,
 * SEP-2575). Pure functions over the parsed message and the headers; nothing here reads state.
 *
 * https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#server-validation
 */
import type { IncomingHttpHeaders } from 'node:http';
import { GatehouseError } from '../errors.ts';
import type { Classified, JsonRpcId } from '../protocol/jsonrpc.ts';
import {
  FRONT_PROTOCOL_VERSIONS,
  isSupportedVersion,
  MODERN_PROTOCOL_VERSION,
} from '../protocol/versions.ts';

export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';
export const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_LOG_LEVEL = 'io.modelcontextprotocol/logLevel';

/**
 * Methods a 2026-07-28 client may send to the gateway. Everything else (the removed `initialize`,
 * `ping`, `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe`, and any unknown name) is
 * HTTP 404 with -32601: "If the server does not implement the requested RPC method, it MUST respond
 * with 404 Not Found and a JSON-RPC error with code -32601".
 */
export const MODERN_METHODS: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'completion/complete',
]);

/** Methods whose `Mcp-Name` header is required, and the param it mirrors. */
const NAMED: ReadonlyMap<string, 'name' | 'uri'> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
]);

/** What check-revision learned about a 2026-07-28 request; the rest of the pipeline reads it. */
export interface ModernRequest {
  /** The client's id, as sent; the request travels under a gateway id (ids of independent requests may repeat). */
  readonly clientId: JsonRpcId;
  readonly clientInfo: Record<string, unknown>;
  readonly clientCapabilities: Record<string, unknown>;
  /** `_meta` logLevel: without it the server sends no log messages for the request. */
  readonly logLevel: string | undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

/** `=?base64?…?=` (Value Encoding): the sentinel is case-sensitive; anything else is the value itself. */
export function decodeHeaderValue(raw: string): string | undefined {
  if (!(raw.startsWith('=?base64?') && raw.endsWith('?=') && raw.length >= 11)) return raw;
  const b64 = raw.slice(9, -2);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  const text = bytes.toString('utf8');
  // Not UTF-8: it cannot equal any body value.
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
}

/**
 * Whether this POST speaks 2026-07-28: the header says so, or the body's `_meta` names a version (a
 * legacy request carries none). Ambiguity is resolved in {@link checkModern}, which refuses mixtures.
 */
export function speaksModern(headers: IncomingHttpHeaders, messages: readonly Classified[]): boolean {
  if (header(headers, 'mcp-protocol-version') === MODERN_PROTOCOL_VERSION) return true;
  const first = messages[0];
  if (first === undefined || first.kind === 'invalid' || first.kind === 'response') return false;
  const meta = first.msg.params?._meta;
  return isObject(meta) && Object.hasOwn(meta, META_PROTOCOL_VERSION);
}

/**
 * The version header of a POST, checked once the body is read (so refusals carry the request's id):
 * unknown versions get UnsupportedProtocolVersionError with the versions supported.
 */
export function checkVersionHeader(headers: IncomingHttpHeaders): GatehouseError | undefined {
  const v = headers['mcp-protocol-version'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return unsupportedVersion(String(v));
  if (v === MODERN_PROTOCOL_VERSION || isSupportedVersion(v)) return undefined;
  return unsupportedVersion(v);
}

/**
 * Every rule a 2026-07-28 POST must meet before anything acts on it, in the order the spec lists
 * them. Returns what the pipeline needs, or the refusal (HTTP 400 / 404 with the request's id).
 */
export function checkModern(
  headers: IncomingHttpHeaders,
  messages: readonly Classified[],
  isBatch: boolean,
): ModernRequest | GatehouseError {
  if (isBatch) return new GatehouseError('invalid_request', 'MCP 2026-07-28 has no batches');
  // Mixing revisions: a session id is 2025-11-25 state; a 2026-07-28 request never rides a session.
  if (headers['mcp-session-id'] !== undefined) {
    return new GatehouseError(
      'header_mismatch',
      'Header mismatch: Mcp-Session-Id belongs to 2025-11-25 sessions; a 2026-07-28 request carries none',
    );
  }
  const m = messages[0];
  if (m === undefined || m.kind === 'invalid') return new GatehouseError('invalid_request');
  if (m.kind === 'response') {
    return new GatehouseError('invalid_request', 'a 2026-07-28 client sends no JSON-RPC responses');
  }
  const versionHeader = header(headers, 'mcp-protocol-version');
  const meta = m.msg.params?._meta;
  if (!isObject(meta)) {
    return new GatehouseError('request_meta_invalid', 'params._meta is required in MCP 2026-07-28');
  }
  const version = meta[META_PROTOCOL_VERSION];
  if (typeof version !== 'string') {
    return new GatehouseError('request_meta_invalid', `params._meta["${META_PROTOCOL_VERSION}"] is required`);
  }
  // A downgrade or a mixture: the body says one revision, the header another (or none).
  if (versionHeader !== version) {
    return new GatehouseError(
      'header_mismatch',
      `Header mismatch: MCP-Protocol-Version ${versionHeader === undefined ? 'is missing' : `\`${versionHeader}\``} but the body's _meta names \`${version}\``,
    );
  }
  if (version !== MODERN_PROTOCOL_VERSION) return unsupportedVersion(version);
  const caps = meta[META_CLIENT_CAPABILITIES];
  if (!isObject(caps)) {
    return new GatehouseError(
      'request_meta_invalid',
      `params._meta["${META_CLIENT_CAPABILITIES}"] is required (an object)`,
    );
  }
  const info = meta[META_CLIENT_INFO];
  const level = meta[META_LOG_LEVEL];
  if (m.kind === 'notification') {
    return {
      clientId: '',
      clientInfo: {},
      clientCapabilities: caps,
      logLevel: undefined,
    };
  }
  const method = m.msg.method;
  const methodHeader = header(headers, 'mcp-method');
  if (methodHeader === undefined) {
    return new GatehouseError('header_mismatch', 'Header mismatch: the Mcp-Method header is required');
  }
  if (methodHeader !== method) {
    return new GatehouseError(
      'header_mismatch',
      `Header mismatch: Mcp-Method header value does not match the body's method \`${method}\``,
    );
  }
  const named = NAMED.get(method);
  if (named !== undefined) {
    const raw = header(headers, 'mcp-name');
    if (raw === undefined) {
      return new GatehouseError(
        'header_mismatch',
        `Header mismatch: the Mcp-Name header is required for ${method}`,
      );
    }
    const value = decodeHeaderValue(raw);
    if (value === undefined) {
      return new GatehouseError('header_mismatch', 'Header mismatch: Mcp-Name is not valid base64 UTF-8');
    }
    const body = m.msg.params?.[named];
    if (value !== body) {
      return new GatehouseError(
        'header_mismatch',
        `Header mismatch: Mcp-Name header value does not match the body's params.${named}`,
      );
    }
  }
  if (!MODERN_METHODS.has(method)) {
    return new GatehouseError('method_unavailable', `method \`${method}\` does not exist in MCP 2026-07-28`);
  }
  return {
    clientId: m.msg.id,
    clientInfo: isObject(info) ? info : {},
    clientCapabilities: caps,
    logLevel: typeof level === 'string' ? level : undefined,
  };
}

/** UnsupportedProtocolVersionError: HTTP 400, with the versions this gateway serves and the one asked for. */
export function unsupportedVersion(requested: string): GatehouseError {
  return new GatehouseError(
    'unsupported_protocol_version',
    `unsupported MCP-Protocol-Version \`${requested}\``,
    {
      data: { supported: [...FRONT_PROTOCOL_VERSIONS], requested },
    },
  );
}
