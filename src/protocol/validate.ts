/**
 * Parse-time checks of one client message beyond JSON-RPC's shape (T31): identifier lengths, the
 * values in params (src/protocol/well-formed.ts), `_meta`, and the params of the MCP methods the
 * gateway interprets. A request that fails gets `invalid_params` (or `invalid_request` for the
 * envelope) with its id, before any session, policy, audit record or upstream sees it; later stages
 * may assume what is checked here.
 *
 * Why check what the upstream would check anyway: an upstream's SDK drops a message it cannot parse
 * (a `progressToken` that is neither string nor integer, say) without answering, and the client would
 * wait for the whole call timeout.
 */

import { clip } from '../util/clip.ts';
import type { Classified, JsonRpcId } from './jsonrpc.ts';
import { checkValue, type ValueLimits } from './well-formed.ts';

/** A refusal: `invalid_request` (the envelope) or `invalid_params` (what the method was given). */
export interface MessageProblem {
  readonly code: 'invalid_request' | 'invalid_params';
  readonly reason: string;
  /** The id to answer with, when the message is a request whose id could be read. */
  readonly id: JsonRpcId | null;
}

type Params = Record<string, unknown> | undefined;
/** A method's params rule: a reason when refused. */
type Rule = (p: Params, l: ValueLimits) => string | undefined;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIdLike(v: unknown, l: ValueLimits): boolean {
  return (typeof v === 'string' && v.length <= l.maxNameLength) || Number.isSafeInteger(v);
}

/** `p[key]` is a string of at most maxNameLength (required unless `optional`). */
function name(p: Params, key: string, l: ValueLimits, optional = false): string | undefined {
  const v = p?.[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string') return `params.${key} must be a string`;
  if (v.length > l.maxNameLength)
    return `params.${key} is longer than limits.maxNameLength (${l.maxNameLength})`;
  return undefined;
}

function objectParam(p: Params, key: string, optional: boolean): string | undefined {
  const v = p?.[key];
  if (v === undefined && optional) return undefined;
  return isObject(v) ? undefined : `params.${key} must be an object`;
}

const LOG_LEVELS = new Set(['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency']);

const listRule: Rule = (p, l) => name(p, 'cursor', l, true);
const uriRule: Rule = (p, l) => name(p, 'uri', l);

/**
 * Params of the client requests the gateway interprets (MCP 2025-11-25 schema). Keyed by method in a
 * Map: a method named like an `Object.prototype` member finds nothing.
 */
const REQUEST_RULES = new Map<string, Rule>([
  [
    'initialize',
    (p, l) => {
      if (!isObject(p)) return 'initialize needs params';
      const info = p.clientInfo;
      const caps = p.capabilities;
      // The members the gateway hands to upstreams must have their schema's shape (an upstream's SDK
      // refuses `"sampling": null` and the client would learn only that no upstream initialized).
      const badCap = isObject(caps)
        ? ['roots', 'sampling', 'elicitation', 'experimental', 'tasks'].find(
            (k) => caps[k] !== undefined && !isObject(caps[k]),
          )
        : undefined;
      if (badCap !== undefined) return `params.capabilities.${badCap} must be an object`;
      const roots = isObject(caps) && isObject(caps.roots) ? caps.roots : undefined;
      if (roots?.listChanged !== undefined && typeof roots.listChanged !== 'boolean')
        return 'params.capabilities.roots.listChanged must be a boolean';
      for (const [cap, subs] of [
        ['sampling', ['context', 'tools']],
        ['elicitation', ['form', 'url']],
      ] as const) {
        const c = isObject(caps) ? caps[cap] : undefined;
        const bad = isObject(c) ? subs.find((k) => c[k] !== undefined && !isObject(c[k])) : undefined;
        if (bad !== undefined) return `params.capabilities.${cap}.${bad} must be an object`;
      }
      if (isObject(info)) {
        for (const k of ['title', 'websiteUrl'] as const)
          if (info[k] !== undefined && typeof info[k] !== 'string')
            return `params.clientInfo.${k} must be a string`;
        if (info.icons !== undefined && !Array.isArray(info.icons))
          return 'params.clientInfo.icons must be an array';
      }
      return (
        name(p, 'protocolVersion', l) ??
        objectParam(p, 'capabilities', false) ??
        (isObject(info) && typeof info.name === 'string' && typeof info.version === 'string'
          ? undefined
          : 'params.clientInfo must be an object with string name and version')
      );
    },
  ],
  ['ping', () => undefined],
  ['tools/list', listRule],
  ['prompts/list', listRule],
  ['resources/list', listRule],
  ['resources/templates/list', listRule],
  ['tools/call', (p, l) => name(p, 'name', l) ?? objectParam(p, 'arguments', true)],
  [
    'prompts/get',
    (p, l) => {
      const args = p?.arguments;
      if (args !== undefined && (!isObject(args) || Object.values(args).some((v) => typeof v !== 'string')))
        return 'params.arguments must be an object of strings';
      return name(p, 'name', l);
    },
  ],
  ['resources/read', uriRule],
  ['resources/subscribe', uriRule],
  ['resources/unsubscribe', uriRule],
  [
    'completion/complete',
    (p, l) => {
      const ref = p?.ref;
      if (!isObject(ref)) return 'params.ref must be an object';
      const refProblem =
        ref.type === 'ref/prompt'
          ? name(ref, 'name', l)
          : ref.type === 'ref/resource'
            ? name(ref, 'uri', l)
            : 'params.ref.type must be ref/prompt or ref/resource';
      const arg = p?.argument;
      return (
        refProblem ??
        (isObject(arg) && typeof arg.name === 'string' && typeof arg.value === 'string'
          ? undefined
          : 'params.argument must be an object with string name and value')
      );
    },
  ],
  [
    'logging/setLevel',
    (p) =>
      typeof p?.level === 'string' && LOG_LEVELS.has(p.level)
        ? undefined
        : 'params.level must be a log level',
  ],
]);

/** Params of the client notifications the gateway interprets. */
const NOTIFICATION_RULES = new Map<string, Rule>([
  [
    'notifications/cancelled',
    (p, l) => {
      if (p?.requestId !== undefined && !isIdLike(p.requestId, l))
        return 'params.requestId must be a string or an integer';
      return p?.reason === undefined || typeof p.reason === 'string'
        ? undefined
        : 'params.reason must be a string';
    },
  ],
  [
    'notifications/progress',
    (p, l) =>
      isIdLike(p?.progressToken, l) && typeof p?.progress === 'number'
        ? undefined
        : 'params.progressToken must be a string or an integer and params.progress a number',
  ],
]);

/**
 * Checks one classified client message (never `invalid`: parse-message refuses those first).
 * Requests, notifications and responses (to server-to-client requests) alike.
 */
export function checkMessage(c: Classified, l: ValueLimits): MessageProblem | undefined {
  if (c.kind === 'invalid') return { code: 'invalid_request', reason: c.reason, id: c.id };
  const msg = c.msg;
  const id = 'id' in msg && msg.id !== undefined ? msg.id : null;
  if (typeof id === 'string' && id.length > l.maxNameLength)
    return {
      code: 'invalid_request',
      reason: `id longer than limits.maxNameLength (${l.maxNameLength})`,
      id: null,
    };
  if (typeof id === 'string' && !id.isWellFormed())
    return { code: 'invalid_request', reason: 'id with an unpaired UTF-16 surrogate', id: null };
  if (c.kind === 'response') {
    const body = c.msg.error ?? c.msg.result;
    if (c.msg.error && !Number.isSafeInteger(c.msg.error.code))
      return { code: 'invalid_request', reason: 'error.code must be an integer', id: null };
    const bad = checkValue(body, l, 2);
    return bad
      ? { code: 'invalid_request', reason: `${bad.reason} at ${bad.pointer || '/'}`, id: null }
      : undefined;
  }
  const method = c.msg.method;
  const code = c.kind === 'request' ? 'invalid_params' : 'invalid_request';
  if (method.length > l.maxNameLength || !method.isWellFormed())
    return {
      code: 'invalid_request',
      reason: `method must be a well-formed string of at most limits.maxNameLength (${l.maxNameLength})`,
      id,
    };
  const params = c.msg.params;
  if (params !== undefined) {
    const bad = checkValue(params, l, 2);
    if (bad) return { code, reason: `${bad.reason} at params${bad.pointer}`, id };
    const meta = params._meta;
    if (meta !== undefined) {
      if (!isObject(meta)) return { code, reason: 'params._meta must be an object', id };
      // MCP: "progressToken: string | number" and "Progress tokens MUST be [...] a string or integer".
      if (meta.progressToken !== undefined && !isIdLike(meta.progressToken, l))
        return { code, reason: 'params._meta.progressToken must be a string or an integer', id };
      // The other `_meta` member an upstream's SDK checks (it drops a message that fails, unanswered).
      const task = meta['io.modelcontextprotocol/related-task'];
      if (task !== undefined && !(isObject(task) && typeof task.taskId === 'string'))
        return {
          code,
          reason:
            'params._meta["io.modelcontextprotocol/related-task"] must be an object with a string taskId',
          id,
        };
    }
  }
  const rule = (c.kind === 'request' ? REQUEST_RULES : NOTIFICATION_RULES).get(method);
  const why = rule?.(params, l);
  return why === undefined ? undefined : { code, reason: `${clip(method, 64)}: ${why}`, id };
}
