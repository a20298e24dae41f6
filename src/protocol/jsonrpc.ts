/**
 * Minimal, allocation-light JSON-RPC 2.0 types and a strict classifier.
 * The gateway parses and routes JSON-RPC itself instead of going through the
 * SDK's transport classes: they cost about as much CPU as an upstream server.
 */

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  result?: Record<string, unknown>;
  error?: JsonRpcErrorObject;
}

export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

export type Classified =
  | { kind: 'request'; msg: JsonRpcRequest }
  | { kind: 'notification'; msg: JsonRpcNotification }
  | { kind: 'response'; msg: JsonRpcResponse }
  | { kind: 'invalid'; reason: string; id: JsonRpcId | null };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** MCP: "Requests MUST include a string or integer ID"; integers beyond 2^53 would not survive a round trip. */
function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || Number.isSafeInteger(v);
}

/**
 * Classifies one decoded JSON value as a JSON-RPC message.
 * MCP: "Requests MUST include a string or integer ID" and "the ID MUST NOT be null".
 */
export function classify(v: unknown): Classified {
  if (!isObject(v)) return { kind: 'invalid', reason: 'message must be a JSON object', id: null };
  const id = v.id;
  if (v.jsonrpc !== '2.0')
    return { kind: 'invalid', reason: 'jsonrpc must be "2.0"', id: isId(id) ? id : null };
  if (v.params !== undefined && !isObject(v.params)) {
    // MCP params are always objects (by-name); arrays are not used by any MCP method.
    return { kind: 'invalid', reason: 'params must be an object', id: isId(id) ? id : null };
  }
  if (typeof v.method === 'string') {
    if (v.method.length === 0)
      return { kind: 'invalid', reason: 'method must not be empty', id: isId(id) ? id : null };
    if (id === undefined) return { kind: 'notification', msg: v as unknown as JsonRpcNotification };
    if (!isId(id)) return { kind: 'invalid', reason: 'id must be a string or an integer', id: null };
    return { kind: 'request', msg: v as unknown as JsonRpcRequest };
  }
  if (v.method !== undefined)
    return { kind: 'invalid', reason: 'method must be a string', id: isId(id) ? id : null };
  const hasResult = 'result' in v;
  const hasError = 'error' in v;
  if (hasResult === hasError) {
    return {
      kind: 'invalid',
      reason: 'a response has exactly one of result or error',
      id: isId(id) ? id : null,
    };
  }
  if (!(isId(id) || id === null))
    return { kind: 'invalid', reason: 'id must be a string or an integer', id: null };
  if (hasError) {
    const e = v.error;
    if (!isObject(e) || typeof e.code !== 'number' || typeof e.message !== 'string') {
      return { kind: 'invalid', reason: 'error must have a numeric code and a string message', id };
    }
  } else if (!isObject(v.result)) {
    return { kind: 'invalid', reason: 'result must be an object', id };
  }
  return { kind: 'response', msg: v as unknown as JsonRpcResponse };
}

/** A key that distinguishes `1` from `"1"` in maps keyed by request id. */
export function idKey(id: JsonRpcId): string {
  return typeof id === 'number' ? `n${id}` : `s${id}`;
}

export function errorResponse(id: JsonRpcId | null, error: JsonRpcErrorObject): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error };
}

export function resultResponse(id: JsonRpcId, result: Record<string, unknown>): JsonRpcResponse {
  return { jsonrpc: '2.0', id, result };
}
