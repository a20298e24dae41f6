/**
 * Throttling of failed logins (THREATS T33): a password form or a client secret
 * may be guessed only a few times per key before the key is locked out, with
 * exponential backoff.
 *
 * - Keys are dimensions of one attempt: the username as typed (whether or not
 *   it exists, so a lockout never tells an attacker that a user exists) and the
 *   client address; or the client id and the address for client secrets.
 * - An attempt is counted BEFORE the password is checked and refunded when it
 *   succeeds, so a burst of parallel guesses cannot all pass the check before the
 *   first failure is recorded.
 * - `maxFailures` attempts per key are allowed; the attempt that reaches it
 *   locks the key for `lockoutMs`, and each attempt after a lockout ends (while
 *   the key is remembered) doubles it, up to `maxLockoutMs`. A key is forgotten
 *   `windowMs` after its last attempt or the end of its lockout, whichever is later.
 * - Memory is bounded: at most `maxKeys` keys per dimension, each stored as a
 *   128-bit SHA-256 prefix of the value (never the value); when full, expired
 *   keys are swept, then the least recently used one is evicted.
 *
 * Behind a reverse proxy every client has the proxy's address: the per-address
 * limit then applies to all clients together (set it to 0 to turn it off).
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { ipv6Words } from './safe-fetch.ts';

/** Limits of one dimension. */
export interface LimitRule {
  /** Attempts allowed within the window before a lockout; 0 turns the dimension off. */
  readonly maxFailures: number;
}

/** Options of an {@link AttemptLimiter}. */
export interface AttemptLimiterOptions {
  /** The dimensions of an attempt and their limits, e.g. `{ user: …, address: … }`. */
  readonly rules: Readonly<Record<string, LimitRule>>;
  readonly windowMs: number;
  readonly lockoutMs: number;
  readonly maxLockoutMs: number;
  /** Keys kept per dimension. */
  readonly maxKeys: number;
  /** Clock (tests). Default `Date.now`. */
  readonly now?: () => number;
}

interface Entry {
  /** Attempts counted (refunded on success). */
  attempts: number;
  last: number;
  lockedUntil: number;
  /** The lockout for which a refusal was already reported (refusals are reported once per lockout). */
  reportedLock: number;
}

/** What {@link AttemptLimiter.attempt} decided. */
export type AttemptVerdict =
  | {
      readonly allowed: true;
      /** Call when the credentials were right: the attempt is refunded (and the user's failures forgotten). */
      succeeded(): void;
    }
  | {
      readonly allowed: false;
      /** Seconds until the longest lockout among the keys ends (for `Retry-After`). */
      readonly retryAfterSec: number;
      /** True for the first refusal of this lockout: report it; later ones are only counted. */
      readonly firstRefusal: boolean;
    };

/** One key of an attempt: the dimension (a rule name) and the raw value (hashed here). */
export interface AttemptKey {
  readonly dimension: string;
  readonly value: string;
  /** On success, forget this key entirely (the username) instead of refunding one attempt (the address). */
  readonly resetOnSuccess?: boolean;
}

class Table {
  readonly map = new Map<string, Entry>();
  constructor(
    readonly rule: LimitRule,
    private readonly maxKeys: number,
    private readonly windowMs: number,
  ) {}

  expired(e: Entry, now: number): boolean {
    return now >= Math.max(e.last, e.lockedUntil) + this.windowMs;
  }

  get(key: string, now: number): Entry | undefined {
    const e = this.map.get(key);
    if (e && this.expired(e, now)) {
      this.map.delete(key);
      return undefined;
    }
    return e;
  }

  /** The entry for `key`, created (evicting when full) and moved to the most recently used end. */
  touch(key: string, now: number): Entry {
    let e = this.get(key, now);
    if (e) this.map.delete(key);
    else {
      if (this.map.size >= this.maxKeys) this.evict(now);
      e = { attempts: 0, last: now, lockedUntil: 0, reportedLock: 0 };
    }
    this.map.set(key, e);
    return e;
  }

  private evict(now: number): void {
    // Map iteration follows insertion order and every touch re-inserts: the least recently used come
    // first. Expired ones go; the first live one ends the sweep (amortised O(1) per insert).
    for (const [k, e] of this.map) {
      if (!this.expired(e, now)) break;
      this.map.delete(k);
    }
    // Still full: the least recently used gives way.
    while (this.map.size >= this.maxKeys) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.map.delete(oldest.value);
    }
  }
}

/** Hash of a key value: 128 bits of SHA-256, so no username or address is held in memory as typed. */
function keyHash(dimension: string, value: string): string {
  return createHash('sha256').update(`${dimension}\n${value}`).digest('base64url').slice(0, 22);
}

/** Counts attempts per key and locks keys out with exponential backoff (see the module comment). */
export class AttemptLimiter {
  readonly #tables = new Map<string, Table>();
  readonly #o: AttemptLimiterOptions;
  readonly #now: () => number;

  constructor(o: AttemptLimiterOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    for (const [name, rule] of Object.entries(o.rules)) {
      this.#tables.set(name, new Table(rule, o.maxKeys, o.windowMs));
    }
  }

  /** Keys currently remembered in one dimension (tests, metrics). */
  size(dimension: string): number {
    return this.#tables.get(dimension)?.map.size ?? 0;
  }

  /**
   * Counts an attempt for every key, or refuses it (counting nothing) when a key
   * is locked out. Must be called before the credentials are checked.
   */
  attempt(keys: readonly AttemptKey[]): AttemptVerdict {
    const now = this.#now();
    const active: { table: Table; key: string; resetOnSuccess: boolean }[] = [];
    for (const k of keys) {
      const table = this.#tables.get(k.dimension);
      if (!table || table.rule.maxFailures <= 0) continue;
      active.push({ table, key: keyHash(k.dimension, k.value), resetOnSuccess: k.resetOnSuccess === true });
    }
    let lockedUntil = 0;
    let firstRefusal = false;
    for (const a of active) {
      const e = a.table.get(a.key, now);
      if (e && e.lockedUntil > now) {
        if (e.lockedUntil > lockedUntil) lockedUntil = e.lockedUntil;
        if (e.reportedLock !== e.lockedUntil) {
          e.reportedLock = e.lockedUntil;
          firstRefusal = true;
        }
      }
    }
    if (lockedUntil > 0) {
      return {
        allowed: false,
        retryAfterSec: Math.max(1, Math.ceil((lockedUntil - now) / 1000)),
        firstRefusal,
      };
    }
    const undo: (() => void)[] = [];
    for (const a of active) {
      const e = a.table.touch(a.key, now);
      const before = e.lockedUntil;
      e.attempts++;
      e.last = now;
      const over = e.attempts - a.table.rule.maxFailures;
      let mine: number | undefined;
      if (over >= 0) {
        // The attempt that reaches the limit locks the key; each later one doubles the lockout.
        const ms = Math.min(this.#o.maxLockoutMs, this.#o.lockoutMs * 2 ** Math.min(over, 30));
        e.lockedUntil = now + ms;
        mine = e.lockedUntil;
      }
      const { table, key, resetOnSuccess } = a;
      undo.push(() => {
        if (resetOnSuccess) {
          table.map.delete(key);
          return;
        }
        const cur = table.map.get(key);
        if (cur !== e) return;
        cur.attempts = Math.max(0, cur.attempts - 1);
        // The lock this attempt set is lifted with it; a lock set by another attempt stays.
        if (mine !== undefined && cur.lockedUntil === mine) cur.lockedUntil = before;
      });
    }
    let done = false;
    return {
      allowed: true,
      succeeded: () => {
        if (done) return;
        done = true;
        for (const u of undo) u();
      },
    };
  }
}

/**
 * The address key of a client: the socket's remote address; IPv4-mapped IPv6
 * as IPv4, other IPv6 addresses by their /64 prefix (one subscriber usually
 * holds a whole /64, so per-address counting of single IPv6 addresses would be
 * trivial to spread out).
 */
export function addressKey(remote: string | undefined): string {
  if (!remote) return 'unknown';
  if (isIP(remote) !== 6) return remote;
  const words = ipv6Words(remote);
  if (!words) return remote;
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    const [hi = 0, lo = 0] = words.slice(6);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return `${words
    .slice(0, 4)
    .map((w) => w.toString(16))
    .join(':')}::/64`;
}

/** The username key: NFKC, lower case, so `Alice` and `alice` count together (over-counting is safe). */
export function usernameKey(typed: string): string {
  return typed.normalize('NFKC').toLowerCase();
}

/** A username as typed, for logs and audit: at most 64 characters, control characters replaced. */
export function typedUsername(typed: string): string {
  const cut = [...typed].slice(0, 64).join('');
  return cut.replace(/\p{Cc}/gu, '?');
}
