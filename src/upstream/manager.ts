/**
 * One configured upstream: admits sessions under `limits.maxSessionsPerUpstream` and creates a
 * transport per session (and another when the session's link restarts it, see `session/link.ts`).
 *
 * Process model (stdio): by default (`isolation: session`) a process is never shared between
 * sessions: it holds session state and credentials leased for one grant. A small warm
 * pool of spawned, not-yet-assigned processes hides the cold start (~0.8 s CPU
 * for a Node server); `pool.max` caps live processes; a session's processes
 * stop when it ends. A process that crashes fails the calls in flight; its
 * session's link spawns a replacement (with backoff, behind a breaker).
 *
 * With `isolation: principal | shared` the sessions with the same key (the principal, or everyone;
 * and the protocol revision) share one process through a multiplexer (`shared.ts`), which stops it
 * when its last session leaves. A crashed shared process fails every session's calls; their links'
 * replacements all join the one new process kept under the key.
 *
 * HTTP: the upstream's sockets are two pools owned here (`HttpPools`): request traffic never waits
 * behind the sessions' long-lived GET streams.
 *
 * Credentials: an upstream whose env or headers name a secret or a credential gets them from the
 * broker's leases for the session's grant. A stdio process with credentials is spawned for its session
 * only (no warm pool: a process spawned ahead would hold a secret before any grant exists).
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { GatehouseConfig, ResolvedUpstreamConfig, UpstreamConfig } from '../config/schema.ts';
import type { UpstreamCredentials } from '../credentials/broker.ts';
import { GatehouseError } from '../errors.ts';
import { HttpPools, HttpTransport } from './http.ts';
import { type SharedInit, SharedProcess } from './shared.ts';
import { SseTransport } from './sse.ts';
import { StdioTransport } from './stdio.ts';
import type { UpstreamTransport } from './transport.ts';

/** Which shared process a session joins (isolation principal or shared), and how it is initialized. */
export interface ShareRequest extends SharedInit {
  /** Sessions with the same key share a process (the principal or everyone, and the protocol revision). */
  readonly key: string;
}

/** A process that dies this soon after spawning counts as a failed start. */
const EARLY_DEATH_MS = 2000;
/** Consecutive failed starts after which the pool stops refilling. */
const MAX_EARLY_DEATHS = 3;

export class UpstreamManager {
  private readonly warm: StdioTransport[] = [];
  private live = 0;
  private earlyDeaths = 0;
  private stopped = false;
  /** Sessions holding a place (see `admit`). */
  private admitted = 0;
  /** HTTP upstreams: the sockets all its sessions share. */
  private readonly pools: HttpPools | undefined;
  /** Live shared processes by key (isolation principal or shared). */
  private readonly shared = new Map<string, SharedProcess>();

  /** The config with only its literal env / header values (brokered ones come per session). */
  readonly config: ResolvedUpstreamConfig;
  /** True when env or headers hold brokered values. */
  readonly brokered: boolean;

  constructor(
    readonly name: string,
    config: UpstreamConfig,
    private readonly limits: Pick<
      GatehouseConfig['limits'],
      'maxResultBytes' | 'maxSessionsPerUpstream' | 'initializeTimeoutMs'
    >,
    private readonly log: Logger,
  ) {
    const values = config.type === 'stdio' ? config.env : config.headers;
    const literal: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) if (typeof v === 'string') literal[k] = v;
    this.brokered = Object.keys(literal).length !== Object.keys(values).length;
    this.config = (
      config.type === 'stdio' ? { ...config, env: literal } : { ...config, headers: literal }
    ) as ResolvedUpstreamConfig;
    this.pools = config.type === 'http' ? new HttpPools(new URL(config.url)) : undefined;
  }

  /** Spawns the warm pool. */
  start(): void {
    this.refill();
  }

  /** Live stdio processes (assigned plus warm). */
  get processes(): number {
    return this.live;
  }

  get warmCount(): number {
    return this.warm.length;
  }

  /** Sessions that hold a place on this upstream. */
  get sessions(): number {
    return this.admitted;
  }

  /**
   * Takes one of this upstream's session places, or throws capacity_exceeded once
   * `limits.maxSessionsPerUpstream` sessions hold one: the one place that limit is enforced, before
   * any process, socket or upstream session is spent. Returns the function that gives the place back
   * (once; later calls do nothing).
   */
  admit(): () => void {
    if (this.stopped) throw new GatehouseError('shutting_down');
    if (this.admitted >= this.limits.maxSessionsPerUpstream) {
      throw new GatehouseError(
        'capacity_exceeded',
        `upstream ${this.name} reached limits.maxSessionsPerUpstream (${this.limits.maxSessionsPerUpstream} sessions)`,
      );
    }
    this.admitted++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.admitted--;
    };
  }

  /** Live shared processes (isolation principal or shared). */
  get sharedProcesses(): number {
    return this.shared.size;
  }

  /**
   * A transport for a new session, with the session's brokered credentials (a stdio process gets their
   * values at spawn; HTTP reads them per request). Throws capacity_exceeded at the process cap.
   * `share`: a stdio session joins the live process kept under that key (isolation principal or
   * shared), or starts it.
   */
  acquire(creds?: UpstreamCredentials, share?: ShareRequest): UpstreamTransport {
    if (this.stopped) throw new GatehouseError('shutting_down');
    const cfg = this.config;
    const credentialHeaders = creds ? () => creds.values() : undefined;
    if (cfg.type === 'http') {
      if (!this.pools) throw new Error('HTTP upstream without pools');
      return new HttpTransport({
        name: this.name,
        url: cfg.url,
        headers: cfg.headers,
        credentialHeaders,
        maxMessageBytes: this.limits.maxResultBytes,
        pools: this.pools,
        log: this.log,
      });
    }
    if (cfg.type === 'sse') return new SseTransport(this.name, cfg, credentialHeaders);
    if (share) return this.join(share, creds);
    return this.process(creds);
  }

  /** A process of its own for a session: spawned with its credentials, else from the warm pool. */
  private process(creds: UpstreamCredentials | undefined): StdioTransport {
    const cfg = this.config;
    if (cfg.type !== 'stdio') throw new Error('process for a non-stdio upstream');
    // A process that holds credentials is spawned for this session (its environment is the lease's).
    if (creds) return this.spawn({ ...cfg.env, ...creds.values() });
    let t = this.warm.shift();
    while (t && !t.alive) t = this.warm.shift();
    t ??= this.spawn();
    this.refill();
    return t;
  }

  /**
   * The session's port on the shared process of its key, started (with this session's credentials:
   * static values only, the same for every grant; see the config check) when there is none.
   */
  private join(share: ShareRequest, creds: UpstreamCredentials | undefined): UpstreamTransport {
    const live = this.shared.get(share.key);
    if (live?.alive) return live.attach();
    const p: SharedProcess = new SharedProcess(this.process(creds), {
      name: this.name,
      init: { protocolVersion: share.protocolVersion, clientInfo: share.clientInfo },
      initializeTimeoutMs: this.limits.initializeTimeoutMs,
      log: this.log,
      onEnd: () => {
        if (this.shared.get(share.key) === p) this.shared.delete(share.key);
      },
    });
    this.shared.set(share.key, p);
    this.log.debug({ upstream: this.name, pid: p.pid }, 'shared upstream process started');
    return p.attach();
  }

  /** Spawns a process; capacity_exceeded at pool.max. */
  private spawn(env?: Record<string, string>): StdioTransport {
    const cfg = this.config;
    if (cfg.type !== 'stdio') throw new Error('spawn on a non-stdio upstream');
    if (this.live >= cfg.pool.max) {
      throw new GatehouseError(
        'capacity_exceeded',
        `upstream ${this.name} reached its process limit (pool.max)`,
      );
    }
    const t = new StdioTransport(
      this.name,
      env ? { ...cfg, env } : cfg,
      this.limits.maxResultBytes,
      this.log,
    );
    this.live++;
    const born = Date.now();
    void t.exited.then(() => {
      this.live--;
      const idx = this.warm.indexOf(t);
      if (idx !== -1) {
        this.warm.splice(idx, 1);
        if (Date.now() - born < EARLY_DEATH_MS) this.earlyDeaths++;
        this.refill();
      }
    });
    this.log.debug({ upstream: this.name, pid: t.pid }, 'upstream process spawned');
    return t;
  }

  private refill(): void {
    const cfg = this.config;
    if (cfg.type !== 'stdio' || this.stopped || this.brokered) return;
    if (this.earlyDeaths >= MAX_EARLY_DEATHS) {
      if (this.earlyDeaths === MAX_EARLY_DEATHS) {
        this.earlyDeaths++;
        this.log.error({ upstream: this.name }, 'upstream processes keep dying at start; warm pool disabled');
      }
      return;
    }
    while (this.warm.length < cfg.pool.warm && this.live < cfg.pool.max) this.warm.push(this.spawn());
  }

  /** Readiness: an HTTP upstream accepts a TCP connection; a stdio pool is not crash-looping. */
  async ready(): Promise<boolean> {
    const cfg = this.config;
    if (cfg.type === 'stdio') return this.earlyDeaths < MAX_EARLY_DEATHS;
    const url = new URL(cfg.url);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return new Promise((resolve) => {
      const sock = net.connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port, timeout: 1000 });
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('timeout', () => {
        sock.destroy();
        resolve(false);
      });
      sock.once('error', () => resolve(false));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const warm = this.warm.splice(0);
    const shared = [...this.shared.values()];
    await Promise.all([...warm.map((t) => t.close()), ...shared.map((p) => p.close())]);
    this.pools?.destroy();
  }
}
