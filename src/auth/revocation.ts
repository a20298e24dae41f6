/**
 * The token revocation list: access tokens refused before they expire. The verifier asks
 * {@link RevocationList.isRevoked} on every request, the verified-token cache hit path included
 * (src/auth/verify/index.ts), and the embedded authorization server asks it before it mints a token
 * from an older credential (refresh token, authorization code, token-exchange subject token).
 *
 * An entry names one token (`jti`), an agent (client id), a user (`sub`), or one agent acting for one
 * user (`agent+user`); it revokes every matching token issued at or before its `notBefore` (epoch
 * seconds, compared with `iat`; a token without `iat` counts as issued before). Feeds: RFC 7009
 * revocation at `/oauth/revoke`, `gatehouse grants revoke`, `gatehouse users rm`, revocation of an
 * authorization-server grant (refresh token revoked or reused, authorization code replayed, logout),
 * and pre-registered clients removed from the configuration. See docs/auth.md, "Revocation".
 *
 * In memory the list is four Maps, so a check is at most five Map lookups and an `iat` comparison
 * (plus one per delegating actor), with no I/O and no allocation; an empty list is one comparison.
 * It is loaded from the store at start and polled every 250 ms for entries another process wrote (the
 * CLI, another gateway); an entry made in this process applies at once. An entry is forgotten once
 * every token it covers has expired: the verifier refuses tokens that live longer than
 * {@link RevocationLifetimes.tokenLifetimeSec}, so memory is bounded by the revocations of that window.
 */
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../config/schema.ts';
import type {
  GrantSelector,
  Repos,
  RevocationKind,
  RevocationRecord,
  RevocationRepo,
} from '../storage/types.ts';
import type { Principal } from './principal.ts';

/** Lifetime of the subject tokens `gatehouse token --user` mints with the AS key (src/cli/auth.ts). */
export const LOCAL_SUBJECT_TOKEN_TTL_SEC = 60;

/** How often the store is polled for entries written by another process (ms): the maximum lag. */
export const REVOCATION_POLL_MS = 250;

/**
 * Slack added to every entry's lifetime: more than the verifier's clock tolerance (30 s), which
 * accepts a token that long past its `exp`.
 */
const SKEW_MARGIN_SEC = 60;

/** A poll re-reads this much before the previous one: a row committed late with an earlier time is still seen. */
const POLL_OVERLAP_MS = 1_000;

/** How often forgotten entries are dropped from memory and the store (ms). */
const PRUNE_EVERY_MS = 60_000;

/** What a revocation check reads of a principal. */
export type RevocationSubject = Pick<Principal, 'agent' | 'user' | 'actors' | 'tokenId' | 'issuedAt'>;

/** How long entries are kept. */
export interface RevocationLifetimes {
  /** The longest access token the gateway accepts, seconds (the verifier refuses longer ones). */
  readonly tokenLifetimeSec: number;
  /**
   * How long an entry by agent or user is kept, seconds: at least `tokenLifetimeSec`; with the embedded
   * authorization server also the refresh-token lifetime, since a refresh token issued before the
   * revocation is refused by the same entry.
   */
  readonly retentionSec: number;
}

/** The lifetimes a configuration allows (the CLI and the gateway compute the same from one config). */
export function revocationLifetimes(config: GatehouseConfig): RevocationLifetimes {
  const auth = config.auth;
  if (auth.mode === 'embedded') {
    const tokenLifetimeSec = Math.max(auth.embedded.accessTokenTtlSec, LOCAL_SUBJECT_TOKEN_TTL_SEC);
    return { tokenLifetimeSec, retentionSec: Math.max(tokenLifetimeSec, auth.embedded.refreshTokenTtlSec) };
  }
  if (auth.mode === 'external' && auth.external) {
    const tokenLifetimeSec = auth.external.maxTokenLifetimeSec;
    return { tokenLifetimeSec, retentionSec: tokenLifetimeSec };
  }
  return { tokenLifetimeSec: 0, retentionSec: 0 };
}

/** What to revoke. */
export type RevocationTarget =
  /** One token; `expiresAt` (its `exp`, epoch seconds) when known. */
  | { readonly kind: 'jti'; readonly jti: string; readonly expiresAt?: number | undefined }
  | { readonly kind: 'agent'; readonly agent: string }
  | { readonly kind: 'user'; readonly user: string }
  /** The agent's tokens for this user; `user` undefined: the agent's own (client-credentials) tokens. */
  | { readonly kind: 'agent+user'; readonly agent: string; readonly user: string | undefined };

/** The `value` of an `agent+user` entry. */
export function pairValue(agent: string, user: string | undefined): string {
  return JSON.stringify([agent, user ?? null]);
}

/** The other way round; undefined when `value` is not a pair. */
function parsePair(value: string): { agent: string; user: string } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string') return undefined;
  const user: unknown = v[1];
  if (user !== null && typeof user !== 'string') return undefined;
  return { agent: v[0], user: user ?? '' };
}

function keepSec(kind: RevocationKind, l: RevocationLifetimes): number {
  return (kind === 'jti' ? l.tokenLifetimeSec : l.retentionSec) + SKEW_MARGIN_SEC;
}

/**
 * The tokens a revocation also revokes: every token of the agent or user issued until now; for one
 * grant, the token that opened it when it is a session grant (by `jti`, else every token of its agent
 * for its user). A task grant's token names its grant and is refused once the grant ended.
 */
export async function tokensOf(tx: Repos, selector: GrantSelector): Promise<RevocationTarget | undefined> {
  if ('agent' in selector) return { kind: 'agent', agent: selector.agent };
  if ('user' in selector) return { kind: 'user', user: selector.user };
  const g = await tx.grants.get(selector.id);
  if (g?.kind !== 'session') return undefined;
  return g.tokenId !== undefined
    ? { kind: 'jti', jti: g.tokenId }
    : { kind: 'agent+user', agent: g.agent, user: g.user };
}

/**
 * The entry revoking `target` at `now` (epoch ms): tokens issued in or before this second are refused
 * (`iat` has one-second resolution); kept until every token it covers has expired.
 */
export function revocationRecord(
  target: RevocationTarget,
  o: { readonly now: number; readonly reason: string; readonly lifetimes: RevocationLifetimes },
): RevocationRecord {
  const notBefore = Math.floor(o.now / 1000);
  const keepUntil = o.now + keepSec(target.kind, o.lifetimes) * 1000;
  const base = { notBefore, recordedAt: o.now, reason: o.reason };
  switch (target.kind) {
    case 'jti':
      return {
        ...base,
        kind: 'jti',
        value: target.jti,
        expiresAt:
          target.expiresAt === undefined
            ? keepUntil
            : Math.min(keepUntil, (target.expiresAt + SKEW_MARGIN_SEC) * 1000),
      };
    case 'agent':
      return { ...base, kind: 'agent', value: target.agent, expiresAt: keepUntil };
    case 'user':
      return { ...base, kind: 'user', value: target.user, expiresAt: keepUntil };
    case 'agent+user':
      return {
        ...base,
        kind: 'agent+user',
        value: pairValue(target.agent, target.user),
        expiresAt: keepUntil,
      };
  }
}

/** One entry in memory. */
interface Entry {
  /** Epoch seconds. */
  notBefore: number;
  /** Epoch ms. */
  forgetAt: number;
}

/** Whether `e` revokes a token issued at `iat` (a token without `iat` counts as issued before). */
function covers(e: Entry | undefined, iat: number | undefined): boolean {
  return e !== undefined && (iat === undefined || iat <= e.notBefore);
}

/** Where an entry came from: made in this process, or read from the store. */
export type RevocationSource = 'local' | 'store';

/** Options of {@link RevocationList}. */
export interface RevocationListOptions {
  readonly lifetimes: RevocationLifetimes;
  readonly log: Logger;
  /** Poll interval (ms), default {@link REVOCATION_POLL_MS}. */
  readonly pollMs?: number;
}

/** The revocation list of one gateway process (see the module header). */
export class RevocationList {
  private readonly byJti = new Map<string, Entry>();
  private readonly byAgent = new Map<string, Entry>();
  private readonly byUser = new Map<string, Entry>();
  /** agent → user (`''`: the agent's own tokens) → entry. */
  private readonly byPair = new Map<string, Map<string, Entry>>();
  private count = 0;
  private readonly repo: RevocationRepo;
  private readonly lifetimes: RevocationLifetimes;
  private readonly log: Logger;
  private readonly pollMs: number;
  /** Store rows expiring this long ago are certainly forgotten by every gateway with this config (ms). */
  private readonly keepMs: number;
  private timer: NodeJS.Timeout | undefined;
  private pollFrom = Date.now();
  private polling = false;
  private prunedAt = 0;
  /** Called once for each entry that is new here or revokes more than before (audit, metrics, grants). */
  onAdded: (rec: RevocationRecord, source: RevocationSource) => void = () => {};

  constructor(storage: { readonly revocations: RevocationRepo }, opts: RevocationListOptions) {
    this.repo = storage.revocations;
    this.lifetimes = opts.lifetimes;
    this.log = opts.log;
    this.pollMs = opts.pollMs ?? REVOCATION_POLL_MS;
    this.keepMs =
      (Math.max(opts.lifetimes.tokenLifetimeSec, opts.lifetimes.retentionSec) + SKEW_MARGIN_SEC) * 1000;
  }

  /** Entries in memory. */
  get size(): number {
    return this.count;
  }

  /** Loads the live entries (before the gateway serves anything), then polls the store. */
  async start(): Promise<void> {
    const now = Date.now();
    this.pollFrom = now;
    for (const rec of await this.repo.listLive(now - this.keepMs)) this.merge(rec, now);
    this.prunedAt = now;
    await this.purgeStore(now);
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    this.timer.unref();
  }

  /**
   * Whether the token behind `p` is revoked. The hot path (every request): an empty list costs one
   * comparison, otherwise at most five Map lookups (plus one per delegating actor) and an `iat`
   * comparison; keys come from the token, so only Map lookups, never object properties.
   */
  isRevoked(p: RevocationSubject): boolean {
    if (this.count === 0) return false;
    if (p.tokenId !== undefined && this.byJti.has(p.tokenId)) return true;
    const iat = p.issuedAt;
    if (covers(this.byAgent.get(p.agent), iat)) return true;
    // A token that acts through a revoked agent (RFC 8693 `act` chain) was obtained on its authority.
    for (const actor of p.actors) if (actor !== p.agent && covers(this.byAgent.get(actor), iat)) return true;
    if (p.user !== undefined && covers(this.byUser.get(p.user), iat)) return true;
    return covers(this.byPair.get(p.agent)?.get(p.user ?? ''), iat);
  }

  /**
   * Revokes `target` now: applied in this process at once, then written to the store, where other
   * gateways pick it up within their poll interval. Rejects when the store write fails (this process
   * still refuses the tokens).
   */
  async revoke(target: RevocationTarget, reason: string): Promise<RevocationRecord> {
    const now = Date.now();
    const rec = revocationRecord(target, { now, reason, lifetimes: this.lifetimes });
    this.apply(rec, now, 'local');
    await this.repo.add(rec);
    return rec;
  }

  /** Stops polling. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private apply(rec: RevocationRecord, now: number, source: RevocationSource): void {
    if (!this.merge(rec, now)) return;
    try {
      this.onAdded(rec, source);
    } catch (err) {
      this.log.error({ err }, 'revocation listener failed');
    }
  }

  /** Adds or raises the entry; true when it now revokes more than before (or is new). */
  private merge(rec: RevocationRecord, now: number): boolean {
    // The entry lives at least as long as this gateway's own lifetimes say, whatever the writer (a CLI
    // run with another config) computed.
    const forgetAt = Math.max(rec.expiresAt, (rec.notBefore + keepSec(rec.kind, this.lifetimes)) * 1000);
    if (forgetAt <= now) return false;
    let map: Map<string, Entry>;
    let key: string;
    switch (rec.kind) {
      case 'jti':
        map = this.byJti;
        key = rec.value;
        break;
      case 'agent':
        map = this.byAgent;
        key = rec.value;
        break;
      case 'user':
        map = this.byUser;
        key = rec.value;
        break;
      case 'agent+user': {
        const pair = parsePair(rec.value);
        if (!pair) {
          this.log.warn({ value: rec.value }, 'ignoring a malformed agent+user revocation');
          return false;
        }
        let users = this.byPair.get(pair.agent);
        if (users === undefined) {
          users = new Map();
          this.byPair.set(pair.agent, users);
        }
        map = users;
        key = pair.user;
        break;
      }
    }
    const old = map.get(key);
    if (old === undefined) {
      map.set(key, { notBefore: rec.notBefore, forgetAt });
      this.count++;
      return true;
    }
    old.forgetAt = Math.max(old.forgetAt, forgetAt);
    if (rec.notBefore <= old.notBefore) return false;
    old.notBefore = rec.notBefore;
    return true;
  }

  /** Revocations written by another process; forgetting expired entries now and then. */
  /** Polls the store now (the cluster bus says another replica revoked tokens). */
  poll(): Promise<void> {
    return this.tick();
  }

  private async tick(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    const now = Date.now();
    try {
      const since = this.pollFrom - POLL_OVERLAP_MS;
      this.pollFrom = now;
      for (const rec of await this.repo.recordedSince(since)) this.apply(rec, now, 'store');
      if (now - this.prunedAt >= PRUNE_EVERY_MS) {
        this.prunedAt = now;
        this.prune(now);
        await this.purgeStore(now);
      }
    } catch (err) {
      this.log.error({ err }, 'cannot poll token revocations');
    } finally {
      this.polling = false;
    }
  }

  private prune(now: number): void {
    const drop = (map: Map<string, Entry>): void => {
      for (const [k, e] of map) {
        if (e.forgetAt <= now) {
          map.delete(k);
          this.count--;
        }
      }
    };
    drop(this.byJti);
    drop(this.byAgent);
    drop(this.byUser);
    for (const [agent, users] of this.byPair) {
      drop(users);
      if (users.size === 0) this.byPair.delete(agent);
    }
  }

  private async purgeStore(now: number): Promise<void> {
    try {
      await this.repo.purge(now - this.keepMs);
    } catch (err) {
      this.log.warn({ err }, 'cannot purge forgotten token revocations');
    }
  }
}
