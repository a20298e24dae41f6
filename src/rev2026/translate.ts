/**
 * 2025-11-25 answers in 2026-07-28 shape, for requests that came in as 2026-07-28 (docs/protocol.md).
 *
 * - Every result gets `resultType: "complete"` (SEP-2322: "input_required" is the other kind).
 * - Results that may be cached (lists, resources/read, server/discover; SEP-2549) get `ttlMs: 0` and
 *   `cacheScope: "private"`: what the gateway answers is filtered by the caller's grant and policy, so
 *   it is never a shared ("public") answer, and a grant can be revoked or narrowed at any moment.
 * - Errors are left as they are (their codes are the same in both revisions).
 */
import type { JsonRpcResponse } from '../protocol/jsonrpc.ts';

/** Methods whose results carry caching hints (SEP-2549). */
const CACHEABLE: ReadonlySet<string> = new Set([
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'server/discover',
]);

export function toModernResponse(method: string, msg: JsonRpcResponse): void {
  const result = msg.result;
  if (result === undefined) return;
  if (result.resultType === undefined) result.resultType = 'complete';
  if (CACHEABLE.has(method)) {
    result.ttlMs = 0;
    result.cacheScope = 'private';
  }
}

const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/**
 * A log message reaches a 2026-07-28 client only when its request's `_meta` asked for a level, and only
 * at or above it ("no log messages when logLevel is omitted").
 */
export function logAllowed(wanted: string | undefined, params: Record<string, unknown> | undefined): boolean {
  if (wanted === undefined) return false;
  const at = LEVELS.indexOf(String(params?.level));
  return at >= 0 && at >= LEVELS.indexOf(wanted);
}
