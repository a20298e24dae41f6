import { GatehouseError } from '../errors.ts';
import type { JsonRpcResponse } from '../protocol/jsonrpc.ts';
import type { ResponseContext } from '../session/session.ts';

/**
 * T30: no upstream message larger than limits.maxResultBytes reaches the
 * client. A response becomes a `result_too_large` error for its request; an
 * oversized notification or request is dropped (and logged).
 */
export function limitResult(ctx: ResponseContext): void {
  const max = ctx.limits.maxResultBytes;
  // Cheap test first: a string's length never exceeds its UTF-8 byte length.
  if (ctx.json.length <= max || Buffer.byteLength(ctx.json) <= max) return;
  const msg = ctx.msg;
  const id = 'id' in msg ? (msg.id ?? null) : null;
  if (id === null || 'method' in msg) {
    ctx.log.warn(
      { method: 'method' in msg ? msg.method : undefined, bytes: ctx.json.length },
      'oversized upstream message dropped',
    );
    ctx.json = '';
    return;
  }
  const err: JsonRpcResponse = {
    jsonrpc: '2.0',
    id,
    error: new GatehouseError('result_too_large').toJsonRpcError(),
  };
  ctx.msg = err;
  ctx.json = JSON.stringify(err);
}
