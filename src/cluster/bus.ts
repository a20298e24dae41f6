/**
 * The cluster bus (config `bus.kind: redis`): what replicas must learn at once, over Redis.
 *
 * - **Pokes** (pub/sub, channel `<prefix>events`): "the store changed: grants | revocations |
 *   approvals | leases". A replica that receives one runs that store poll now instead of at its next
 *   250 ms tick. The message carries no state: the shared store stays the one source of truth, so a
 *   forged or lost message can neither revoke nor keep alive anything; a lost one costs at most the
 *   poll interval (the durable fallback).
 * - **Session directory** (keys `<prefix>session:<id>` → owner replica and its internal URL): an MCP
 *   2025-11-25 session lives in one process (its upstream links and stdio children); another replica
 *   that receives a request for it forwards it there (src/cluster/route.ts).
 * - **Replica heartbeats** (keys `<prefix>replica:<id>`, expiring): who is up, for readiness and docs.
 */
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type PokeKind = 'grants' | 'task-grants' | 'revocations' | 'approvals' | 'leases';
const KINDS: ReadonlySet<string> = new Set<PokeKind>([
  'grants',
  'task-grants',
  'revocations',
  'approvals',
  'leases',
]);

/** Where a session lives. */
export interface SessionOwner {
  replica: string;
  url: string;
}

export interface BusOptions {
  url: string;
  /** Redis password, when not in the URL. */
  password?: string | undefined;
  prefix: string;
  replicaId: string;
  log: Logger;
  /** How long a directory entry lives without a refresh (ms). */
  sessionTtlMs: number;
}

/** A replica id when `bus.replicaId` is not set: the host name (the pod name) and a random suffix. */
export function defaultReplicaId(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 48) || 'replica';
  return `${host}-${Math.random().toString(36).slice(2, 8)}`;
}

const HEARTBEAT_MS = 2000;
const HEARTBEAT_TTL_MS = 6000;

export class ClusterBus {
  readonly replicaId: string;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly channel: string;
  private readonly handlers = new Map<PokeKind, () => void>();
  /** Kinds to publish at the end of this tick (many writes of one transaction make one message). */
  private readonly queued = new Set<PokeKind>();
  private heartbeat: NodeJS.Timeout | undefined;
  private advertiseUrl: string | undefined;
  private closed = false;
  /** Counts for readiness and tests. */
  readonly stats = { published: 0, received: 0 };

  constructor(private readonly o: BusOptions) {
    this.replicaId = o.replicaId;
    this.channel = `${o.prefix}events`;
    const common = {
      // Fail fast while Redis is down (the store poll still works); reconnect in the background.
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: (times: number) => Math.min(times * 200, 2000),
      ...(o.password !== undefined ? { password: o.password } : {}),
    };
    this.cmd = new Redis(o.url, { ...common, connectionName: `gatehouse:${o.replicaId}` });
    this.sub = new Redis(o.url, { ...common, connectionName: `gatehouse:${o.replicaId}:sub` });
    for (const c of [this.cmd, this.sub])
      c.on('error', (err: Error) => {
        if (!this.closed) o.log.warn({ err: err.message }, 'redis bus connection error');
      });
    this.sub.on('message', (channel: string, text: string) => {
      if (channel === this.channel) this.received(text);
    });
    // After a reconnect nothing that was published meanwhile arrives: poll everything once.
    this.sub.on('ready', () => {
      for (const h of this.handlers.values()) h();
    });
  }

  /** Connects both connections and subscribes; rejects when Redis cannot be reached. */
  async start(): Promise<void> {
    await Promise.all([this.cmd.connect(), this.sub.connect()]);
    await this.sub.subscribe(this.channel);
  }

  /** Starts the heartbeat that tells the cluster this replica is up at `url`. */
  announce(url: string): void {
    this.advertiseUrl = url;
    const beat = (): void => {
      this.cmd
        .set(this.key('replica', this.replicaId), url, 'PX', HEARTBEAT_TTL_MS)
        .catch((err: Error) => this.o.log.warn({ err: err.message }, 'redis heartbeat failed'));
    };
    beat();
    this.heartbeat = setInterval(beat, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Runs `fn` when another replica (or the CLI) says the store changed for `kind`. */
  on(kind: PokeKind, fn: () => void): void {
    this.handlers.set(kind, fn);
  }

  /** Tells every other replica that the store changed for `kind` (coalesced per tick; never throws). */
  poke(kind: PokeKind): void {
    if (this.closed) return;
    if (this.queued.size === 0) queueMicrotask(() => this.flush());
    this.queued.add(kind);
  }

  /** Publishes the queued pokes now; resolves when Redis has them (or failed, logged). */
  async flush(): Promise<void> {
    if (this.queued.size === 0) return;
    const kinds = [...this.queued];
    this.queued.clear();
    const text = JSON.stringify({ from: this.replicaId, kinds });
    try {
      await this.cmd.publish(this.channel, text);
      this.stats.published++;
    } catch (err) {
      // The store poll is the fallback: the other replicas learn of it within their poll interval.
      this.o.log.warn({ err: (err as Error).message, kinds }, 'cannot publish on the redis bus');
    }
  }

  private received(text: string): void {
    let kinds: unknown;
    let from: unknown;
    try {
      ({ kinds, from } = JSON.parse(text) as { kinds?: unknown; from?: unknown });
    } catch {
      return;
    }
    if (from === this.replicaId || !Array.isArray(kinds)) return;
    this.stats.received++;
    for (const k of kinds) {
      if (typeof k !== 'string' || !KINDS.has(k)) continue;
      this.handlers.get(k as PokeKind)?.();
    }
  }

  /** Records that this replica owns session `id` (after initialize). */
  async claimSession(id: string): Promise<void> {
    if (this.advertiseUrl === undefined) return;
    const value = JSON.stringify({ replica: this.replicaId, url: this.advertiseUrl });
    await this.cmd.set(this.key('session', id), value, 'PX', this.o.sessionTtlMs);
  }

  /** Forgets session `id` (it ended here, or its owner is gone). */
  async releaseSession(id: string): Promise<void> {
    await this.cmd.del(this.key('session', id));
  }

  /** Keeps the directory entries of live sessions from expiring. */
  async refreshSessions(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    const p = this.cmd.pipeline();
    for (const id of ids) p.pexpire(this.key('session', id), this.o.sessionTtlMs);
    await p.exec();
  }

  /** The replica that owns session `id`, undefined when none does. */
  async sessionOwner(id: string): Promise<SessionOwner | undefined> {
    const text = await this.cmd.get(this.key('session', id));
    if (text === null) return undefined;
    try {
      const v = JSON.parse(text) as Partial<SessionOwner>;
      return typeof v.replica === 'string' && typeof v.url === 'string'
        ? { replica: v.replica, url: v.url }
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** Replicas whose heartbeat is current: id → URL. */
  async replicas(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const pattern = `${this.o.prefix}replica:*`;
    let cursor = '0';
    do {
      const [next, keys] = await this.cmd.scan(cursor, 'MATCH', pattern, 'COUNT', 100);
      cursor = next;
      if (keys.length === 0) continue;
      const values = await this.cmd.mget(...keys);
      keys.forEach((k, i) => {
        const v = values[i];
        if (typeof v === 'string') out.set(k.slice(pattern.length - 1), v);
      });
    } while (cursor !== '0');
    return out;
  }

  /** For /readyz: connected to Redis (both connections). */
  get connected(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  /** Records uses of task grants (a later use never goes back: ZADD GT). */
  async recordGrantUses(uses: ReadonlyMap<string, number>): Promise<void> {
    const args: (string | number)[] = [];
    for (const [id, at] of uses) args.push(at, id);
    const key = `${this.o.prefix}grant-uses`;
    await this.cmd.zadd(key, 'GT', ...args);
    // Uses older than a day decide nothing (grants.idleTimeoutSec is far shorter): dropped.
    await this.cmd.zremrangebyscore(key, '-inf', Date.now() - 86_400_000);
  }

  /** When each task grant was last used on any replica (0: never recorded). */
  async grantLastUses(ids: readonly string[]): Promise<Map<string, number>> {
    const scores = await this.cmd.zmscore(`${this.o.prefix}grant-uses`, ...ids);
    return new Map(ids.map((id, i) => [id, Number(scores[i] ?? 0)]));
  }

  private key(kind: string, id: string): string {
    return `${this.o.prefix}${kind}:${id}`;
  }

  /** Stops the heartbeat, removes this replica's entry, closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    clearInterval(this.heartbeat);
    await this.cmd.del(this.key('replica', this.replicaId)).catch(() => {});
    this.sub.disconnect();
    await this.cmd.quit().catch(() => this.cmd.disconnect());
  }
}

/** Publishes pokes from a short-lived process (the CLI): connects, publishes, quits. */
export async function pokeOnce(
  url: string,
  prefix: string,
  kinds: readonly PokeKind[],
  password?: string,
): Promise<void> {
  const r = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    ...(password !== undefined ? { password } : {}),
  });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.publish(`${prefix}events`, JSON.stringify({ from: 'cli', kinds }));
  } finally {
    r.disconnect();
  }
}
