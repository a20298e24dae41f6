/**
 * Lookups and writes keyed by a value from outside (a client, a token, an upstream, config) on plain
 * objects. `obj[key]` with key `constructor`, `toString` or `__proto__` finds Object.prototype's
 * members, and `obj['__proto__'] = v` replaces the prototype instead of storing a member; these two
 * helpers see own members only. Prefer a `Map` where the object is ours; use these where the data is
 * (JSON from the wire, config records).
 */

/** `obj[key]` if `key` is an own property of `obj`, else undefined. */
export function getOwn<V>(obj: Readonly<Record<string, V>> | undefined, key: string): V | undefined {
  return obj !== undefined && Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** Stores `value` as an own, enumerable member named `key` (also when `key` is `__proto__`). */
export function setOwn<V>(obj: Record<string, V>, key: string, value: V): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
