/**
 * Dictionaries and hostile values shared by the generators: names JavaScript treats specially
 * (every Object.prototype member, `__proto__`, thenables), the gateway's own names, and values
 * that are hard to handle (huge and distinct strings, lone surrogates, 1e999, deep nesting).
 */
import { deepNest, type Json, obj, raw } from './json.ts';
import type { Rng } from './rng.ts';

/** Every own property name of Object.prototype (incl. `__proto__`), plus names with special meaning in JS. */
export const PROTO_NAMES: readonly string[] = [
  ...Object.getOwnPropertyNames(Object.prototype),
  'prototype',
  'then',
  'toJSON',
  'length',
  'caller',
  'callee',
  'arguments',
  'call',
  'apply',
  'bind',
  'get',
  'set',
  'has',
  'delete',
  'size',
  'Symbol(Symbol.iterator)',
];

/** Tools the fuzz upstreams offer (exposed names). */
export const TOOLS = {
  /** Answer at once: an upstream_timeout on these means the gateway lost the call. */
  fast: [
    'github__search_code',
    'github__read_file',
    'github__create_issue',
    'github__write_file',
    'github__transfer',
    'github__pid',
    'github__call_tool',
    'everything__echo',
    'everything__get-sum',
    'everything__get-tiny-image',
    'everything__get-annotated-message',
    'everything__get-structured-content',
    'everything__get-resource-links',
    'everything__get-resource-reference',
    'everything__toggle-simulated-logging',
    'everything__toggle-subscriber-updates',
  ],
  /** Refused by the fuzz policy or needing approval. */
  refused: [
    'github__delete_repo',
    'github__deploy',
    'everything__get-env',
    'everything__gzip-file-as-resource',
  ],
  /** May legitimately run into limits.callTimeoutMs (slow, or waiting for the client). */
  slow: [
    'github__slow',
    'everything__get-roots-list',
    'everything__trigger-long-running-operation',
    'everything__trigger-sampling-request',
    'everything__trigger-elicitation-request',
    'everything__trigger-url-elicitation',
    'everything__simulate-research-query',
    'everything__trigger-sampling-request-async',
    'everything__trigger-elicitation-request-async',
  ],
} as const;

/** Prompts of the upstreams. */
export const PROMPTS = [
  'everything__simple-prompt',
  'everything__args-prompt',
  'everything__completable-prompt',
  'everything__resource-prompt',
];

/** Resource URIs of the upstreams. */
export const RESOURCES = [
  'demo://resource/dynamic/text/1',
  'demo://resource/dynamic/blob/2',
  'demo://resource/static/document/architecture.md',
  'demo://resource/session/x',
];

/** Every MCP method (client → server) and notification. */
export const METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'notifications/message',
  'rpc.discover',
];

/** Strings that have broken something somewhere. */
export const NASTY_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\r\nX-Injected: 1',
  '\u202e\u0041\u0042',
  '\ufeff',
  '\uffff',
  '💥'.repeat(8),
  '../../../../etc/passwd',
  '%00%2e%2e%2f',
  '$' + '{jndi:ldap://127.0.0.1/a}',
  '%s%s%s%n',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '[REDACTED:x]',
  'javascript:alert(1)',
  'file:///etc/passwd',
  'http://169.254.169.254/latest/meta-data/',
  '__',
  '____',
  '*',
  '..',
  'NaN',
  'Infinity',
  '-0',
  'true',
  'null',
  '{}',
];

/** JSON escapes of lone and reversed surrogates (they survive JSON.parse as unpaired UTF-16). */
export const SURROGATES: readonly string[] = [
  '\\ud800',
  '\\udfff',
  '\\udc00\\ud800',
  'a\\ud83d',
  '\\ud83dz',
  '\\ud800\\ud800\\ud800',
];

/** Numbers JSON.stringify cannot write, as JSON text. */
export const RAW_NUMBERS: readonly string[] = [
  '1e999',
  '-1e999',
  '1e-999',
  '-0',
  '9007199254740993',
  '18446744073709551616',
  '1.7976931348623157e309',
  '0.0000000000000000000000000001',
  '1E400',
  '123456789012345678901234567890',
];

/** A JSON string literal containing a lone surrogate somewhere. */
export function surrogateString(rng: Rng, base = 'x'): Json {
  const s = rng.pick(SURROGATES);
  const b = JSON.stringify(base).slice(1, -1);
  return raw(`"${rng.chance(0.5) ? s + b : b + s}"`);
}

/** A string of about `n` characters, distinct per call (random prefix), cheap to build. */
export function bigString(rng: Rng, n: number): string {
  const prefix = rng.string(16);
  return prefix + rng.pick(['x', 'A', 'é', '\u4e00', '_']).repeat(Math.max(0, n - 16));
}

/** A string from the dictionaries or made up, usually short, sometimes huge. */
export function hostileString(rng: Rng, maxBig: number): Json {
  switch (rng.int(7)) {
    case 0:
      return rng.pick(PROTO_NAMES);
    case 1:
      return rng.pick(NASTY_STRINGS);
    case 2:
      return surrogateString(rng, rng.pick(['x', 'github__search_code', 'constructor']));
    case 3:
      return bigString(rng, rng.size(maxBig));
    case 4:
      return rng.string(rng.range(1, 40), 'abc_-/:.%\\"\'\u00e9\u0000 ');
    case 5:
      return rng.pick([...TOOLS.fast, ...PROMPTS, ...RESOURCES, ...METHODS]);
    default:
      return rng.string(rng.range(0, 12));
  }
}

/** Any JSON value, often a wrong type for where it goes. */
export function hostileValue(rng: Rng, maxBig: number, depth = 0): Json {
  switch (rng.int(14)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, 1, -1, 0.5, 2 ** 31, -(2 ** 31), 2 ** 53, Number.MAX_SAFE_INTEGER, 1e308, -1e-308]);
    case 3:
      return raw(rng.pick(RAW_NUMBERS));
    case 4:
    case 5:
      return hostileString(rng, maxBig);
    case 6:
      return [];
    case 7:
      return obj([]);
    case 8:
      return obj([[rng.pick(PROTO_NAMES), depth < 2 ? hostileValue(rng, maxBig, depth + 1) : 1]]);
    case 9:
      return deepNest(
        rng.pick([64, 1000, 5000, 12000, 40000]),
        rng.pick(['array', 'object', 'mixed'] as const),
      );
    case 10:
      return depth < 2
        ? Array.from({ length: rng.range(1, 4) }, () => hostileValue(rng, maxBig, depth + 1))
        : [1];
    case 11:
      return obj([
        ['__proto__', obj([['polluted', true]])],
        ['constructor', obj([['prototype', obj([['polluted', true]])]])],
      ]);
    case 12:
      return surrogateString(rng);
    default:
      return rng.string(rng.range(0, 8));
  }
}

/** A JSON-RPC id of any type, valid or not. */
export function hostileId(rng: Rng): Json {
  return rng.weighted<() => Json>([
    [4, () => rng.int(1000)],
    [2, () => rng.string(rng.range(1, 12))],
    [1, () => -rng.int(1000) - 1],
    [1, () => rng.pick([0.5, 1.25, -2.75])],
    [1, () => rng.pick([2 ** 53, 2 ** 64, 1e21, Number.MAX_VALUE])],
    [1, () => raw(rng.pick(RAW_NUMBERS))],
    [1, () => null],
    [1, () => rng.chance(0.5)],
    [1, () => obj([['id', 1]])],
    [1, () => [1]],
    [1, () => ''],
    [1, () => rng.pick(PROTO_NAMES)],
    [1, () => surrogateString(rng, 'id')],
    [1, () => bigString(rng, rng.size(20_000))],
  ])();
}

/** A `_meta` object with a progressToken of any type (or other keys). */
export function hostileMeta(rng: Rng, maxBig: number): Json {
  const token = rng.chance(0.6) ? hostileId(rng) : hostileValue(rng, maxBig);
  const entries: [string, Json][] = [['progressToken', token]];
  if (rng.chance(0.3)) entries.push([rng.pick(PROTO_NAMES), hostileValue(rng, maxBig)]);
  if (rng.chance(0.2))
    entries.push(['io.modelcontextprotocol/related-task', obj([['taskId', hostileValue(rng, 64)]])]);
  return obj(entries);
}
