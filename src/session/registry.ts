/**
 * Live sessions: creation under the session cap, lookup, idle reaping, and the
 * durable session record in storage.
 */
import type { Logger } from 'pino';
import type { AuditRecorder } from '../audit/recorder.ts';
import type { Principal } from '../auth/principal.ts';
import type { GatehouseConfig } from '../config/schema.ts';
import { GatehouseError } from '../errors.ts';
import type { Grant, GrantManager } from '../grants/grant.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { ProtocolVersion } from '../protocol/versions.ts';
import { ProfileResolver } from '../sanitize/profile.ts';
import type { LeakGuard } from '../secrets/leak-guard.ts';
import type { Storage } from '../storage/types.ts';
import type { LinkEvents } from './link.ts';
import { type ResponseStage, Session } from './session.ts';

export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly sweeper: NodeJS.Timeout;
  private accepting = true;
  /** Result sanitiser profiles from config `sanitize`, shared by every session. */
  private readonly sanitizer: ProfileResolver;
  /** Cluster mode: where other replicas learn that a session lives here (src/cluster/). */
  directory: { claim(id: string): void; release(id: string): void } | undefined;

  constructor(
    private readonly config: GatehouseConfig,
    private readonly storage: Storage,
    private readonly log: Logger,
    private readonly metrics: GatewayMetrics,
    readonly grants: GrantManager,
    private readonly audit: AuditRecorder,
    private readonly leakGuard: LeakGuard,
    /** Run on every message to the client, in order (the pipeline's `RESPONSE_STAGES`). */
    private readonly responseStages: readonly ResponseStage[],
  ) {
    this.sanitizer = new ProfileResolver(config.sanitize);
    const idle = config.limits.sessionIdleTimeoutMs;
    this.sweeper = setInterval(() => this.sweep(), Math.max(250, Math.min(idle / 4, 30_000)));
    this.sweeper.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  all(): IterableIterator<Session> {
    return this.sessions.values();
  }

  /**
   * A new session under a grant: the task grant its token names (which must be live and made for this
   * principal), else a new implicit grant for this session.
   */
  create(version: ProtocolVersion, principal: Principal): Session | GatehouseError {
    if (!this.accepting) return new GatehouseError('shutting_down');
    if (this.sessions.size >= this.config.limits.maxSessions) {
      return new GatehouseError('capacity_exceeded', 'the gateway has reached limits.maxSessions');
    }
    let grant: Grant;
    if (principal.grantId !== undefined) {
      const g = this.grants.get(principal.grantId);
      // T10-11: a task token only ever opens sessions under its own, live grant, for its own principal.
      if (!g?.boundTo(principal)) {
        return new GatehouseError('grant_ended', undefined, {
          detail: g ? 'task grant presented by another principal' : 'task grant ended or unknown',
        });
      }
      grant = g;
    } else {
      const made = this.grants.create({ kind: 'session', principal, createdBy: 'session' });
      if (made instanceof GatehouseError) return made;
      grant = made.grant;
    }
    const session = new Session(
      version,
      principal,
      grant,
      this.log,
      this.config.limits,
      this.responseStages,
      this.metrics,
      this.leakGuard,
      this.sanitizer,
    );
    session.onFindings = (findings, action, origin) => {
      for (const f of findings) this.metrics.sanitizerFinding(f.type);
      this.audit.sanitised(session.id, grant.id, principal, origin, findings, action);
    };
    session.onTaint = (labels, origin) => {
      const added = grant.markRead(labels);
      if (added.length === 0) return;
      this.log.info(
        { session: session.id, grant: grant.id, server: origin.server, target: origin.target, labels: added },
        'grant tainted by untrusted content',
      );
      this.audit.tainted(session.id, grant.id, principal, origin, added);
    };
    session.onRedacted = (findings) => {
      this.metrics.sanitizerFinding('secret_redacted', findings.length);
      this.audit.redacted(session.id, grant.id, principal, findings);
    };
    grant.attach(session.member);
    session.member.end = (reason) => this.end(session, reason);
    this.sessions.set(session.id, session);
    // ORDER: claimed at creation, well before initialize is answered, so the client's next request
    // finds the owner from any replica.
    this.directory?.claim(session.id);
    this.metrics.setActiveSessions(this.sessions.size);
    return session;
  }

  get(id: string): Session | undefined {
    const s = this.sessions.get(id);
    return s && !s.closed ? s : undefined;
  }

  /** Hooks that connect a session's upstream links to it. */
  linkEvents(session: Session): LinkEvents {
    return {
      onRequest: (link, msg) => session.upstreamRequest(link, msg),
      onNotification: (link, msg) => session.upstreamNotification(link, msg),
      onRestarting: (link, reason, delayMs) => {
        if (session.closed) return;
        this.log.warn(
          {
            session: session.id,
            upstream: link.server,
            reason: reason.message,
            detail: reason.detail,
            delayMs,
          },
          'upstream stopped; restarting it for the session',
        );
        session.upstreamRestarting(link);
      },
      onRestarted: (link, reason) => {
        if (session.closed) return;
        this.log.info(
          { session: session.id, upstream: link.server, restarts: link.restarts, after: reason.message },
          'upstream restarted',
        );
        session.upstreamRestarted(link, reason);
      },
      onClosed: (link, reason) => {
        if (session.closed) return;
        this.log.warn(
          {
            session: session.id,
            upstream: link.server,
            reason: reason.message,
            detail: reason.detail,
            breaker: link.breakerOpen,
          },
          'upstream link ended',
        );
        // Its tools, prompts and resources are gone: tell the client.
        session.upstreamEnded(link, reason);
      },
    };
  }

  /** Records a session once initialize succeeded. */
  initialized(session: Session): void {
    const info = session.clientInfo;
    this.log.info(
      { session: session.id, client: info.name, protocolVersion: session.protocolVersion },
      'session started',
    );
    this.audit.sessionStarted(session.id, session.grant.id, session.principal, info);
    this.storage.sessions
      .insert({
        id: session.id,
        protocolVersion: session.protocolVersion,
        clientName: typeof info.name === 'string' ? info.name : undefined,
        clientVersion: typeof info.version === 'string' ? info.version : undefined,
        createdAt: session.created,
        closedAt: undefined,
        closeReason: undefined,
      })
      .catch((err: unknown) => this.log.error({ err }, 'cannot record session'));
  }

  async end(session: Session, reason: GatehouseError): Promise<void> {
    if (!this.sessions.delete(session.id)) return;
    this.directory?.release(session.id);
    this.metrics.setActiveSessions(this.sessions.size);
    this.log.info({ session: session.id, grant: session.grant.id, reason: reason.code }, 'session ended');
    const grant = session.grant;
    grant.detach(session.member);
    await Promise.all([
      session.close(reason),
      // An implicit grant is the session's: it ends with it. A task grant outlives its sessions.
      grant.record.kind === 'session' && !grant.ended
        ? this.grants.end(
            grant,
            reason.code === 'grant_ended' ? reason.message : `session ended (${reason.code})`,
          )
        : undefined,
      this.storage.sessions.close(session.id, reason.code, Date.now()).catch((err: unknown) => {
        this.log.error({ err }, 'cannot record session end');
      }),
    ]);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.config.limits.sessionIdleTimeoutMs;
    for (const s of this.sessions.values()) {
      if (s.lastSeen < cutoff && s.calls.size === 0) {
        void this.end(s, new GatehouseError('session_closed', 'session idle timeout'));
      }
    }
  }

  /** Stops accepting sessions; waits (bounded) for calls in flight; then ends every session. */
  async drain(timeoutMs: number): Promise<void> {
    this.accepting = false;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && [...this.sessions.values()].some((s) => s.calls.size > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    clearInterval(this.sweeper);
    await Promise.all(
      [...this.sessions.values()].map((s) => this.end(s, new GatehouseError('shutting_down'))),
    );
  }
}
