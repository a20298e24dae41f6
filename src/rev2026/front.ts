/**
 * Sessionless requests (MCP 2026-07-28) mapped onto grants and pooled upstream sessions.
 *
 * A 2026-07-28 request runs under the grant of its token: a task token's grant, or, for a plain token,
 * an implicit grant per principal and client (clientInfo.name), made on first use and ended after
 * `limits.sessionIdleTimeoutMs` without requests (like a session's). The grant owns one gateway
 * Session that is never shown to the client: it holds the 2025-11-25 upstream sessions (initialized
 * once, by the gateway, with the capabilities a translating gateway can honour), the tool definitions
 * learned, the calls in flight. Every request then runs the same message stages as a session's
 * (authorize, approvals, leases, write-ahead audit, sanitisation), so nothing is bypassed; revoking
 * the grant ends the Session and its upstreams, and the next request of a task token is refused.
 */
import { type Principal, principalKey } from '../auth/principal.ts';
import { GatehouseError, toGatehouseError } from '../errors.ts';
import type { JsonRpcRequest } from '../protocol/jsonrpc.ts';
import { FRONT_PROTOCOL_VERSIONS, LATEST_PROTOCOL_VERSION } from '../protocol/versions.ts';
import type { SessionRegistry } from '../session/registry.ts';
import type { Router } from '../session/router.ts';
import { GATEWAY_INFO } from '../session/router.ts';
import type { Session } from '../session/session.ts';
import { upstreamRequest } from './mrtr.ts';
import type { ModernRequest } from './request.ts';

/** A pooled Session and what its upstreams declared at initialize (server/discover). */
interface Pooled {
  readonly session: Session;
  readonly init: Record<string, unknown>;
}

/** What the front needs of the gateway. */
interface Parts {
  readonly registry: SessionRegistry;
  readonly router: Router;
}

/** Client names are bounded like every key from outside (src/util/bounded.ts uses 256). */
const MAX_CLIENT_NAME = 128;

export class StatelessFront {
  /** Grant key → the Session serving it (a promise while its upstreams initialize). */
  private readonly pool = new Map<string, Promise<Pooled | GatehouseError>>();

  /** The Session of the caller's grant, made (and its upstreams initialized) on first use. */
  async resolve(gw: Parts, principal: Principal, modern: ModernRequest): Promise<Session | GatehouseError> {
    const rawName = modern.clientInfo.name;
    const client = typeof rawName === 'string' ? rawName.slice(0, MAX_CLIENT_NAME) : '';
    // T10-11: a task token's requests run under its grant only; a plain token's under its own implicit one.
    const key = `${principalKey(principal)}\0${principal.grantId ?? ''}\0${client}`;
    let entry = this.pool.get(key);
    if (entry) {
      const pooled = await entry;
      if (pooled instanceof GatehouseError || pooled.session.closed || pooled.session.grant.ended) {
        if (this.pool.get(key) === entry) this.pool.delete(key);
        entry = undefined;
      } else {
        return this.touch(pooled.session);
      }
    }
    const made = this.create(gw, principal, modern);
    this.pool.set(key, made);
    const pooled = await made;
    if (pooled instanceof GatehouseError) {
      this.pool.delete(key);
      return pooled;
    }
    return this.touch(pooled.session);
  }

  /** What server/discover answers for this Session. */
  async discover(session: Session): Promise<Record<string, unknown>> {
    for (const entry of this.pool.values()) {
      const pooled = await entry;
      if (!(pooled instanceof GatehouseError) && pooled.session === session)
        return discoverResult(pooled.init);
    }
    throw new GatehouseError('internal', undefined, { detail: 'server/discover outside the stateless pool' });
  }

  private touch(session: Session): Session | GatehouseError {
    if (session.grant.ended) return new GatehouseError('grant_ended');
    session.lastSeen = Date.now();
    session.grant.lastUsed = session.lastSeen;
    return session;
  }

  private async create(
    gw: Parts,
    principal: Principal,
    modern: ModernRequest,
  ): Promise<Pooled | GatehouseError> {
    const session = gw.registry.create(LATEST_PROTOCOL_VERSION, principal);
    if (session instanceof GatehouseError) return session;
    session.modern = true;
    // Server-to-client requests of its upstreams become InputRequiredResult (src/rev2026/mrtr.ts).
    session.inputRequest = (link, msg) => upstreamRequest(session, link, msg);
    // The upstream sessions are 2025-11-25 ones, opened by the gateway for the grant. They declare
    // sampling, elicitation and roots: the gateway asks the client of each request through an
    // InputRequiredResult, and only for what that request's _meta declares (src/rev2026/mrtr.ts).
    const init: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: LATEST_PROTOCOL_VERSION,
        capabilities: { sampling: {}, elicitation: { form: {} }, roots: {} },
        clientInfo: {
          ...modern.clientInfo,
          name: typeof modern.clientInfo.name === 'string' ? modern.clientInfo.name : 'mcp-2026-07-28-client',
          version: typeof modern.clientInfo.version === 'string' ? modern.clientInfo.version : '0',
        },
      },
    };
    try {
      const result = await gw.router.initialize(session, init, gw.registry.linkEvents(session));
      gw.registry.initialized(session);
      for (const link of session.links.values()) {
        if (link.alive) await link.notify({ jsonrpc: '2.0', method: 'notifications/initialized' });
        link.transport.initialized?.(link.protocolVersion ?? session.protocolVersion);
      }
      return { session, init: result };
    } catch (err) {
      const e = toGatehouseError(err);
      await gw.registry.end(session, e);
      return e;
    }
  }
}

/**
 * server/discover from what the grant's upstreams declared, in 2026-07-28 terms: no `listChanged` or
 * `subscribe` (there is no `subscriptions/listen` yet), no `logging` capability (log messages follow
 * the request's `_meta` logLevel). Private: it is the grant's view.
 */
function discoverResult(init: Record<string, unknown>): Record<string, unknown> {
  const upstream = (init.capabilities ?? {}) as Record<string, unknown>;
  const capabilities: Record<string, unknown> = {};
  if (upstream.tools !== undefined) capabilities.tools = {};
  if (upstream.prompts !== undefined) capabilities.prompts = {};
  if (upstream.resources !== undefined) capabilities.resources = {};
  if (upstream.completions !== undefined) capabilities.completions = {};
  return {
    resultType: 'complete',
    supportedVersions: [...FRONT_PROTOCOL_VERSIONS],
    capabilities,
    ...(typeof init.instructions === 'string' ? { instructions: init.instructions } : {}),
    _meta: { 'io.modelcontextprotocol/serverInfo': { ...GATEWAY_INFO } },
    ttlMs: 0,
    cacheScope: 'private',
  };
}
