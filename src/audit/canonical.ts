/**
 * Canonical JSON: the one byte form that audit hashes, argument digests and
 * checkpoint signatures are computed over. RFC 8785-like for the values the audit
 * log holds: object keys sorted by UTF-16 code units, no whitespace, numbers in
 * ECMAScript shortest form (what JSON.stringify emits, which RFC 8785 adopts),
 * strings escaped as JSON.stringify does (so a lone surrogate becomes its `\uXXXX` escape and
 * the text is always valid UTF-8: the bytes hashed are the bytes written and read back). Anything
 * without one meaning (NaN, Infinity, bigint, functions, symbols, cycles, nesting deeper than
 * {@link MAX_CANONICAL_DEPTH}) is refused rather than silently changed, because two writers must
 * never hash the same event differently. Client values go through {@link toAuditValue} first,
 * which maps every such value to one documented form, so no client can make an append fail.
 */
import { sha256 } from '../util/hash.ts';

/** Thrown for a value that has no canonical form. */
export class CanonicalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalError';
  }
}

/**
 * Text that is already canonical JSON, embedded as is by {@link canonicalJson}
 * (so a large value, e.g. tool arguments, is serialised once per event).
 */
export class RawJson {
  constructor(readonly json: string) {}
}

/**
 * Deepest nesting {@link canonicalJson} accepts. A fixed bound rather than the call stack's: whether
 * a value has a canonical form must not depend on how deep the caller's stack happened to be
 * (a 3000-deep array used to overflow it), or the same arguments could digest in one place and fail in another.
 */
export const MAX_CANONICAL_DEPTH = 256;

/** The canonical JSON text of `value`. `undefined` object members are omitted, as in JSON. */
export function canonicalJson(value: unknown): string {
  const out = stringifiable(value, 0) ? JSON.stringify(value) : write(value, new Set(), 0);
  if (out === undefined) throw new CanonicalError('value has no json form');
  return out;
}

/**
 * Whether `JSON.stringify(value)` is already the canonical text, so the (native, much faster)
 * serialiser can write it: plain objects (prototype `Object.prototype` or null, no `toJSON`) whose
 * keys, in the order JSON.stringify visits them (`Object.keys`), are sorted by UTF-16 code units;
 * finite numbers; strings, booleans, null; nothing deeper than {@link MAX_CANONICAL_DEPTH} (so no
 * cycle either). Anything else (a RawJson, unsorted keys, a number JSON would turn into null) takes
 * {@link write}, which gives the same text for what both accept. The audit writer builds its events
 * with sorted keys so that they take this path.
 */
function stringifiable(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      // undefined (an omitted member or a null array slot in both), functions, symbols, bigints: the slow path decides.
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_CANONICAL_DEPTH) return false;
  if ((value as { toJSON?: unknown }).toJSON !== undefined) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!stringifiable(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  // for-in, not Object.keys: no array per object (two events per call). It visits own keys in the order
  // JSON.stringify writes them, then any inherited enumerable ones (a polluted Object.prototype): those make
  // the check stricter (maybe false), never wrongly true for the own keys JSON.stringify writes.
  let prev: string | undefined;
  for (const key in value) {
    if (prev !== undefined && !(prev < key)) return false;
    if (!stringifiable((value as Record<string, unknown>)[key], depth + 1)) return false;
    prev = key;
  }
  return true;
}

/** Lower-case hex SHA-256 of the canonical JSON of `value` (the argument digest). */
export function canonicalDigest(value: unknown): string {
  return sha256(canonicalJson(value));
}

function write(value: unknown, seen: Set<object>, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalError(`non-finite number ${value}`);
      // JSON.stringify prints -0 as 0 and uses the shortest round-trip form (RFC 8785 §3.2.2.3).
      return JSON.stringify(value);
    case 'undefined':
      return undefined;
    case 'bigint':
    case 'function':
    case 'symbol':
      throw new CanonicalError(`${typeof value} has no canonical json form`);
  }
  if (value === null) return 'null';
  if (value instanceof RawJson) return value.json;
  const obj = value as object;
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return write(toJSON.call(obj), seen, depth);
  if (seen.has(obj)) throw new CanonicalError('cyclic value');
  if (depth >= MAX_CANONICAL_DEPTH)
    throw new CanonicalError(`nested deeper than ${MAX_CANONICAL_DEPTH} levels`);
  seen.add(obj);
  try {
    // Strings built with `+=` (V8 ropes) and keys sorted by the default comparison: every audit event
    // passes here twice per call, so this is on the request path's CPU budget.
    if (Array.isArray(obj)) {
      let out = '[';
      for (let i = 0; i < obj.length; i++) {
        // As in JSON.stringify: an array slot without a JSON form is null.
        out += `${i > 0 ? ',' : ''}${child(obj[i], seen, depth + 1) ?? 'null'}`;
      }
      return `${out}]`;
    }
    // RFC 8785 §3.2.3: keys sorted by UTF-16 code units, which is what Array.prototype.sort does
    // without a comparator (non-locale string comparison).
    const keys = Object.keys(obj);
    // Events are built sorted (the audit writer): sorting only what is not saves most of the work here.
    for (let i = 1; i < keys.length; i++) {
      if (!((keys[i - 1] as string) < (keys[i] as string))) {
        keys.sort();
        break;
      }
    }
    let out = '{';
    let first = true;
    for (const key of keys) {
      const v = child((obj as Record<string, unknown>)[key], seen, depth + 1);
      if (v === undefined) continue;
      out += `${first ? '' : ','}${JSON.stringify(key)}:${v}`;
      first = false;
    }
    return `${out}}`;
  } finally {
    seen.delete(obj);
  }
}

/** A member or element: natively when it is {@link stringifiable} (an event around a RawJson keeps the fast path for the rest). */
function child(value: unknown, seen: Set<object>, depth: number): string | undefined {
  return typeof value === 'object' &&
    value !== null &&
    !(value instanceof RawJson) &&
    stringifiable(value, depth)
    ? JSON.stringify(value)
    : write(value, seen, depth);
}

/** Where {@link toAuditValue} cuts nesting off: well above any real tool's arguments, far below the stack's limit. */
export const MAX_AUDIT_DEPTH = 64;

/** What {@link toAuditValue} returns: the value, and whether anything had to be changed. */
export interface AuditValue {
  value: unknown;
  /** True when some part had no faithful canonical form and was replaced (the record says so). */
  normalised: boolean;
}

/**
 * The audit form of a value a client chose (tool arguments, clientInfo): total and deterministic,
 * so that recording it can never fail and the same value always digests the same way. Every part
 * canonical JSON can carry is kept as is (strings included: lone surrogates are escaped, not
 * replaced); the rest is replaced by one fixed form and `normalised` is set:
 *
 * - a non-finite number becomes its name as a string (`"NaN"`, `"Infinity"`, `"-Infinity"`);
 * - a bigint becomes its decimal digits as a string;
 * - nesting below {@link MAX_AUDIT_DEPTH} levels becomes `"[nested deeper than 64 levels]"`;
 * - a repeated reference to an enclosing object (a cycle) becomes `"[cycle]"`;
 * - functions and symbols are left out (as JSON does), `undefined` array slots become null.
 *
 * Objects are copied with their own enumerable keys as data properties on a null prototype, so a
 * key such as `__proto__` (which `JSON.parse` makes an own key) survives instead of vanishing into
 * a prototype.
 */
export function toAuditValue(value: unknown): AuditValue {
  const state = { normalised: false };
  const v = normalise(value, new Set(), 0, state);
  return { value: v, normalised: state.normalised };
}

function normalise(
  value: unknown,
  seen: Set<object>,
  depth: number,
  state: { normalised: boolean },
): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      if (Number.isFinite(value)) return value;
      state.normalised = true;
      return String(value);
    case 'bigint':
      state.normalised = true;
      return value.toString();
    case 'function':
    case 'symbol':
      state.normalised = true;
      return undefined;
  }
  if (value === null || value instanceof RawJson) return value;
  const obj = value as object;
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return normalise(toJSON.call(obj), seen, depth, state);
  if (seen.has(obj)) {
    state.normalised = true;
    return '[cycle]';
  }
  if (depth >= MAX_AUDIT_DEPTH) {
    state.normalised = true;
    return `[nested deeper than ${MAX_AUDIT_DEPTH} levels]`;
  }
  seen.add(obj);
  try {
    if (Array.isArray(obj)) return obj.map((v) => normalise(v, seen, depth + 1, state) ?? null);
    const out: Record<string, unknown> = Object.create(null);
    for (const key of Object.keys(obj)) {
      const v = normalise((obj as Record<string, unknown>)[key], seen, depth + 1, state);
      if (v !== undefined) out[key] = v;
    }
    return out;
  } finally {
    seen.delete(obj);
  }
}

// A UTF-16 code unit of a surrogate pair without its partner (what UTF-8 cannot encode).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * A string column of the query index, from a record's string: the same text, except that a lone
 * surrogate is spelled as its `\uXXXX` escape, exactly as the record's canonical JSON spells it.
 * SQLite stores text as UTF-8, which has no lone surrogates and would turn one into U+FFFD: the
 * index then differed from its record and `verify` reported `index_mismatch` for good. Well-formed
 * strings (all real ones) are returned unchanged.
 */
export function indexText(s: string): string {
  if (isWellFormed(s)) return s;
  return s.replace(LONE_SURROGATES, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

// ES2024 String.prototype.isWellFormed (native in Node 20; not in our ES2023 typings).
const nativeIsWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/** True when `s` holds no lone surrogate (its UTF-8 encoding is lossless). */
export function isWellFormed(s: string): boolean {
  if (nativeIsWellFormed) return nativeIsWellFormed.call(s);
  return !/[\ud800-\udfff]/.test(s) || !LONE_SURROGATE.test(s);
}
