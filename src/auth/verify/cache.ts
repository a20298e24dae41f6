/**
 * Bounded LRU of verified tokens, keyed by the SHA-256 of the token (the token
 * itself is never stored). Entries carry a hard deadline; an entry past it is
 * dropped on lookup and never returned.
 */
import { sha256 } from '../../util/hash.ts';
import type { Principal } from '../principal.ts';

interface Entry {
  readonly principal: Principal;
  /** Epoch ms after which the entry must not be used. */
  readonly until: number;
}

/** SHA-256 of the token, base64url: the cache and in-flight key. */
export function tokenKey(token: string): string {
  return sha256(token, 'base64url');
}

/** LRU with per-entry deadlines. A Map keeps insertion order; re-inserting on hit makes it an LRU. */
export class VerifiedCache {
  private readonly map = new Map<string, Entry>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.map.size;
  }

  /** The cached principal, unless absent or past its deadline at `now` (epoch ms). */
  get(key: string, now: number): Principal | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.map.delete(key);
    if (now >= e.until) return undefined;
    this.map.set(key, e);
    return e.principal;
  }

  /** Stores a verified principal until `until` (epoch ms); no-op when already past. */
  set(key: string, principal: Principal, until: number, now: number): void {
    if (this.capacity <= 0 || now >= until) return;
    this.map.delete(key);
    if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, { principal, until });
  }

  clear(): void {
    this.map.clear();
  }
}
