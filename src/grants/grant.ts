/**
 * Grants: Gatehouse's unit of privilege. A grant binds one principal to the tools it may use for one
 * task (an MCP session, or a task token), with an expiry, an idle timeout and an owner. Everything that
 * runs under a grant (sessions with their in-flight calls, streams and stdio processes; later,
 * credential leases) registers as a member and is ended with it. See docs/policy.md.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { type Principal, principalKey } from '../auth/principal.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { GatehouseError } from '../errors.ts';
import type { GrantRecord, GrantSelector, Storage } from '../storage/types.ts';

/** Something that lives under a grant and ends with it. */
export interface GrantMember {
  /** True while work is in flight (the idle timeout waits for it). */
  busy(): boolean;
  /** Ends the member; called once when the grant ends. */
  end(reason: GatehouseError): Promise<void>;
}

/** What a new grant is made of. */
export interface GrantRequest {
  readonly kind: GrantRecord['kind'];
  readonly principal: Principal;
  /** Exposed tool names; undefined: whatever policy allows the principal. */
  readonly tools?: readonly string[];
  readonly constraints?: GrantRecord['constraints'];
  /** Epoch ms; capped by grants.maxLifetimeSec. */
  readonly expiresAt?: number;
  readonly createdBy: string;
}

/** Read labels one grant keeps (a bound; label names come from config, so this is never reached in practice). */
const MAX_READ_LABELS = 256;
/** Cluster mode: task-grant uses are shared, and task grants loaded, every this many polls (5 s). */
const SHARE_EVERY_TICKS = 20;

/** A live grant. */
export class Grant {
  lastUsed: number;
  /** Client requests in flight under this grant, across its sessions (limits.maxCallsInFlightPerGrant). */
  inflight = 0;
  private readonly members = new Set<GrantMember>();
  private readonly toolSet: ReadonlySet<string> | undefined;
  private readonly readSet = new Set<string>();
  /**
   * Labels of what the grant has read (`context.read` in policy): taint from untrusted content, added
   * by the response stage sanitize-result (docs/sanitization.md "Taint"). Never removed while the
   * grant lives. Undefined while empty, so an untainted call builds no set.
   */
  readLabels: readonly string[] | undefined;

  constructor(readonly record: GrantRecord) {
    this.lastUsed = record.createdAt;
    this.toolSet = record.tools === undefined ? undefined : new Set(record.tools);
  }

  get id(): string {
    return this.record.id;
  }

  get ended(): boolean {
    return this.record.endedAt !== undefined;
  }

  /** Whether the grant covers this exposed tool name (policy still decides each call). */
  coversTool(exposed: string): boolean {
    return this.toolSet === undefined || this.toolSet.has(exposed);
  }

  /**
   * Checks a call's arguments against the grant's constraints for the tool: every constrained argument
   * must be present with one of its allowed values. Returns the first violated argument name.
   */
  violatedConstraint(exposed: string, args: Record<string, unknown> | undefined): string | undefined {
    // Own properties only: a tool or argument named like an Object.prototype member finds nothing.
    const c = Object.hasOwn(this.record.constraints, exposed) ? this.record.constraints[exposed] : undefined;
    if (c === undefined) return undefined;
    for (const [name, allowed] of Object.entries(c)) {
      const v = args !== undefined && Object.hasOwn(args, name) ? args[name] : undefined;
      const text = typeof v === 'string' ? v : v === undefined ? undefined : JSON.stringify(v);
      if (text === undefined || !allowed.includes(text)) return name;
    }
    return undefined;
  }

  /**
   * Adds read labels (taint); returns the labels that are new. Bounded: a grant keeps at most
   * {@link MAX_READ_LABELS} labels (the label names come from config: server names and families).
   */
  markRead(labels: readonly string[]): string[] {
    const added: string[] = [];
    for (const l of labels) {
      if (this.readSet.has(l) || this.readSet.size >= MAX_READ_LABELS) continue;
      this.readSet.add(l);
      added.push(l);
    }
    if (added.length > 0) this.readLabels = Object.freeze([...this.readSet]);
    return added;
  }

  /** Whether `p` is the principal this grant was made for (T10-11: grants never move between principals). */
  boundTo(p: Principal): boolean {
    return this.record.principalKey === principalKey(p);
  }

  attach(member: GrantMember): void {
    this.members.add(member);
  }

  detach(member: GrantMember): void {
    this.members.delete(member);
  }

  busy(): boolean {
    for (const m of this.members) if (m.busy()) return true;
    return false;
  }

  /** Marks the grant ended and ends every member (in-flight calls are cancelled upstream and answered). */
  async finish(reason: string, at: number): Promise<void> {
    if (this.record.endedAt === undefined) {
      this.record.endedAt = at;
      this.record.endReason = reason;
    }
    const members = [...this.members];
    this.members.clear();
    const err = new GatehouseError('grant_ended', `the grant has ended: ${reason}`, {
      data: { grant: this.id },
    });
    await Promise.all(members.map((m) => m.end(err)));
  }
}

/** 144 bits of randomness, URL-safe, recognisable in logs. */
export function newGrantId(): string {
  return `gr_${randomBytes(18).toString('base64url')}`;
}

/** Matches `name` against a key that may contain `*` wildcards. */
export function globMatch(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  const re = new RegExp(`^${pattern.split('*').map(escapeRe).join('.*')}$`);
  return re.test(name);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Live grants: creation, lookup, ending (session end, expiry, idle timeout, revocation), and noticing
 * revocations made by another process (`gatehouse grants revoke` writes to the same store).
 */
export class GrantManager {
  private readonly live = new Map<string, Grant>();
  private readonly timer: NodeJS.Timeout;
  /** Revocations ended at or after this time are picked up on the next poll. */
  private pollFrom = Date.now();
  private polling = false;
  /** Cluster mode (`start({ shared: true })`): other replicas' grants are in the store too. */
  private shared = false;
  /** Task grants ended here, so a load racing the store write does not bring one back (bounded). */
  private readonly endedHere = new Set<string>();
  /** Last use of each task grant as last told to the cluster (shared mode). */
  private readonly reported = new Map<string, number>();
  private ticks = 0;
  /** How often uses are shared (ms): a use elsewhere may be reported this late. */
  private readonly shareEveryMs: number;
  /**
   * Cluster mode: a task grant is used from any replica, so its idle timeout counts uses everywhere.
   * `record` tells the cluster of uses here; `lastUses` says when each grant was last used anywhere.
   */
  sharedUse:
    | {
        record(uses: ReadonlyMap<string, number>): Promise<void>;
        lastUses(ids: readonly string[]): Promise<Map<string, number>>;
      }
    | undefined;
  /** Called for every grant made and every grant that ends (metrics, audit). */
  onCreated: (grant: Grant) => void = () => {};
  onEnded: (grant: Grant) => void = () => {};

  constructor(
    private readonly storage: Storage,
    private readonly config: GatehouseConfig,
    private readonly log: Logger,
    /** How often revocations from other processes and expiries are checked (ms). */
    pollMs = 250,
  ) {
    this.shareEveryMs = pollMs * SHARE_EVERY_TICKS;
    this.timer = setInterval(() => void this.tick(), pollMs);
    this.timer.unref();
  }

  /**
   * At start-up: session grants of a previous run died with their sessions; task grants outlive a
   * restart (their tokens are still valid) and are loaded again.
   */
  async start(opts: { shared?: boolean } = {}): Promise<void> {
    this.shared = opts.shared === true;
    const now = Date.now();
    for (const rec of await this.storage.grants.listLive(now)) {
      // In a cluster (`shared`) the other replicas' session grants are live: left to their owners.
      if (rec.kind === 'session') {
        if (!opts.shared) await this.storage.grants.end({ id: rec.id }, 'gateway restarted', now);
      } else this.live.set(rec.id, new Grant(rec));
    }
  }

  get size(): number {
    return this.live.size;
  }

  /** The owner of an agent identity: grants.owners, else the pre-registered client's owner. */
  ownerOf(agent: string): string | undefined {
    return (
      (Object.hasOwn(this.config.grants.owners, agent) ? this.config.grants.owners[agent] : undefined) ??
      this.config.auth.embedded.clients.find((c) => c.clientId === agent)?.owner
    );
  }

  /**
   * Makes a grant. It is live at once; `persisted` settles when the store has it (task grants await it
   * before their token is issued). Refused (grant_refused) when grants.requireOwner and no owner is known.
   */
  create(req: GrantRequest): { grant: Grant; persisted: Promise<void> } | GatehouseError {
    const p = req.principal;
    const owner = this.ownerOf(p.agent);
    if (owner === undefined && this.config.grants.requireOwner) {
      return new GatehouseError('grant_refused', `agent ${p.agent} has no owner (grants.requireOwner)`);
    }
    const now = Date.now();
    const maxEnd = now + this.config.grants.maxLifetimeSec * 1000;
    const rec: GrantRecord = {
      id: newGrantId(),
      kind: req.kind,
      agent: p.agent,
      user: p.user,
      tenant: p.tenant,
      issuer: p.issuer,
      actors: [...p.actors],
      principalKey: principalKey(p),
      owner,
      tools: req.tools === undefined ? undefined : [...new Set(req.tools)].sort(),
      constraints: req.constraints ?? {},
      createdAt: now,
      expiresAt: Math.min(req.expiresAt ?? maxEnd, maxEnd),
      idleTimeoutMs: this.config.grants.idleTimeoutSec * 1000,
      createdBy: req.createdBy,
      tokenId: p.tokenId,
      endedAt: undefined,
      endReason: undefined,
    };
    const grant = new Grant(rec);
    this.live.set(rec.id, grant);
    this.onCreated(grant);
    const persisted = this.storage.grants.insert(rec);
    persisted.catch((err: unknown) => this.log.error({ err, grant: rec.id }, 'cannot record grant'));
    this.log.info(
      { grant: rec.id, kind: rec.kind, agent: rec.agent, user: rec.user, owner, tools: rec.tools },
      'grant created',
    );
    return { grant, persisted };
  }

  /** A live grant by id; an expired one is ended on the spot. */
  get(id: string): Grant | undefined {
    const g = this.live.get(id);
    if (!g) return undefined;
    if (Date.now() >= g.record.expiresAt) {
      void this.end(g, 'expired');
      return undefined;
    }
    return g;
  }

  list(): Grant[] {
    return [...this.live.values()];
  }

  /** Ends one grant here and in the store. */
  async end(grant: Grant, reason: string): Promise<void> {
    if (!this.live.delete(grant.id)) {
      await grant.finish(reason, Date.now());
      return;
    }
    if (this.shared && grant.record.kind === 'task') {
      if (this.endedHere.size >= 10_000) this.endedHere.clear();
      this.endedHere.add(grant.id);
      this.reported.delete(grant.id);
    }
    const at = Date.now();
    this.log.info({ grant: grant.id, reason }, 'grant ended');
    await Promise.all([
      grant.finish(reason, at),
      this.storage.grants
        .end({ id: grant.id }, reason, at)
        .catch((err: unknown) => this.log.error({ err, grant: grant.id }, 'cannot record grant end')),
    ]);
    this.onEnded(grant);
  }

  /** Revokes by id, agent or user, in the store (so every gateway sharing it notices) and here. */
  async revoke(selector: GrantSelector, reason = 'revoked'): Promise<string[]> {
    const ids = await this.storage.grants.end(selector, reason, Date.now());
    await Promise.all(
      ids.map((id) => {
        const g = this.live.get(id);
        return g ? this.end(g, reason) : undefined;
      }),
    );
    return ids;
  }

  /** Polls the store now (the cluster bus says another replica ended a grant). */
  poll(): Promise<void> {
    return this.tick();
  }

  /** Cluster mode: loads the task grants made on another replica (their tokens may be presented here). */
  async loadTaskGrants(): Promise<void> {
    try {
      for (const rec of await this.storage.grants.listLive(Date.now()))
        if (rec.kind === 'task' && !this.live.has(rec.id) && !this.endedHere.has(rec.id))
          this.live.set(rec.id, new Grant(rec));
    } catch (err) {
      this.log.error({ err }, 'cannot load task grants');
    }
  }

  /**
   * Cluster mode: tells the cluster of task-grant uses here (at most once a second per grant), and
   * ends the locally idle candidates that were idle everywhere; the others take the later use.
   */
  private async sharedIdle(candidates: Grant[], now: number): Promise<void> {
    const hook = this.sharedUse;
    // Not wired yet (start-up): idleness cannot be decided for the cluster; the next round will.
    if (!hook) return;
    const uses = new Map<string, number>();
    for (const g of this.live.values())
      if (g.record.kind === 'task' && g.lastUsed >= (this.reported.get(g.id) ?? 0) + 1000) {
        uses.set(g.id, g.lastUsed);
        this.reported.set(g.id, g.lastUsed);
      }
    try {
      if (uses.size > 0) await hook.record(uses);
      if (candidates.length === 0) return;
      const last = await hook.lastUses(candidates.map((g) => g.id));
      for (const g of candidates) {
        const elsewhere = last.get(g.id) ?? 0;
        // A use elsewhere is reported up to one sharing round late: idle means idle for that much more.
        if (now - elsewhere < g.record.idleTimeoutMs + this.shareEveryMs)
          g.lastUsed = Math.max(g.lastUsed, elsewhere);
        else void this.end(g, 'idle timeout');
      }
    } catch (err) {
      // Without the bus, idleness cannot be decided for the cluster: leave the grants (expiry still holds).
      this.log.warn({ err: (err as Error).message }, 'cannot share task-grant use');
    }
  }

  /** Expiry, idle timeout, and revocations written to the store by another process. */
  private async tick(): Promise<void> {
    const now = Date.now();
    const idleTasks: Grant[] = [];
    for (const g of this.live.values()) {
      if (now >= g.record.expiresAt) void this.end(g, 'expired');
      else if (now - g.lastUsed >= g.record.idleTimeoutMs && !g.busy()) {
        // Cluster mode: a task grant idle here may be in use on another replica.
        if (this.shared && g.record.kind === 'task') idleTasks.push(g);
        else void this.end(g, 'idle timeout');
      }
    }
    if (this.polling) return;
    this.polling = true;
    try {
      // Cluster mode, every 20th tick (5 s): uses and idleness shared; task grants made elsewhere
      // loaded (the fallback for a lost poke).
      if (this.shared && this.ticks++ % SHARE_EVERY_TICKS === 0) {
        await this.sharedIdle(idleTasks, now);
        await this.loadTaskGrants();
      }
      // Overlap by a second: a row committed with an earlier timestamp than the last poll is still seen.
      const since = this.pollFrom - 1000;
      this.pollFrom = now;
      for (const r of await this.storage.grants.endedSince(since)) {
        const g = this.live.get(r.id);
        if (g) await this.end(g, r.endReason);
      }
    } catch (err) {
      this.log.error({ err }, 'cannot poll grant revocations');
    } finally {
      this.polling = false;
    }
  }

  /** Stops the timers; live grants are left to the caller (the registry ends their sessions). */
  close(): void {
    clearInterval(this.timer);
  }
}
