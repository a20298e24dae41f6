/**
 * The credential broker: every use of an upstream credential happens under a lease (grant × service ×
 * credential), which never outlives its grant. Three kinds:
 *
 * - static: an API key from the secret store, injected into a stdio process spawned for the grant or
 *   into the headers of an HTTP upstream;
 * - minted: a short-lived token from an upstream OAuth server (refresh_token, RFC 8693 token exchange or
 *   client_credentials, narrowed by scope and resource), cached per lease, renewed before expiry and
 *   revoked there (RFC 7009) when the lease ends;
 * - user: the same, from the refresh token of a user's own connection to the service (connect.ts).
 *
 * Leases end with their grant, or by revocation per lease, grant, service, agent, user or secret (the
 * CLI writes to the store; every gateway polls it). Ending a lease cancels the calls in flight that use
 * it and stops the stdio processes holding it. Every value handed out is registered with the leak guard.
 * See docs/credentials.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditRecorder } from '../audit/recorder.ts';
import type { Principal } from '../auth/principal.ts';
import { ConfigError } from '../config/load.ts';
import type { GatehouseConfig, StdioUpstreamConfig, UpstreamConfig } from '../config/schema.ts';
import { GatehouseError } from '../errors.ts';
import type { Grant } from '../grants/grant.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { LeakGuard } from '../secrets/leak-guard.ts';
import { OutboundClient } from '../secrets/outbound.ts';
import { secretPaths } from '../secrets/resolve.ts';
import { SecretError, type SecretStore } from '../secrets/store.ts';
import type { CredentialBlock, LeaseRecord, LeaseSelector, Storage } from '../storage/types.ts';
import { OAuthClient, type OAuthCredential, OAuthError } from './oauth.ts';

/** Where a credential comes from; one per (service, credential). */
interface Source {
  readonly key: string;
  readonly service: string;
  readonly kind: LeaseRecord['kind'];
  /** The secret read for a static lease, or the subject token of a minted one. */
  readonly secret: string | undefined;
  readonly cred: OAuthCredential | undefined;
  readonly oauth: OAuthClient | undefined;
}

/** One header or environment variable an upstream gets from a lease. */
interface Ref {
  readonly key: string;
  readonly source: Source;
  readonly format: string;
}

/** What holds a lease's value: a session's link to one upstream. Told when the lease ends. */
export interface LeaseHolder {
  revoked(err: GatehouseError): void;
}

/** What the audit log says about the credential a call used (never its value). */
export interface LeaseInfo {
  id: string;
  credential: string;
  expiresAt: number;
}

export class Lease {
  value: string | undefined;
  /** When the current value must be renewed (epoch ms); static values do not expire. */
  renewAt = Number.POSITIVE_INFINITY;
  ended: GatehouseError | undefined;
  private pending: Promise<void> | undefined;
  readonly holders = new Set<LeaseHolder>();

  constructor(
    readonly record: LeaseRecord,
    readonly source: Source,
  ) {}

  get id(): string {
    return this.record.id;
  }

  info(): LeaseInfo {
    return {
      id: this.id,
      credential: `${this.source.service}/${this.record.credential}`,
      expiresAt: this.record.expiresAt,
    };
  }

  /** Makes sure the value is present and not about to expire (one renewal at a time). */
  fresh(renew: (lease: Lease) => Promise<void>): Promise<void> | undefined {
    if (this.value !== undefined && Date.now() < this.renewAt) return undefined;
    this.pending ??= renew(this).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }
}

export interface BrokerOptions {
  config: GatehouseConfig;
  storage: Storage;
  secrets: SecretStore | undefined;
  leakGuard: LeakGuard;
  audit: AuditRecorder;
  metrics: GatewayMetrics;
  log: Logger;
  /** The per-user connection flow (set once the gateway knows its public URL). */
  connect?: ConnectLinks;
  pollMs?: number;
}

/** Makes the link a user opens to connect an account (connect.ts). */
export interface ConnectLinks {
  link(req: { service: string; principal: Principal; grantId: string; sessionId: string | undefined }): {
    url: string;
    elicitationId: string;
  };
}

/** Name of the stored secret that holds a user's refresh token for a service. */
export function connectionSecret(service: string, principal: { issuer: string; user: string }): string {
  const h = createHash('sha256').update(`${principal.issuer}\0${principal.user}`).digest('hex').slice(0, 24);
  return `conn.${service}.${h}`;
}

/** Renew a token when less than this share of its life, or a minute, is left. */
const RENEW_SHARE = 0.2;
const RENEW_MAX_MS = 60_000;

export class CredentialBroker {
  private readonly sources = new Map<string, Source>();
  private readonly refs = new Map<string, Ref[]>();
  /** Live and ended leases of live grants: grant id → source key → lease. */
  private readonly byGrant = new Map<string, Map<string, Lease>>();
  private readonly byId = new Map<string, Lease>();
  private blocks: CredentialBlock[] = [];
  /** Rotating refresh tokens are written back one at a time per secret. */
  private readonly secretLocks = new Map<string, Promise<unknown>>();
  private readonly timer: NodeJS.Timeout | undefined;
  private pollFrom = Date.now();
  private polling = false;
  connect: ConnectLinks | undefined;

  constructor(private readonly o: BrokerOptions) {
    this.connect = o.connect;
    const http = new OutboundClient({ allowLoopbackHttp: o.config.broker.allowLoopbackHttp });
    for (const [service, cred] of Object.entries(o.config.credentials)) {
      if (cred.type === 'static') {
        this.addSource({
          key: `${service}\0${cred.secret}`,
          service,
          kind: 'static',
          secret: cred.secret,
          cred: undefined,
          oauth: undefined,
        });
        continue;
      }
      const clientSecret = cred.clientSecret?.secret;
      const oauth = new OAuthClient(service, cred, http, async () =>
        clientSecret === undefined ? undefined : (await this.read(clientSecret)).toString('utf8'),
      );
      const secret = cred.type === 'oauth' ? cred.subjectSecret?.secret : undefined;
      const credential = cred.type === 'oauth-user' ? 'connection' : (secret ?? `client:${cred.clientId}`);
      this.addSource({
        key: `${service}\0${credential}`,
        service,
        kind: cred.type === 'oauth' ? 'minted' : 'user',
        secret,
        cred,
        oauth,
      });
    }
    for (const [name, u] of Object.entries(o.config.upstreams)) {
      const refs: Ref[] = [];
      for (const [key, v] of Object.entries(valuesOf(u))) {
        if (typeof v === 'string') continue;
        let source: Source | undefined;
        if ('secret' in v) {
          // An inline { secret } is a static credential of a service named after the upstream.
          source = this.addSource({
            key: `${name}\0${v.secret}`,
            service: name,
            kind: 'static',
            secret: v.secret,
            cred: undefined,
            oauth: undefined,
          });
        } else {
          source = [...this.sources.values()].find((s) => s.service === v.credential);
        }
        if (source) refs.push({ key, source, format: v.format });
      }
      if (refs.length > 0) this.refs.set(name, refs);
    }
    if (this.sources.size > 0) {
      this.timer = setInterval(() => void this.poll(), o.pollMs ?? 250);
      this.timer.unref();
    }
  }

  private addSource(s: Source): Source {
    const existing = this.sources.get(s.key);
    if (existing) return existing;
    this.sources.set(s.key, s);
    return s;
  }

  /** The service of an OAuth credential (for the connect flow). */
  oauthClient(service: string): { cred: OAuthCredential; oauth: OAuthClient } | undefined {
    for (const s of this.sources.values())
      if (s.service === service && s.cred && s.oauth) return { cred: s.cred, oauth: s.oauth };
    return undefined;
  }

  /**
   * At start-up: every secret the config names must be in the store (the error names the key), and
   * static values are registered with the leak guard before anything can echo them.
   */
  async start(): Promise<void> {
    const problems: { path: string; line: undefined; message: string }[] = [];
    for (const [path, name] of secretPaths(this.o.config)) {
      try {
        await this.read(name);
      } catch (err) {
        if (!(err instanceof SecretError)) throw err;
        problems.push({
          path,
          line: undefined,
          message:
            err.code === 'not_found'
              ? `secret \`${name}\` is not in the store (gatehouse secrets set ${name})`
              : `secret \`${name}\` cannot be read: ${err.message}`,
        });
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
    this.blocks = await this.o.storage.leases.blocks();
    // Leases of a previous run held values only in its memory: they end (their grants get new ones).
    const stale = await this.o.storage.leases.listLive(Date.now());
    for (const l of stale) await this.o.storage.leases.end({ id: l.id }, 'gateway restarted', Date.now());
  }

  private async read(name: string): Promise<Buffer> {
    if (!this.o.secrets) throw new SecretError('not_found', `no secret \`${name}\``);
    return this.o.secrets.get(name);
  }

  /** Credentials of one session's link to one upstream; undefined when it needs none. */
  forUpstream(
    upstream: string,
    grant: Grant,
    principal: Principal,
    sessionId: string | undefined,
  ): UpstreamCredentials | undefined {
    const refs = this.refs.get(upstream);
    return refs ? new UpstreamCredentials(this, refs, grant, principal, sessionId) : undefined;
  }

  /** The block that stops this credential: its service, its secret, or the client secret it mints with. */
  private blockOf(source: Source, credential: string): CredentialBlock | undefined {
    return this.blocks.find((b) =>
      b.kind === 'service'
        ? b.name === source.service
        : b.name === credential || b.name === source.cred?.clientSecret?.secret,
    );
  }

  /** The grant's lease of `source`, made on first use; a GatehouseError when none can be had. */
  async lease(
    source: Source,
    grant: Grant,
    principal: Principal,
    sessionId: string | undefined,
    interactive: boolean,
  ): Promise<Lease> {
    let leases = this.byGrant.get(grant.id);
    const existing = leases?.get(source.key);
    if (existing) {
      if (existing.ended) throw existing.ended;
      return existing;
    }
    if (grant.ended) throw new GatehouseError('grant_ended');
    let credential = source.secret ?? source.key.split('\0')[1] ?? source.service;
    if (source.kind === 'user') {
      if (principal.user === undefined) {
        throw new GatehouseError(
          'credential_unavailable',
          `${source.service} needs a user: this agent acts for no one`,
          {
            data: { service: source.service },
          },
        );
      }
      credential = connectionSecret(source.service, { issuer: principal.issuer, user: principal.user });
      if (!(await this.hasSecret(credential))) {
        if (!interactive)
          throw new GatehouseError('credential_unavailable', `${source.service}: not connected`, {
            data: { service: source.service },
          });
        throw this.connectionRequired(source.service, principal, grant, sessionId);
      }
    }
    const block = this.blockOf(source, credential);
    if (block) {
      throw new GatehouseError(
        'credential_revoked',
        `${source.service}: ${block.kind} \`${block.name}\` is blocked by an operator`,
        {
          data: { service: source.service },
        },
      );
    }
    // Another call of the same grant may have made it meanwhile.
    leases = this.byGrant.get(grant.id) ?? new Map<string, Lease>();
    const raced = leases.get(source.key);
    if (raced) return raced;
    const now = Date.now();
    const rec: LeaseRecord = {
      id: `ls_${randomBytes(15).toString('base64url')}`,
      grantId: grant.id,
      service: source.service,
      credential,
      kind: source.kind,
      agent: principal.agent,
      user: principal.user,
      createdAt: now,
      expiresAt: grant.record.expiresAt,
      endedAt: undefined,
      endReason: undefined,
    };
    const lease = new Lease(rec, source);
    leases.set(source.key, lease);
    this.byGrant.set(grant.id, leases);
    this.byId.set(rec.id, lease);
    grant.attach({ busy: () => false, end: async () => this.end(lease, 'grant ended', false) });
    await this.o.storage.leases.insert(rec);
    this.o.audit.record({
      type: 'lease.issued',
      grantId: grant.id,
      principal: { agent: rec.agent, ...(rec.user ? { user: rec.user } : {}) },
      server: source.service,
      lease: { id: rec.id, credential: lease.info().credential, expiresAt: rec.expiresAt },
      detail: { kind: rec.kind },
    });
    this.o.log.info({ lease: rec.id, grant: grant.id, service: rec.service, kind: rec.kind }, 'lease issued');
    return lease;
  }

  private async hasSecret(name: string): Promise<boolean> {
    try {
      await this.read(name);
      return true;
    } catch (err) {
      if (err instanceof SecretError && err.code === 'not_found') return false;
      throw err;
    }
  }

  private connectionRequired(
    service: string,
    principal: Principal,
    grant: Grant,
    sessionId: string | undefined,
  ): GatehouseError {
    if (!this.connect) {
      return new GatehouseError('credential_unavailable', `${service}: no connection for this user`, {
        data: { service },
      });
    }
    const { url, elicitationId } = this.connect.link({ service, principal, grantId: grant.id, sessionId });
    const message = `Connect your ${service} account to continue: ${url}`;
    return new GatehouseError('connection_required', message, {
      data: { service, elicitations: [{ mode: 'url', elicitationId, url, message }] },
    });
  }

  /** Reads or mints the lease's value. */
  renew = async (lease: Lease): Promise<void> => {
    const s = lease.source;
    const label = `lease:${lease.id}`;
    if (s.kind === 'static') {
      lease.value = (await this.read(lease.record.credential)).toString('utf8');
      return;
    }
    const oauth = s.oauth as OAuthClient;
    const cred = s.cred as OAuthCredential;
    let token: Awaited<ReturnType<OAuthClient['refresh']>>;
    try {
      if (s.kind === 'user')
        token = await this.withRefreshToken(lease.record.credential, (rt) => oauth.refresh(rt));
      else if (cred.type === 'oauth' && cred.grant === 'refresh_token')
        token = await this.withRefreshToken(s.secret as string, (rt) => oauth.refresh(rt));
      else if (cred.type === 'oauth' && cred.grant === 'token_exchange')
        token = await oauth.exchange(
          (await this.read(s.secret as string)).toString('utf8'),
          cred.subjectTokenType,
        );
      else token = await oauth.clientCredentials();
    } catch (err) {
      if (s.kind === 'user' && err instanceof OAuthError && err.oauthError === 'invalid_grant') {
        // The user (or the provider) revoked the connection: forget it and ask again.
        await this.o.secrets?.remove(lease.record.credential);
        this.o.log.warn(
          { service: s.service, lease: lease.id },
          'connection refused by the provider; removed',
        );
      }
      this.o.log.warn(
        { service: s.service, lease: lease.id, err: (err as Error).message },
        'cannot mint a token',
      );
      throw new GatehouseError('credential_unavailable', `${s.service}: no token could be obtained`, {
        data: { service: s.service },
        detail: (err as Error).message,
      });
    }
    if (lease.ended) {
      void oauth.revoke(token.accessToken, 'access_token');
      throw lease.ended;
    }
    this.o.leakGuard.register(token.accessToken, label);
    const now = Date.now();
    const expiresAt = Math.min(
      token.expiresAt ?? Number.POSITIVE_INFINITY,
      now + cred.maxLifetimeSec * 1000,
      lease.record.expiresAt,
    );
    const life = expiresAt - now;
    lease.value = token.accessToken;
    lease.renewAt = expiresAt - Math.min(life * RENEW_SHARE, RENEW_MAX_MS);
    this.o.log.debug(
      { lease: lease.id, service: s.service, expiresInSec: Math.round(life / 1000) },
      'token minted',
    );
  };

  /** Runs `fn` with the stored refresh token and stores the rotated one it returns, one at a time per secret. */
  private async withRefreshToken<T extends { refreshToken: string | undefined }>(
    secret: string,
    fn: (rt: string) => Promise<T>,
  ): Promise<T> {
    const prev = this.secretLocks.get(secret) ?? Promise.resolve();
    const run = prev
      .catch(() => {})
      .then(async () => {
        const rt = (await this.read(secret)).toString('utf8');
        const res = await fn(rt);
        if (res.refreshToken !== undefined && res.refreshToken !== rt)
          await this.o.secrets?.set(secret, res.refreshToken);
        return res;
      });
    this.secretLocks.set(secret, run);
    return run;
  }

  /** Ends a lease: revokes its token upstream, forgets the value, tells its holders. */
  async end(lease: Lease, reason: string, revocation: boolean): Promise<void> {
    if (lease.ended) return;
    lease.ended = new GatehouseError(
      'credential_revoked',
      `the ${lease.source.service} credential was revoked: ${reason}`,
      {
        data: { service: lease.source.service, lease: lease.id },
      },
    );
    this.byId.delete(lease.id);
    const value = lease.value;
    lease.value = undefined;
    for (const h of [...lease.holders]) h.revoked(lease.ended);
    lease.holders.clear();
    if (value !== undefined && lease.source.oauth && lease.source.cred?.revokeOnEnd)
      await lease.source.oauth.revoke(value, 'access_token');
    this.o.leakGuard.unregister(`lease:${lease.id}`);
    const at = Date.now();
    await this.o.storage.leases
      .end({ id: lease.id }, reason, at)
      .catch((err: unknown) => this.o.log.error({ err }, 'cannot record lease end'));
    if (revocation) this.o.metrics.revocation('lease');
    this.o.audit.record({
      type: 'lease.revoked',
      grantId: lease.record.grantId,
      principal: { agent: lease.record.agent, ...(lease.record.user ? { user: lease.record.user } : {}) },
      server: lease.source.service,
      lease: { id: lease.id, credential: lease.info().credential, expiresAt: lease.record.expiresAt },
      detail: { kind: lease.record.kind, reason },
    });
    this.o.log.info({ lease: lease.id, service: lease.source.service, reason }, 'lease ended');
    if (reason === 'grant ended') this.byGrant.delete(lease.record.grantId);
  }

  /** Revokes leases here and in the store (other gateways notice on their next poll). */
  async revoke(selector: LeaseSelector, reason = 'revoked'): Promise<string[]> {
    const ids = await this.o.storage.leases.end(selector, reason, Date.now());
    await Promise.all(ids.map((id) => this.endById(id, reason)));
    return ids;
  }

  private async endById(id: string, reason: string): Promise<void> {
    const lease = this.byId.get(id);
    if (lease) await this.end(lease, reason, true);
  }

  /** Revocations and blocks written by another process (`gatehouse credentials revoke`, another replica). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const now = Date.now();
      const since = this.pollFrom - 1000;
      this.pollFrom = now;
      for (const r of await this.o.storage.leases.endedSince(since)) await this.endById(r.id, r.endReason);
      this.blocks = await this.o.storage.leases.blocks();
      // A block also ends live leases the CLI could not select (e.g. those minting with a blocked client secret).
      if (this.blocks.length > 0)
        for (const lease of [...this.byId.values()]) {
          const b = this.blockOf(lease.source, lease.record.credential);
          if (b) await this.end(lease, `${b.kind} ${b.name} blocked: ${b.reason}`, true);
        }
    } catch (err) {
      this.o.log.error({ err }, 'cannot poll lease revocations');
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * One session's credentials for one upstream: the leases behind its headers or environment. `ensure`
 * runs before every call (it may mint); `headers` is read on every upstream request.
 */
export class UpstreamCredentials {
  private readonly leases = new Map<string, Lease>();
  private holder: LeaseHolder | undefined;

  constructor(
    private readonly broker: CredentialBroker,
    private readonly refs: readonly Ref[],
    private readonly grant: Grant,
    private readonly principal: Principal,
    private readonly sessionId: string | undefined,
  ) {}

  /**
   * Leases and fresh values for every reference; a GatehouseError when one cannot be had.
   * `interactive`: a missing per-user connection yields a link to make it (a call), not just a refusal
   * (session start).
   */
  ensure(interactive: boolean): Promise<GatehouseError | undefined> | GatehouseError | undefined {
    let pending: Promise<void>[] | undefined;
    for (const ref of this.refs) {
      const lease = this.leases.get(ref.source.key);
      if (lease?.ended) return lease.ended;
      const p = lease ? lease.fresh(this.broker.renew) : this.acquire(ref, interactive);
      if (p) {
        pending ??= [];
        pending.push(p);
      }
    }
    if (!pending) return undefined;
    return Promise.all(pending).then(
      // Not ensure() again: a token that is already due for renewal (a tiny expires_in) must not loop.
      () => [...this.leases.values()].find((l) => l.ended)?.ended,
      (err: unknown) =>
        err instanceof GatehouseError
          ? err
          : new GatehouseError('credential_unavailable', undefined, { detail: String(err) }),
    );
  }

  private async acquire(ref: Ref, interactive: boolean): Promise<void> {
    const lease = await this.broker.lease(
      ref.source,
      this.grant,
      this.principal,
      this.sessionId,
      interactive,
    );
    this.leases.set(ref.source.key, lease);
    if (this.holder) lease.holders.add(this.holder);
    await lease.fresh(this.broker.renew);
  }

  /** Told when any of these leases ends (the session cancels the upstream's calls, stops its process). */
  hold(holder: LeaseHolder): void {
    this.holder = holder;
    for (const l of this.leases.values()) l.holders.add(holder);
  }

  release(): void {
    if (!this.holder) return;
    for (const l of this.leases.values()) l.holders.delete(this.holder);
    this.holder = undefined;
  }

  /** Current values by header or variable name; a reference without a live value is left out. */
  values(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const ref of this.refs) {
      const lease = this.leases.get(ref.source.key);
      if (lease && !lease.ended && lease.value !== undefined)
        out[ref.key] = ref.format.replace('{}', lease.value);
    }
    return out;
  }

  infos(): LeaseInfo[] {
    return [...this.leases.values()].map((l) => l.info());
  }
}

/** An upstream's configured env (stdio) or headers (HTTP, SSE). */
function valuesOf(u: UpstreamConfig): StdioUpstreamConfig['env'] {
  return u.type === 'stdio' ? u.env : u.headers;
}
