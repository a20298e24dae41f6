/**
 * Assembles a running gateway from a validated configuration: storage,
 * upstream managers, router, session registry and the HTTP listener; and
 * takes it down gracefully.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import type { Logger } from 'pino';
import { AdminActions } from './admin/actions.ts';
import { AdminConsole } from './admin/console.ts';
import { ADMIN_CLIENT_ID, AdminLogin, type LoginEndpoints, localKeys, remoteKeys } from './admin/login.ts';
import { rnd } from './admin/session.ts';
import { ApprovalManager } from './approvals/manager.ts';
import { ApprovalWebhooks } from './approvals/webhook.ts';
import { type AuditEvent, createAuditWriter } from './audit/index.ts';
import { AuditRecorder } from './audit/recorder.ts';
import { resolveSecret } from './auth/as/clients.ts';
import type { EmbeddedAs } from './auth/as/index.ts';
import { GROUPS_CLAIM, type Principal, type TokenVerifier } from './auth/principal.ts';
import { ResourceServer } from './auth/resource-server.ts';
import { RevocationList, revocationLifetimes } from './auth/revocation.ts';
import { createTokenVerifier, discoverIssuer, type VerifierOptions } from './auth/verify/index.ts';
import { Cluster, defaultAdvertiseUrl } from './cluster/index.ts';
import { ConfigError, parseConfig } from './config/load.ts';
import type { GatehouseConfig, GatehouseConfigInput, PreRegisteredClient } from './config/schema.ts';
import { CredentialBroker } from './credentials/broker.ts';
import { CONNECT_CLIENT_ID, ConnectFlows } from './credentials/connect.ts';
import { DefinitionPins } from './definitions/pins.ts';
import { exposeName } from './federation/names.ts';
import { GrantManager } from './grants/grant.ts';
import { createHttpServer } from './http/server.ts';
import { createLogger } from './log.ts';
import { createMetrics } from './observability/metrics.ts';
import { createOtlpAuditExporter } from './observability/otlp.ts';
import type { GatewayParts } from './pipeline/context.ts';
import { RESPONSE_STAGES } from './pipeline/order.ts';
import { Authorizer } from './policy/authorizer.ts';
import { StatelessFront } from './rev2026/front.ts';
import { LeakGuard } from './secrets/leak-guard.ts';
import { secretPaths } from './secrets/resolve.ts';
import { openSecretStore, type SecretStore } from './secrets/store.ts';
import { SessionRegistry } from './session/registry.ts';
import { Router } from './session/router.ts';
import { checkHostAndOrigin } from './stages/check-origin.ts';
import { openConfiguredStorage, storageHealth, storageReady } from './storage/open.ts';
import type { Storage } from './storage/types.ts';
import { UpstreamManager } from './upstream/manager.ts';
import { describeRepairs, secureDataDir } from './util/data-dir.ts';

export interface StartOptions {
  /** A validated config, or a plain object validated here. */
  config: GatehouseConfig | GatehouseConfigInput;
  dataDir: string;
  logger?: Logger;
  /** Where the gateway's own logger writes (default stderr); ignored with `logger`. */
  logDestination?: NodeJS.WritableStream;
  /** The leak guard (tests pass one to watch it); default: a new one. */
  leakGuard?: LeakGuard;
  /** Overrides server.host / server.port. */
  host?: string;
  port?: number;
}

export interface RunningGateway {
  /** The MCP endpoint, e.g. http://127.0.0.1:8080/mcp */
  readonly url: string;
  readonly origin: string;
  readonly port: number;
  readonly config: GatehouseConfig;
  readonly parts: GatewayParts;
  readonly managers: ReadonlyMap<string, UpstreamManager>;
  /** The store as the gateway writes it (in cluster mode: poking the bus after writes). */
  readonly storage: Storage;
  /** Reloads the policy files atomically (SIGHUP); throws PolicyLoadError and keeps the old set on error. */
  reloadPolicies(): void;
  /** Stops accepting, drains calls in flight (bounded), closes upstreams and storage. */
  close(): Promise<void>;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

export async function startGateway(opts: StartOptions): Promise<RunningGateway> {
  const config = parseConfig(opts.config);
  if (opts.host !== undefined) config.server.host = opts.host;
  if (opts.port !== undefined) config.server.port = opts.port;
  // Created first: the logger redacts what it guards (T20), from the first line on.
  const leakGuard = opts.leakGuard ?? new LeakGuard();
  const log =
    opts.logger ??
    createLogger(config.logging.level, {
      ...(opts.logDestination ? { destination: opts.logDestination } : {}),
      redact: (line) => (leakGuard.size === 0 ? line : leakGuard.redact(line).value),
    });
  // ORDER: before anything in the data dir is opened or created: its databases, keys and audit
  // segments are owner-only, and a directory left open to group or others is repaired (and said so).
  const repaired = secureDataDir(opts.dataDir);
  if (repaired.length > 0) {
    log.warn(
      { dataDir: opts.dataDir, repaired: repaired.map((r) => r.path) },
      describeRepairs(opts.dataDir, repaired),
    );
  }
  // Policies first: a bad policy file stops start-up before anything listens (PolicyLoadError names file, line, id).
  const authorizer = new Authorizer(config, log);
  // Cluster mode (bus.kind redis): connected first, so the store writes this replica's own audit chain.
  const cluster = config.bus.kind === 'redis' ? await Cluster.start(config, log) : undefined;
  const opened: Storage = openConfiguredStorage(config, opts.dataDir, {
    sqlite: {
      auditDir: join(opts.dataDir, 'audit'),
      synchronous: config.audit.synchronous,
      segmentBytes: config.audit.segmentBytes,
    },
    onPoolError: (err) => log.warn({ err }, 'idle PostgreSQL connection failed'),
    ...(cluster ? { auditChain: cluster.replicaId } : {}),
  });
  // ORDER: before the first read: PostgreSQL connects and migrates (storage.postgres.migrate) or
  // refuses a schema that lacks migrations (StoreError); nothing is served on a store that cannot be.
  try {
    await storageReady(opened);
  } catch (err) {
    await opened.close();
    await cluster?.close();
    throw err;
  }
  // The store pokes the other replicas after the writes they must see at once.
  const storage = cluster ? cluster.storage(opened) : opened;
  // In a cluster the other replicas' sessions are open: only a single gateway closes them all.
  const stale = cluster ? 0 : await storage.sessions.closeAllOpen('gateway_restart', Date.now());
  if (stale > 0) log.info({ sessions: stale }, 'sessions from a previous run marked closed');
  const metrics = createMetrics();
  const otlp = config.observability.otlpLogsEndpoint
    ? createOtlpAuditExporter({
        endpoint: config.observability.otlpLogsEndpoint,
        ...(config.observability.otlpHeaders ? { headers: config.observability.otlpHeaders } : {}),
        onStatus: (st) => log[st.ok ? 'info' : 'warn'](st.message),
      })
    : undefined;
  const writer = await createAuditWriter({
    repo: storage.audit,
    ...(otlp ? { onWritten: (events: readonly AuditEvent[]) => otlp.export(events) } : {}),
    dataDir: opts.dataDir,
    instance: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: config.audit.checkpointIntervalSec * 1000,
  });
  const audit = new AuditRecorder(writer, log, metrics, {
    anonymousFailures: config.audit.anonymousFailures,
  });
  // ORDER: before serving: torn lines are cut off (logged, recorded), and calls cut off by an
  // unclean stop get their "outcome unknown" record first.
  await audit.recover(storage.audit);
  const retention = config.audit.retention;
  await audit.prune(retention);
  const pruneTimer = setInterval(() => {
    audit.prune(retention).catch((err: unknown) => log.error({ err }, 'audit retention failed'));
  }, 3_600_000);
  pruneTimer.unref();

  // Upstream credentials come from the broker: leases per grant over the secret store (own database,
  // envelope-encrypted). Every value it reads or mints is registered with the leak guard, which redacts
  // it from everything sent to the agent, from audit records and from logs.
  let secrets: SecretStore | undefined;
  if (secretPaths(config).length > 0 || Object.keys(config.credentials).length > 0) {
    const opened = openSecretStore(opts.dataDir, { leakGuard });
    secrets = opened.store;
    for (const w of opened.warnings) log.warn(w);
  }
  writer.addRedactor(
    (text) => leakGuard.redact(text).value,
    () => leakGuard.size > 0,
  );
  const broker = new CredentialBroker({ config, storage, secrets, leakGuard, audit, metrics, log });
  try {
    await broker.start();
  } catch (err) {
    broker.close();
    await secrets?.close();
    throw err;
  }
  const managers = new Map<string, UpstreamManager>();
  for (const [name, u] of Object.entries(config.upstreams)) {
    const m = new UpstreamManager(name, u, config.limits, log);
    managers.set(name, m);
    m.start();
  }
  // Tool-definition pins: loaded before anything is served (a restart keeps them), polled for approvals.
  const pins: DefinitionPins = new DefinitionPins({
    repo: storage.definitions,
    config: config.pinning,
    sanitize: config.sanitize,
    audit,
    log,
    expose: (server: string, name: string): string | undefined => exposeName(router.names, server, name),
  });
  await pins.start();
  const router: Router = new Router(config, managers, log, broker, pins);
  const grants = new GrantManager(storage, config, log);
  grants.onCreated = (g) => {
    audit.grantCreated(g.record);
    metrics.setActiveGrants(grants.size);
  };
  grants.onEnded = (g) => {
    audit.grantEnded(g.record);
    metrics.setActiveGrants(grants.size);
    if (g.record.endReason !== undefined && isRevocation(g.record.endReason)) metrics.revocation('grant');
  };
  await grants.start({ shared: cluster !== undefined });
  metrics.setActiveGrants(grants.size);
  // The token revocation list: loaded before anything is served, polled like the grants (250 ms).
  const revocations =
    config.auth.mode === 'none'
      ? undefined
      : new RevocationList(storage, { lifetimes: revocationLifetimes(config), log });
  if (revocations) {
    revocations.onAdded = (rec, source) => {
      audit.tokensRevoked(rec, source);
      metrics.revocation('token');
      log.info({ kind: rec.kind, value: rec.value, notBefore: rec.notBefore, source }, 'tokens revoked');
      // A revoked token ends the sessions it opened (their grants record its jti), here and on every
      // gateway that reads the entry: the revocation is not only "no new requests".
      if (rec.kind !== 'jti') return;
      for (const g of grants.list()) {
        if (g.record.kind === 'session' && g.record.tokenId === rec.value)
          void grants.end(g, 'token revoked');
      }
    };
    await revocations.start();
  }
  // Approval requests survive restarts in the store; decisions made while no gateway ran are recorded now.
  // Webhooks inform chat or ticketing of approval events (signed, SSRF-guarded, never a way to decide).
  const webhooks = new ApprovalWebhooks(
    config.approvals.webhooks.map((w, i) => ({
      url: w.url,
      secret: resolveSecret(w.secret, `approvals.webhooks[${i}].secret`),
      allowLoopbackHttp: w.allowLoopbackHttp,
    })),
    {
      attempts: config.approvals.webhookRetry.attempts,
      retryBaseMs: config.approvals.webhookRetry.baseMs,
      redact: (text) => (leakGuard.size === 0 ? text : leakGuard.redact(text).value),
    },
    log,
  );
  const approvals = new ApprovalManager(storage.approvals, config.approvals, audit, metrics, log, (type, r) =>
    webhooks.notify(type, r),
  );
  await approvals.start();
  // The pipeline's response phase is handed to the sessions here: the session layer never imports the pipeline.
  const registry = new SessionRegistry(
    config,
    storage,
    log,
    metrics,
    grants,
    audit,
    leakGuard,
    RESPONSE_STAGES,
  );
  // A quarantine or an approval changes what tools/list shows: sessions on that server are told to list again.
  if (cluster) {
    registry.directory = cluster;
    // A poke runs the store poll now; each poll also runs on its own timer (the fallback for a lost message).
    grants.sharedUse = {
      record: (uses) => cluster.bus.recordGrantUses(uses),
      lastUses: (ids) => cluster.bus.grantLastUses(ids),
    };
    cluster.listen({
      grants: () => grants.poll(),
      'task-grants': () => grants.loadTaskGrants(),
      revocations: revocations ? () => revocations.poll() : undefined,
      approvals: () => approvals.poll(),
      leases: () => broker.poll(),
    });
  }
  pins.onListChanged = (server) => {
    for (const session of registry.all())
      if (session.links.has(server)) session.notify('notifications/tools/list_changed', {});
  };
  const allowedHosts = new Set<string>();
  const allowedOrigins = new Set<string>();
  if (config.auth.mode === 'none' && !isLoopback(config.server.host)) {
    throw new ConfigError([
      {
        path: 'auth.mode',
        line: undefined,
        message: 'auth.mode none is only allowed when server.host is a loopback address',
      },
    ]);
  }
  // INVARIANT: fail closed until the real resource server is in place (it needs the bound port).
  const parts: GatewayParts = {
    config,
    registry,
    router,
    authorizer,
    grants,
    log,
    allowedHosts,
    allowedOrigins,
    metrics,
    observeStage: (stage, seconds, ctx) => {
      metrics.stage(stage, seconds);
      if (ctx.stageLog) {
        const end = performance.timeOrigin + performance.now();
        ctx.stageLog.push([stage, end - seconds * 1000, end]);
      }
    },
    audit,
    approvals,
    stateless: new StatelessFront(),
    started: false,
    auth: new ResourceServer({
      requiredScopes: config.auth.requiredScopes,
      methodScopes: {},
      toolScopes: {},
      mode: 'external',
      resource: 'http://127.0.0.1/mcp',
      authorizationServers: [],
      verifier: undefined,
    }),
  };
  const server = createHttpServer(parts, {
    ready: async () => {
      const entries = await Promise.all([...managers].map(async ([n, m]) => [n, await m.ready()] as const));
      return Object.fromEntries(entries);
    },
    store: () => storageHealth(opened),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const names = new Set([...LOOPBACK_NAMES, ...config.server.allowedHosts.map((h) => h.toLowerCase())]);
  const bind = config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host;
  if (bind !== '0.0.0.0' && bind !== '[::]') names.add(bind.toLowerCase());
  for (const n of names) {
    allowedHosts.add(n);
    if (!/:\d+$/.test(n) || n.endsWith(']')) allowedHosts.add(`${n}:${port}`);
    allowedOrigins.add(`http://${n}:${port}`);
  }
  if (config.server.publicUrl) {
    const pub = new URL(config.server.publicUrl);
    allowedHosts.add(pub.host.toLowerCase());
    allowedOrigins.add(pub.origin.toLowerCase());
  }
  for (const o of config.server.allowedOrigins) allowedOrigins.add(o.toLowerCase().replace(/\/$/, ''));

  const hostForUrl = bind === '0.0.0.0' || bind === '[::]' ? '127.0.0.1' : bind;
  const origin = `http://${hostForUrl}:${port}`;
  const publicBase = (config.server.publicUrl ?? origin).replace(/\/$/, '');
  const resource = `${publicBase}/mcp`;
  let authServer: EmbeddedAs | undefined;
  let adminSecret: string | undefined;
  if (config.auth.mode === 'embedded') {
    if (config.server.publicUrl && new URL(config.server.publicUrl).pathname !== '/') {
      throw new ConfigError([
        {
          path: 'server.publicUrl',
          line: undefined,
          message:
            'must have no path in auth.mode embedded (the authorization server lives at the origin root)',
        },
      ]);
    }
    // Loaded only when used: oidc-provider warns at import on Node 20 (it targets 22 LTS).
    const { createEmbeddedAs } = await import('./auth/as/index.ts');
    const connectsUsers = Object.values(config.credentials).some((c) => c.type === 'oauth-user');
    const internalClients: PreRegisteredClient[] = [];
    // The connect flow's login (credentials/connect.ts): public, PKCE, redirects only to this gateway.
    if (connectsUsers)
      internalClients.push({
        clientId: CONNECT_CLIENT_ID,
        clientName: 'Gatehouse: connect an account',
        grantTypes: ['authorization_code'],
        redirectUris: [`${publicBase}/connect/verified`],
      });
    // The console's login (admin/login.ts): confidential (a secret made at each start, never stored),
    // PKCE, scope openid only (its tokens carry no MCP scope), redirects only to this gateway.
    if (config.admin.enabled) {
      adminSecret = rnd();
      internalClients.push({
        clientId: ADMIN_CLIENT_ID,
        clientName: 'Gatehouse admin console',
        clientSecret: adminSecret,
        grantTypes: ['authorization_code'],
        redirectUris: [`${publicBase}/admin/callback`],
        scope: 'openid',
      });
    }
    const embeddedConfig =
      internalClients.length > 0
        ? { ...config.auth.embedded, clients: [...config.auth.embedded.clients, ...internalClients] }
        : config.auth.embedded;
    authServer = await createEmbeddedAs({
      issuer: publicBase,
      resource,
      scopes: [
        ...new Set([
          ...config.auth.requiredScopes,
          ...Object.values(config.auth.methodScopes),
          ...Object.values(config.auth.toolScopes),
        ]),
      ],
      // RFC 6749 §3.3: an authorization request without a scope gets the resource's required scopes.
      defaultScopes: config.auth.requiredScopes,
      config: embeddedConfig,
      storage,
      dataDir: opts.dataDir,
      log,
      loopbackOnly: isLoopback(config.server.host),
      taskGrants: { router, authorizer, grants },
      // T33: every failed login and client authentication is counted and audited; further refusals
      // of one lockout are only counted, so a flood cannot fill the audit log (T32).
      onLoginFailure: (f) => {
        metrics.authFailure(`login_${f.reason}`);
        if (!f.repeat) audit.loginFailed(f);
      },
      ...(revocations ? { revocations } : {}),
    });
    parts.authServer = authServer;
  }
  const jwks = authServer?.jwks();
  const { rs, verifier } = await createResourceServer(
    config,
    resource,
    authServer && jwks ? { issuer: authServer.issuer, jwks: () => jwks } : undefined,
    revocations,
  );
  parts.auth = rs;
  if (
    authServer &&
    verifier &&
    secrets &&
    Object.values(config.credentials).some((c) => c.type === 'oauth-user')
  ) {
    const connect = new ConnectFlows({
      base: publicBase,
      localOrigin: origin,
      issuer: authServer.issuer,
      resource,
      scope: config.auth.requiredScopes.join(' '),
      broker,
      verifier,
      secrets,
      leakGuard,
      audit,
      log,
      ttlMs: config.broker.connectLinkTtlSec * 1000,
      notify: (sessionId, elicitationId) =>
        registry.get(sessionId)?.notify('notifications/elicitation/complete', { elicitationId }),
    });
    broker.connect = connect;
    parts.connect = connect;
  }
  const adminLogin = await adminEndpoints(config, authServer, adminSecret, origin);
  if (adminLogin) {
    parts.admin = new AdminConsole({
      config,
      login: new AdminLogin(adminLogin, `${publicBase}/admin/callback`),
      actions: new AdminActions({ config, storage, approvals, broker, audit, log }),
      secure: publicBase.startsWith('https:') || !isLoopback(config.server.host),
      allowedOrigins,
      log,
      onLogin: (user) =>
        audit.record({
          type: 'admin.action',
          principal: { agent: ADMIN_CLIENT_ID, user },
          detail: { action: 'console.login', by: user, channel: 'console' },
        }),
    });
  } else if (config.admin.enabled && config.auth.mode === 'external')
    log.warn('admin console off: auth.mode is external and admin.external is not configured');
  if (cluster) {
    cluster.serve(
      config.bus.advertiseUrl ?? defaultAdvertiseUrl(config.server.host, port),
      (id) => registry.get(id) !== undefined,
      () => [...registry.all()].map((s) => s.id),
      (req) => checkHostAndOrigin(parts, req),
    );
    parts.cluster = cluster;
  }
  parts.started = true;
  if (config.auth.mode === 'none')
    log.warn('auth.mode is none: the gateway accepts unauthenticated requests (development only)');
  log.info({ url: `${origin}/mcp`, upstreams: [...managers.keys()] }, 'gatehouse listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info('shutting down');
      server.close();
      // Held calls are answered approval_pending now (their requests stay in the store for a retry).
      approvals.close();
      webhooks.close();
      const drainEnd = Date.now() + config.limits.drainTimeoutMs;
      await registry.drain(config.limits.drainTimeoutMs);
      // Calls carried for other replicas' sessions finish too (same bound), then the bus goes.
      await cluster?.drain(drainEnd);
      await cluster?.close();
      grants.close();
      revocations?.close();
      pins.close();
      broker.close();
      // Also closes each HTTP upstream's socket pools.
      await Promise.all([...managers.values()].map((m) => m.stop()));
      server.closeAllConnections();
      await verifier?.close?.();
      await authServer?.close();
      clearInterval(pruneTimer);
      await audit.stop();
      await otlp?.shutdown();
      await storage.close();
      await secrets?.close();
      log.info('stopped');
      log.flush?.();
    })();
    return closing;
  };
  const reloadPolicies = (): void => authorizer.reload();
  return { url: `${origin}/mcp`, origin, port, config, parts, managers, storage, reloadPolicies, close };
}

/** Where the console logs in: the embedded authorization server, or admin.external; undefined when off. */
async function adminEndpoints(
  config: GatehouseConfig,
  authServer: EmbeddedAs | undefined,
  adminSecret: string | undefined,
  origin: string,
): Promise<LoginEndpoints | undefined> {
  if (!config.admin.enabled) return undefined;
  if (authServer && adminSecret !== undefined) {
    return {
      issuer: authServer.issuer,
      authorization: `${authServer.issuer}/oauth/authorize`,
      // Back channel: the gateway reaches its own authorization server on its listener.
      token: `${origin}/oauth/token`,
      jwks: localKeys(authServer.jwks()),
      clientId: ADMIN_CLIENT_ID,
      clientSecret: adminSecret,
      scope: 'openid',
      groupsClaim: GROUPS_CLAIM,
      extra: {},
    };
  }
  const ext = config.admin.external;
  if (config.auth.mode !== 'external' || !ext) return undefined;
  const issuer = ext.issuer ?? config.auth.external?.issuer;
  if (!issuer) return undefined;
  const problem = (path: string, message: string): ConfigError =>
    new ConfigError([{ path: `admin.external.${path}`, line: undefined, message }]);
  if (!issuer.startsWith('https:') && !ext.allowInsecureHttp) throw problem('issuer', 'must be https');
  const meta = await discoverIssuer(issuer);
  if (!meta.authorization_endpoint || !meta.token_endpoint || !meta.jwks_uri)
    throw problem('issuer', 'its metadata lacks authorization_endpoint, token_endpoint or jwks_uri');
  return {
    issuer: meta.issuer,
    authorization: meta.authorization_endpoint,
    token: meta.token_endpoint,
    jwks: remoteKeys(meta.jwks_uri),
    clientId: ext.clientId,
    clientSecret: resolveSecret(ext.clientSecret, 'admin.external.clientSecret'),
    scope: ext.scope,
    groupsClaim: ext.groupsClaim,
    extra: {},
  };
}

/** Grant ends that an operator or a client asked for (not expiry, idleness or the session's own end). */
function isRevocation(reason: string): boolean {
  return reason !== 'expired' && reason !== 'idle timeout' && !reason.startsWith('session ended');
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The resource server for the configured mode, and the verifier it owns. */
async function createResourceServer(
  config: GatehouseConfig,
  resource: string,
  embedded: { issuer: string; jwks: () => JSONWebKeySet } | undefined,
  revocations: RevocationList | undefined,
): Promise<{ rs: ResourceServer; verifier: TokenVerifier | undefined }> {
  const auth = config.auth;
  // Every request, the verified-token cache hit path included: a few Map lookups (src/auth/revocation.ts).
  const revocationCheck = revocations
    ? {
        isRevoked: (p: Principal) => revocations.isRevoked(p),
        maxTokenLifetimeSec: revocationLifetimes(config).tokenLifetimeSec,
      }
    : {};
  const base = {
    requiredScopes: auth.requiredScopes,
    methodScopes: auth.methodScopes,
    toolScopes: auth.toolScopes,
    resource,
  };
  if (auth.mode === 'none') {
    return {
      rs: new ResourceServer({ ...base, mode: 'none', authorizationServers: [], verifier: undefined }),
      verifier: undefined,
    };
  }
  if (auth.mode === 'embedded') {
    if (!embedded) throw new Error('embedded authorization server missing');
    const verifier = createTokenVerifier({
      issuer: embedded.issuer,
      audience: resource,
      localJwks: embedded.jwks,
      algorithms: ['ES256'],
      // The embedded AS puts an upstream-IdP user's groups in this claim (auth/as/index.ts).
      groupsClaim: GROUPS_CLAIM,
      ...revocationCheck,
    });
    return {
      rs: new ResourceServer({
        ...base,
        mode: 'embedded',
        authorizationServers: [embedded.issuer],
        verifier,
      }),
      verifier,
    };
  }
  const ext = auth.external;
  if (!ext) {
    throw new ConfigError([
      { path: 'auth.external', line: undefined, message: 'required when auth.mode is external' },
    ]);
  }
  let introspection: VerifierOptions['introspection'];
  if (ext.introspection) {
    const endpoint = ext.introspection.endpoint ?? (await discoverIssuer(ext.issuer)).introspection_endpoint;
    if (!endpoint) {
      throw new ConfigError([
        {
          path: 'auth.external.introspection.endpoint',
          line: undefined,
          message: 'not configured and not in the issuer metadata',
        },
      ]);
    }
    introspection = {
      endpoint,
      clientId: ext.introspection.clientId,
      clientSecret: resolveSecret(ext.introspection.clientSecret, 'auth.external.introspection.clientSecret'),
    };
  }
  const verifier = createTokenVerifier({
    issuer: ext.issuer,
    audience: ext.audience ?? resource,
    ...(ext.jwksUri ? { jwksUri: ext.jwksUri } : {}),
    tenantClaim: ext.tenantClaim,
    jwksCooldownSec: ext.jwksCooldownSec,
    ...(introspection ? { introspection } : {}),
    ...revocationCheck,
  });
  return {
    rs: new ResourceServer({ ...base, mode: 'external', authorizationServers: [ext.issuer], verifier }),
    verifier,
  };
}
