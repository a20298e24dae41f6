/**
 * Anonymous authentication failures, counted per window instead of one record each (T32).
 * A 401 needs no credential at all, so one audit record per refused request let anyone grow the
 * log (and its disk) without bound. Authenticated refusals keep their own records (recorder.ts);
 * failures without a principal are counted per window, code and reason, with a few samples, and
 * written as one `authn.failure.summary` record per bucket when the window ends.
 *
 * Memory is bounded whatever arrives: at most {@link MAX_BUCKETS} buckets per window (reasons
 * beyond that share one), `samples` samples per bucket, {@link MAX_ADDRESSES} distinct addresses.
 */
import { createHash } from 'node:crypto';
import type { AuditEventInput } from './event.ts';

/** What the HTTP adapter knows about a refused request (the token is read here, never stored). */
export interface AuthFailureSource {
  /** Remote address of the connection. */
  address?: string | undefined;
  /** The User-Agent header. */
  userAgent?: string | undefined;
  /** The Authorization header, for the unverified `iss` and `kid` of a JWT (hashed). */
  authorization?: string | undefined;
}

/** One sampled request of a bucket. */
export interface AuthFailureSample {
  time: number;
  requestId: string;
  address?: string;
  /** User-Agent, cut to {@link USER_AGENT_CHARS} characters. */
  userAgent?: string;
  /** First 16 hex of SHA-256 of the token's unverified `iss` claim (UTF-8). */
  tokenIss?: string;
  /** First 16 hex of SHA-256 of the token's unverified `kid` header (UTF-8). */
  tokenKid?: string;
}

/** Options of {@link AnonymousFailures} (config `audit.anonymousFailures`). */
export interface AnonymousFailuresOptions {
  /** Length of a counting window in seconds. */
  windowSec: number;
  /** Requests sampled per bucket and window. */
  samples: number;
}

/** Buckets per window; a reason beyond them is counted under `(other reasons)`. */
export const MAX_BUCKETS = 32;
/** Distinct addresses counted per bucket; beyond it the count is a lower bound. */
export const MAX_ADDRESSES = 1000;
/** Characters of a sampled User-Agent. */
export const USER_AGENT_CHARS = 128;
/** Largest token part decoded for the unverified claims (bigger ones are not looked into). */
const MAX_TOKEN_PART = 16 * 1024;

interface Bucket {
  code: string;
  reason: string | undefined;
  count: number;
  from: number;
  to: number;
  samples: AuthFailureSample[];
  addresses: Set<string>;
  addressesCapped: boolean;
}

/** The per-window counter; `write` appends one summary event (the recorder's best-effort append). */
export class AnonymousFailures {
  private buckets = new Map<string, Bucket>();
  private timer: NodeJS.Timeout | undefined;
  private readonly windowMs: number;

  constructor(
    private readonly opts: AnonymousFailuresOptions,
    private readonly write: (event: AuditEventInput) => Promise<void>,
    private readonly now: () => number = Date.now,
  ) {
    this.windowMs = opts.windowSec * 1000;
  }

  /** Counts one refused request without a principal. */
  add(requestId: string, code: string, reason: string | undefined, source: AuthFailureSource = {}): void {
    const time = this.now();
    let key = `${code}\u0000${reason ?? ''}`;
    let bucket = this.buckets.get(key);
    if (!bucket && this.buckets.size >= MAX_BUCKETS) {
      key = `${code}\u0000\u0000other`;
      reason = '(other reasons)';
      bucket = this.buckets.get(key);
    }
    if (!bucket) {
      bucket = {
        code,
        reason,
        count: 0,
        from: time,
        to: time,
        samples: [],
        addresses: new Set(),
        addressesCapped: false,
      };
      this.buckets.set(key, bucket);
    }
    bucket.count++;
    bucket.to = time;
    if (source.address !== undefined) {
      if (bucket.addresses.size < MAX_ADDRESSES) bucket.addresses.add(source.address);
      else if (!bucket.addresses.has(source.address)) bucket.addressesCapped = true;
    }
    if (bucket.samples.length < this.opts.samples) bucket.samples.push(sample(time, requestId, source));
    if (!this.timer) {
      // The window starts with its first failure; nothing runs while none arrive.
      this.timer = setTimeout(() => void this.flush(), this.windowMs);
      this.timer.unref();
    }
  }

  /** Writes one summary per bucket of the current window and starts a new one. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const buckets = [...this.buckets.values()];
    this.buckets = new Map();
    await Promise.allSettled(
      buckets.map((b) =>
        this.write({
          type: 'authn.failure.summary',
          detail: {
            code: b.code,
            ...(b.reason !== undefined ? { reason: b.reason } : {}),
            count: b.count,
            from: b.from,
            to: b.to,
            windowSec: this.opts.windowSec,
            addresses: b.addresses.size,
            ...(b.addressesCapped ? { addressesCapped: true } : {}),
            samples: b.samples,
          },
        }),
      ),
    );
  }
}

function sample(time: number, requestId: string, source: AuthFailureSource): AuthFailureSample {
  const s: AuthFailureSample = { time, requestId };
  if (source.address !== undefined) s.address = cut(source.address, 64);
  if (source.userAgent !== undefined) s.userAgent = cut(source.userAgent, USER_AGENT_CHARS);
  const claims = unverifiedClaims(source.authorization);
  if (claims.iss !== undefined) s.tokenIss = hash16(claims.iss);
  if (claims.kid !== undefined) s.tokenKid = hash16(claims.kid);
  return s;
}

/**
 * The `iss` claim and `kid` header of a bearer JWT, unverified: which issuer and key a flood
 * claims to come from helps an investigator, and only their hashes are kept, never the token.
 */
function unverifiedClaims(header: string | undefined): { iss?: string; kid?: string } {
  const m = header ? /^Bearer +([A-Za-z0-9\-_]+)\.([A-Za-z0-9\-_]*)\./i.exec(header) : null;
  if (!m?.[1]) return {};
  const out: { iss?: string; kid?: string } = {};
  const head = decodePart(m[1]);
  if (typeof head?.kid === 'string') out.kid = head.kid;
  const body = m[2] ? decodePart(m[2]) : undefined;
  if (typeof body?.iss === 'string') out.iss = body.iss;
  return out;
}

function decodePart(part: string): Record<string, unknown> | undefined {
  if (part.length > MAX_TOKEN_PART) return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function hash16(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** The first `max` UTF-16 units, never ending in half a surrogate pair. */
function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
