/**
 * Canonical JSON: the one byte form that audit hashes, argument digests and
 * checkpoint signatures are computed over. RFC 8785-like for the values the audit
 * log holds: object keys sorted by UTF-16 code units, no whitespace, numbers in
 * ECMAScript shortest form (what JSON.stringify emits, which RFC 8785 adopts),
 * strings escaped as JSON.stringify does. Anything without one meaning
 * (NaN, Infinity, bigint, functions, symbols, cycles) is refused rather than
 * silently changed, because two writers must never hash the same event differently.
 */
import { createHash } from 'node:crypto';

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

/** The canonical JSON text of `value`. `undefined` object members are omitted, as in JSON. */
export function canonicalJson(value: unknown): string {
  const out = write(value, new Set());
  if (out === undefined) throw new CanonicalError('value has no json form');
  return out;
}

/** Lower-case hex SHA-256 of the canonical JSON of `value` (the argument digest). */
export function canonicalDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

// RFC 8785 §3.2.3: sort by UTF-16 code units, which is what the default
// (non-locale) string comparison of JavaScript does.
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function write(value: unknown, seen: Set<object>): string | undefined {
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
  if (typeof toJSON === 'function') return write(toJSON.call(obj), seen);
  if (seen.has(obj)) throw new CanonicalError('cyclic value');
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      // As in JSON.stringify: an array slot without a JSON form is null.
      return `[${obj.map((v) => write(v, seen) ?? 'null').join(',')}]`;
    }
    const parts: string[] = [];
    for (const key of Object.keys(obj).sort(byCodeUnits)) {
      const v = write((obj as Record<string, unknown>)[key], seen);
      if (v !== undefined) parts.push(`${JSON.stringify(key)}:${v}`);
    }
    return `{${parts.join(',')}}`;
  } finally {
    seen.delete(obj);
  }
}
