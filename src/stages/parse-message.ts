import { isUtf8 } from 'node:buffer';
import { GatehouseError } from '../errors.ts';
import type { HttpContext, Outcome } from '../pipeline/context.ts';
import { type Classified, classify, idKey } from '../protocol/jsonrpc.ts';
import { checkMessage } from '../protocol/validate.ts';
import { MODERN_PROTOCOL_VERSION } from '../protocol/versions.ts';
import { exceedsDepth } from '../protocol/well-formed.ts';
import { MODERN_METHODS } from '../rev2026/request.ts';

/**
 * Strict JSON and JSON-RPC decoding of the POST body (single message or batch), and the parse-time
 * normalisation of every value in it (T31, src/protocol/validate.ts): what passes is well-formed UTF-8,
 * well-formed JSON-RPC with string or integer ids, bounded in depth, lengths and sizes, with finite
 * numbers and no unpaired surrogates, and with the params the gateway interprets in their MCP shapes.
 */
export function parseMessage(ctx: HttpContext): Outcome {
  const body = ctx.body ?? Buffer.alloc(0);
  const limits = ctx.gw.config.limits;
  // RFC 8259 §8.1: "JSON text exchanged between systems [...] MUST be encoded using UTF-8"; decoding
  // would silently replace invalid bytes, so what the audit records would differ from what was sent.
  if (!isUtf8(body)) return new GatehouseError('parse_error', 'the request body is not valid UTF-8');
  if (exceedsDepth(body, limits.maxJsonDepth + 1))
    return new GatehouseError(
      'invalid_request',
      `nesting deeper than limits.maxJsonDepth (${limits.maxJsonDepth})`,
    );
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return new GatehouseError('parse_error');
  }
  if (Array.isArray(value)) {
    if (value.length === 0)
      return new GatehouseError('invalid_request', 'an empty batch is not a valid request');
    if (value.length > limits.maxCollectionSize)
      return new GatehouseError(
        'invalid_request',
        `a batch larger than limits.maxCollectionSize (${limits.maxCollectionSize})`,
      );
    ctx.isBatch = true;
    ctx.messages = value.map(classify);
  } else {
    ctx.messages = [classify(value)];
  }
  const ids = ctx.isBatch ? new Set<string>() : undefined;
  for (let i = 0; i < ctx.messages.length; i++) {
    const m = ctx.messages[i];
    if (m === undefined) continue;
    const problem = checkMessage(m, limits);
    const at = ctx.isBatch ? ` (batch index ${i})` : '';
    if (problem) {
      // A single request is answered with its id; a bad element makes the whole batch invalid.
      ctx.answerId = ctx.isBatch ? null : problem.id;
      // MCP 2026-07-28: a removed method (initialize, logging/setLevel, …) is 404 whatever its params.
      const removed = removedMethod(ctx, m);
      if (removed) return removed;
      // MCP 2026-07-28: a malformed _meta is the request envelope's fault: HTTP 400, -32602.
      if (
        !ctx.isBatch &&
        problem.reason.startsWith('params._meta') &&
        ctx.req.headers['mcp-protocol-version'] === MODERN_PROTOCOL_VERSION
      ) {
        return new GatehouseError('request_meta_invalid', `invalid params: ${problem.reason}`);
      }
      const code = ctx.isBatch ? 'invalid_request' : problem.code;
      return new GatehouseError(
        code,
        `invalid ${problem.code === 'invalid_params' ? 'params' : 'JSON-RPC message'}${at}: ${problem.reason}`,
      );
    }
    // JSON-RPC 2.0 §6: the response objects of a batch are matched by id, so two requests of one
    // batch with the same id could never both be answered.
    if (ids && m.kind === 'request') {
      const key = idKey(m.msg.id);
      if (ids.has(key)) return new GatehouseError('invalid_request', `duplicate request id${at}`);
      ids.add(key);
    }
  }
  return undefined;
}

function removedMethod(ctx: HttpContext, m: Classified): GatehouseError | undefined {
  if (ctx.isBatch || m.kind !== 'request' || MODERN_METHODS.has(m.msg.method)) return undefined;
  if (ctx.req.headers['mcp-protocol-version'] !== MODERN_PROTOCOL_VERSION) return undefined;
  return new GatehouseError(
    'method_unavailable',
    `method \`${m.msg.method}\` does not exist in MCP 2026-07-28`,
  );
}
