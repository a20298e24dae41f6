/**
 * Cluster mode (config `bus.kind: redis`): assembles the bus, the session directory and the router,
 * and connects them to the gateway's managers. Above the session layer, below the HTTP adapter, which
 * reaches it through `GatewayParts.cluster`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { resolveSecret } from '../auth/as/clients.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import type { GatehouseError } from '../errors.ts';
import type { Storage } from '../storage/types.ts';
import { ClusterBus, defaultReplicaId, type PokeKind } from './bus.ts';
import { notifyingStorage } from './notify.ts';
import { ClusterRouter } from './route.ts';

export { ClusterBus, type PokeKind, pokeOnce } from './bus.ts';

/** What a replica polls when poked. */
export type Pollers = Partial<Record<PokeKind, (() => Promise<void>) | undefined>>;

export interface SessionDirectory {
  claim(id: string): void;
  release(id: string): void;
}

export class Cluster implements SessionDirectory {
  readonly bus: ClusterBus;
  private router: ClusterRouter | undefined;
  private refresher: NodeJS.Timeout | undefined;
  private readonly secret: string;

  private constructor(
    config: GatehouseConfig,
    private readonly log: Logger,
  ) {
    const b = config.bus;
    if (b.url === undefined || b.secret === undefined) throw new Error('bus.url and bus.secret are required');
    this.secret = resolveSecret(b.secret, 'bus.secret');
    if (this.secret.length < 32) throw new Error('bus.secret: must be at least 32 characters');
    this.bus = new ClusterBus({
      url: b.url,
      password: b.password === undefined ? undefined : resolveSecret(b.password, 'bus.password'),
      prefix: b.prefix,
      replicaId: b.replicaId ?? defaultReplicaId(),
      log,
      // A directory entry outlives an idle session by a minute; live ones are refreshed (below).
      sessionTtlMs: config.limits.sessionIdleTimeoutMs + 60_000,
    });
  }

  /** Connects to Redis; fails start-up when it cannot be reached (a replica without its bus cannot route). */
  static async start(config: GatehouseConfig, log: Logger): Promise<Cluster> {
    const c = new Cluster(config, log);
    await c.bus.start();
    log.info({ replica: c.bus.replicaId, prefix: config.bus.prefix }, 'cluster bus connected');
    return c;
  }

  get replicaId(): string {
    return this.bus.replicaId;
  }

  /** The store, poking the bus after the writes other replicas must learn of at once. */
  storage(s: Storage): Storage {
    return notifyingStorage(s, (k) => this.bus.poke(k));
  }

  /** Pokes run these polls now (each also runs on its own timer: the durable fallback). */
  listen(pollers: Pollers): void {
    for (const [kind, poll] of Object.entries(pollers) as [PokeKind, (() => Promise<void>) | undefined][]) {
      if (!poll) continue;
      this.bus.on(kind, () => {
        poll().catch((err: unknown) => this.log.error({ err, kind }, 'poll after a bus message failed'));
      });
    }
  }

  /** Once listening: advertise this replica, route requests for other replicas' sessions. */
  serve(
    advertiseUrl: string,
    hasSession: (id: string) => boolean,
    liveSessions: () => string[],
    checkOrigin: (req: IncomingMessage) => GatehouseError | undefined,
  ): void {
    this.bus.announce(advertiseUrl);
    this.router = new ClusterRouter({
      bus: this.bus,
      secret: this.secret,
      log: this.log,
      hasSession,
      checkOrigin,
    });
    this.refresher = setInterval(() => {
      this.bus
        .refreshSessions(liveSessions())
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'cannot refresh sessions'));
    }, 30_000);
    this.refresher.unref();
  }

  /** The HTTP adapter's hook: true when the cluster took the request. */
  route(req: IncomingMessage, res: ServerResponse, local: () => void): boolean {
    return this.router ? this.router.route(req, res, local) : false;
  }

  forwarded(req: IncomingMessage): boolean {
    return this.router?.forwarded(req) ?? false;
  }

  claim(id: string): void {
    this.bus.claimSession(id).catch((err: unknown) => {
      this.log.error(
        { err: (err as Error).message, session: id },
        'cannot record the session in the directory',
      );
    });
  }

  release(id: string): void {
    this.bus.releaseSession(id).catch(() => {});
  }

  /** For /readyz. */
  status(): { kind: 'redis'; replica: string; connected: boolean } {
    return { kind: 'redis', replica: this.bus.replicaId, connected: this.bus.connected };
  }

  get stats(): Record<string, number> {
    return { ...this.bus.stats, ...(this.router?.stats ?? {}) };
  }

  /** Waits (until `deadline`, epoch ms) for the requests this replica forwards to be answered. */
  async drain(deadline: number): Promise<void> {
    await this.router?.drain(deadline);
  }

  async close(): Promise<void> {
    clearInterval(this.refresher);
    this.router?.close();
    await this.bus.close();
  }
}

/**
 * Where the other replicas reach this one when `bus.advertiseUrl` is not set: the bound address, or,
 * bound to every interface (0.0.0.0, ::), the first non-internal IPv4 address (a pod's IP).
 */
export function defaultAdvertiseUrl(host: string, port: number): string {
  if (host !== '0.0.0.0' && host !== '::') return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  for (const addrs of Object.values(networkInterfaces()))
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return `http://${a.address}:${port}`;
  return `http://127.0.0.1:${port}`;
}
