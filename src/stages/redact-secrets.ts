import { GatehouseError } from '../errors.ts';
import type { JsonRpcMessage } from '../protocol/jsonrpc.ts';
import type { ResponseContext } from '../session/session.ts';

/**
 * T20: no secret the gateway holds (upstream credentials from the store) reaches the client, in any
 * upstream message, in its raw, base64, base64url, URL-encoded, hex or JSON-escaped form: each is
 * replaced by `[REDACTED:<secret name>]`. Works on the serialised message, so every string in it is
 * covered (results, errors, notifications, server-to-client requests). Logged without the value.
 */
export function redactSecrets(ctx: ResponseContext): void {
  const guard = ctx.leakGuard;
  if (guard.size === 0) return;
  const { value, findings } = guard.redact(ctx.json);
  if (findings.length === 0) return;
  try {
    ctx.msg = JSON.parse(value) as JsonRpcMessage;
    ctx.json = value;
  } catch {
    // A match across JSON syntax: never send the original; answer a response with an error, drop the rest.
    const msg = ctx.msg;
    const id = 'id' in msg && !('method' in msg) ? (msg.id ?? null) : null;
    const err = new GatehouseError('internal', 'the upstream message held a secret and was withheld');
    ctx.msg = { jsonrpc: '2.0', id, error: err.toJsonRpcError() } as JsonRpcMessage;
    ctx.json = id === null ? '' : JSON.stringify(ctx.msg);
  }
  ctx.onRedacted?.(findings);
  ctx.log.warn(
    { secrets: [...new Set(findings.map((f) => f.label))], forms: [...new Set(findings.map((f) => f.form))] },
    'secret redacted from an upstream message',
  );
}
