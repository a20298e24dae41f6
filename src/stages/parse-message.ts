import { GatehouseError } from '../errors.ts';
import type { HttpContext, Outcome } from '../pipeline/context.ts';
import { classify } from '../protocol/jsonrpc.ts';

/** Strict JSON and JSON-RPC decoding of the POST body (single message or batch). */
export function parseMessage(ctx: HttpContext): Outcome {
  let value: unknown;
  try {
    value = JSON.parse(ctx.body?.toString('utf8') ?? '');
  } catch {
    return new GatehouseError('parse_error');
  }
  if (Array.isArray(value)) {
    if (value.length === 0)
      return new GatehouseError('invalid_request', 'an empty batch is not a valid request');
    ctx.isBatch = true;
    ctx.messages = value.map(classify);
  } else {
    ctx.messages = [classify(value)];
  }
  const bad = ctx.messages.findIndex((m) => m.kind === 'invalid');
  const m = ctx.messages[bad];
  if (m?.kind === 'invalid') {
    return new GatehouseError(
      'invalid_request',
      `invalid JSON-RPC message${ctx.isBatch ? ` at batch index ${bad}` : ''}: ${m.reason}`,
    );
  }
  return undefined;
}
