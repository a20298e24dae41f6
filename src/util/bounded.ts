/**
 * Memory bounded by bytes, not entries (T31): a table keyed by a string from outside (a tool name, a
 * URI, a claim) holds at most a fixed number of entries, and each key is at most {@link KEY_CHARS}
 * characters — a longer one is replaced by its SHA-256 — so the table's size in bytes has a bound
 * whatever the strings are.
 */
import { sha256 } from './hash.ts';

/** Longest key kept as is; longer keys are hashed. */
export const KEY_CHARS = 128;

/** `s` itself when short, else `#` + its SHA-256 (base64url): a key of at most {@link KEY_CHARS} characters. */
export function boundedKey(s: string): string {
  return s.length <= KEY_CHARS ? s : `#${sha256(s, 'base64url')}`;
}

/**
 * A Map with at most `max` entries: setting a new key when full drops the oldest entry (insertion
 * order; `get` does not refresh). Callers pass keys through {@link boundedKey} when they come from outside.
 */
export class CappedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.max) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}
