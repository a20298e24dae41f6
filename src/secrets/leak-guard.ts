/**
 * The leak guard: exact-match redaction of every brokered secret and minted token
 * in tool results, errors, logs and audit records (THREATS T20). Each registered
 * value is searched in the forms it is likely to leak in: raw, base64, base64url,
 * URL-encoded (`encodeURIComponent` and form encoding), hex (lower and upper case)
 * and JSON-string-escaped. A match becomes `[REDACTED:<label>]`; the label is the
 * secret name or `lease:<id>`, never the value. Redactions are counted per label.
 *
 * Limits, on purpose:
 * - Values shorter than {@link MIN_SECRET_LENGTH} (8) bytes are not registered:
 *   a short string ("admin", "1234") occurs in ordinary text, and redacting it
 *   would mangle results and, worse, tell an attacker which short word is the
 *   secret (a redaction oracle). `register` returns false for them.
 * - Exact match only: a value base64-encoded together with other bytes (e.g. a
 *   `user:password` Basic header) shifts the base64 alphabet and is not found;
 *   the broker registers the forms it hands out itself (the whole header value).
 *
 * Algorithm: every form is at least 8 characters, so forms are indexed by their
 * first 8 characters (a Map from prefix to the forms, longest first). `redact`
 * keeps a rolling hash of the 8-character window; a one-hash Bloom filter (2^20
 * bits) of the prefixes' hashes rejects almost every position without
 * allocating, and only a Bloom hit slices the window for the Map. Cost is
 * O(text length), independent of how many secrets are registered; at a match
 * the longest form wins and the scan continues after it.
 *
 * Microbenchmark (`node --import tsx test/secrets/bench-leak-guard.ts`, Node
 * 20.20, 2-core AMD EPYC VM shared with other work, so +-50% noise), 10 KiB of
 * tool-result-like text:
 * - 1,000 secrets (~5,000 forms): 0.10-0.18 ms per redact (55-105 MB/s), with or
 *   without 10 secrets in the text. A combined RegExp alternation took 2.3-3.9 ms
 *   and indexOf per form 2.1 ms (and they only searched 3 forms per secret).
 * - 10 secrets: 0.07-0.11 ms; here indexOf per form (0.01-0.02 ms) and the RegExp
 *   (0.01-0.04 ms) are faster, but all are negligible next to a tool call, and
 *   one code path that does not degrade with the number of leases was preferred.
 */

/** Values shorter than this (in bytes) are never registered. */
export const MIN_SECRET_LENGTH = 8;
const PREFIX = MIN_SECRET_LENGTH;
/** Rolling-hash base, and B^(PREFIX-1) mod 2^32 (removes the character leaving the window). */
const B = 31;
let bTop = 1;
for (let j = 1; j < PREFIX; j++) bTop = Math.imul(bTop, B);
const B_TOP = bTop;
const BLOOM_BITS = 1 << 20;

function slot(h: number): number {
  return Math.imul(h, 0x9e3779b1) >>> 12; // top 20 bits of a multiplicative mix
}

/** How a value appeared in the text. */
export type LeakForm = 'raw' | 'base64' | 'base64url' | 'url' | 'hex' | 'json';

/** One redaction: which registered value, in which form. Never the value. */
export interface LeakFinding {
  label: string;
  form: LeakForm;
}

export interface Redacted<T> {
  /** The input with every match replaced (the same object/string when nothing matched). */
  value: T;
  findings: LeakFinding[];
}

interface Form {
  text: string;
  label: string;
  form: LeakForm;
}

const LABEL = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The strings a value may leak as, deduplicated; the first form found for a string wins. */
function formsOf(value: Buffer): Array<{ text: string; form: LeakForm }> {
  const out = new Map<string, LeakForm>();
  const add = (text: string, form: LeakForm): void => {
    if (text.length >= PREFIX && !out.has(text)) out.set(text, form);
  };
  const raw = value.toString('utf8');
  const isText = Buffer.from(raw, 'utf8').equals(value);
  if (isText) {
    add(raw, 'raw');
    add(JSON.stringify(raw).slice(1, -1), 'json');
    add(encodeURIComponent(raw), 'url');
    add(new URLSearchParams({ v: raw }).toString().slice(2), 'url');
  }
  // Unpadded: the padded form contains it, so one pattern finds both.
  add(value.toString('base64').replace(/=+$/, ''), 'base64');
  add(value.toString('base64url'), 'base64url');
  const hex = value.toString('hex');
  add(hex, 'hex');
  add(hex.toUpperCase(), 'hex');
  return [...out].map(([text, form]) => ({ text, form }));
}

/**
 * The registry of values to redact. One per gateway process; the secret store
 * registers a secret when it decrypts it, the lease code registers what it mints.
 */
export class LeakGuard {
  /** First PREFIX characters → forms starting with them, longest first. */
  readonly #byPrefix = new Map<string, Form[]>();
  /** label → its forms (for unregister). */
  readonly #byLabel = new Map<string, Form[]>();
  /** Bloom filter (one hash) of the prefixes' rolling hashes: most positions are rejected without allocating. */
  readonly #bloom = new Uint32Array(BLOOM_BITS / 32);
  readonly #counts = new Map<string, number>();
  #total = 0;

  /**
   * Registers `value` under `label` (a secret name or `lease:<id>`). A label may
   * hold several values (e.g. a token and its refresh). Returns false, registering
   * nothing, for a value shorter than {@link MIN_SECRET_LENGTH} bytes.
   */
  register(value: string | Buffer, label: string): boolean {
    if (!LABEL.test(label)) throw new TypeError(`leak guard: invalid label \`${label}\``);
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (bytes.length < MIN_SECRET_LENGTH) return false;
    const mine = this.#byLabel.get(label) ?? [];
    for (const { text, form } of formsOf(bytes)) {
      if (mine.some((f) => f.text === text)) continue;
      const f: Form = { text, label, form };
      mine.push(f);
      const key = text.slice(0, PREFIX);
      const list = this.#byPrefix.get(key) ?? [];
      list.push(f);
      list.sort((a, b) => b.text.length - a.text.length);
      this.#byPrefix.set(key, list);
      this.#mark(key);
    }
    this.#byLabel.set(label, mine);
    return true;
  }

  /** Forgets every value registered under `label`. */
  unregister(label: string): void {
    const mine = this.#byLabel.get(label);
    if (!mine) return;
    this.#byLabel.delete(label);
    for (const f of mine) {
      const key = f.text.slice(0, PREFIX);
      const rest = (this.#byPrefix.get(key) ?? []).filter((g) => g !== f);
      if (rest.length > 0) this.#byPrefix.set(key, rest);
      else this.#byPrefix.delete(key);
    }
    this.#bloom.fill(0);
    for (const k of this.#byPrefix.keys()) this.#mark(k);
  }

  #mark(prefix: string): void {
    let h = 0;
    for (let j = 0; j < PREFIX; j++) h = (Math.imul(h, B) + prefix.charCodeAt(j)) | 0;
    const bit = slot(h);
    this.#bloom[bit >>> 5] = (this.#bloom[bit >>> 5] ?? 0) | (1 << (bit & 31));
  }

  /** Number of labels registered. */
  get size(): number {
    return this.#byLabel.size;
  }

  /** Replaces every registered value (in any of its forms) in `text` with `[REDACTED:<label>]`. */
  redact(text: string): Redacted<string> {
    const findings: LeakFinding[] = [];
    if (this.#byPrefix.size === 0 || text.length < PREFIX) return { value: text, findings };
    const bloom = this.#bloom;
    let out: string[] | undefined;
    let from = 0;
    const last = text.length - PREFIX;
    // Rolling polynomial hash of the window text[i, i + PREFIX).
    let h = 0;
    for (let j = 0; j < PREFIX; j++) h = (Math.imul(h, B) + text.charCodeAt(j)) | 0;
    for (let i = 0; i <= last; i++) {
      if (i > 0)
        h =
          (Math.imul(h - Math.imul(text.charCodeAt(i - 1), B_TOP), B) + text.charCodeAt(i + PREFIX - 1)) | 0;
      if (i < from) continue; // inside the previous match
      const bit = slot(h);
      if (((bloom[bit >>> 5] ?? 0) & (1 << (bit & 31))) === 0) continue;
      const candidates = this.#byPrefix.get(text.slice(i, i + PREFIX));
      if (!candidates) continue;
      const hit = candidates.find((f) => text.startsWith(f.text, i));
      if (!hit) continue;
      out ??= [];
      out.push(text.slice(from, i), `[REDACTED:${hit.label}]`);
      findings.push({ label: hit.label, form: hit.form });
      this.#counts.set(hit.label, (this.#counts.get(hit.label) ?? 0) + 1);
      this.#total++;
      from = i + hit.text.length;
    }
    if (!out) return { value: text, findings };
    out.push(text.slice(from));
    return { value: out.join(''), findings };
  }

  /**
   * Redacts every string (object keys included) in a JSON value; objects and
   * arrays are copied only along the paths that changed.
   */
  redactJson<T>(value: T): Redacted<T> {
    const findings: LeakFinding[] = [];
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') {
        const r = this.redact(v);
        findings.push(...r.findings);
        return r.value;
      }
      if (Array.isArray(v)) {
        let copy: unknown[] | undefined;
        v.forEach((x, i) => {
          const y = walk(x);
          if (y !== x) {
            copy ??= [...v];
            copy[i] = y;
          }
        });
        return copy ?? v;
      }
      if (v !== null && typeof v === 'object') {
        let changed = false;
        const entries = Object.entries(v).map(([k, x]) => {
          const k2 = walk(k) as string;
          const y = walk(x);
          if (k2 !== k || y !== x) changed = true;
          return [k2, y] as const;
        });
        return changed ? Object.fromEntries(entries) : v;
      }
      return v;
    };
    if (this.#byPrefix.size === 0) return { value, findings };
    return { value: walk(value) as T, findings };
  }

  /** Redactions so far, by label (never values). */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  /** Total redactions so far. */
  get total(): number {
    return this.#total;
  }
}
