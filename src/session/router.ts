/**
 * Federation: which upstream serves a request, merged `* /list` results with
 * gateway cursors, and the initialize handshake with every upstream.
 */
import type { Logger } from 'pino';
import type { GatehouseConfig } from '../config/schema.ts';
import type { CredentialBroker, UpstreamCredentials } from '../credentials/broker.ts';
import type { DefinitionPins } from '../definitions/pins.ts';
import { GatehouseError } from '../errors.ts';
import { exposeName, type NameTable, resolveName } from '../federation/names.ts';
import type { ToolDefinition } from '../policy/authorizer.ts';
import type { JsonRpcRequest } from '../protocol/jsonrpc.ts';
import { LIST_METHODS, type ListMethod } from '../protocol/lists.ts';
import { isSupportedVersion, LATEST_PROTOCOL_VERSION, type ProtocolVersion } from '../protocol/versions.ts';
import type { ShareRequest, UpstreamManager } from '../upstream/manager.ts';
import type { UpstreamTransport } from '../upstream/transport.ts';
import { boundedKey } from '../util/bounded.ts';
import { setOwn } from '../util/own.ts';
import { type LinkEvents, UpstreamLink } from './link.ts';
import type { Session } from './session.ts';

/** Resource templates kept per upstream per session (each is matched against unknown URIs). */
const MAX_TEMPLATES = 1000;

export const GATEWAY_INFO = { name: 'gatehouse', version: '0.1.0' } as const;

/** Where a routed request goes and what it is called there. */
export interface Route {
  server: string;
  params: Record<string, unknown> | undefined;
  target: string | undefined;
}

export class Router {
  readonly names: NameTable;
  private readonly order: string[];

  constructor(
    private readonly config: GatehouseConfig,
    private readonly managers: Map<string, UpstreamManager>,
    private readonly log: Logger,
    /** Leases credentials to upstreams that name a secret or a credential. */
    private readonly broker?: CredentialBroker,
    /** Tool-definition pins: every tools/list is checked against them; quarantined tools are hidden. */
    readonly pins?: DefinitionPins,
  ) {
    const namespaced = new Set<string>();
    let bare: string | undefined;
    for (const [name, u] of Object.entries(config.upstreams)) {
      if (u.namespace) namespaced.add(name);
      else bare = name;
    }
    this.names = { namespaced, bare };
    this.order = Object.keys(config.upstreams);
  }

  timeoutFor(server: string): number {
    return this.config.upstreams[server]?.timeoutMs ?? this.config.limits.callTimeoutMs;
  }

  // ---- initialize -----------------------------------------------------------

  /** Negotiates the version: the client's when supported, else our latest. */
  negotiate(requested: unknown): ProtocolVersion {
    return typeof requested === 'string' && isSupportedVersion(requested)
      ? requested
      : LATEST_PROTOCOL_VERSION;
  }

  /**
   * Connects the session to every upstream and initializes each with the
   * client's capabilities, so upstreams may use sampling, elicitation and roots
   * exactly when the client supports them. Upstreams that fail are logged and
   * left out; if all fail, initialize fails.
   */
  async initialize(
    session: Session,
    req: JsonRpcRequest,
    events: LinkEvents,
  ): Promise<Record<string, unknown>> {
    const params = req.params ?? {};
    session.clientInfo = isObject(params.clientInfo) ? params.clientInfo : {};
    session.clientCapabilities = isObject(params.capabilities) ? params.capabilities : {};
    const init = {
      protocolVersion: session.protocolVersion,
      capabilities: session.clientCapabilities,
      clientInfo: session.clientInfo,
    };
    const results = await Promise.allSettled(
      this.order.map(async (name) => {
        const manager = this.managers.get(name);
        if (!manager) throw new GatehouseError('internal', undefined, { detail: `no manager for ${name}` });
        // T30: limits.maxSessionsPerUpstream, before a process, a socket or an upstream session is spent.
        const release = manager.admit();
        let link: UpstreamLink;
        try {
          const creds = this.broker?.forUpstream(name, session.grant, session.principal, session.id);
          if (creds) {
            const stdio = manager.config.type === 'stdio';
            session.credentials.set(name, creds);
            // A shared process is not stopped for one session's lease: the session leaves it (the last
            // one out stops it); its static value is the one every other session's live lease holds.
            creds.hold({ revoked: (err) => session.credentialRevoked(name, err, stdio) });
          }
          const share = shareFor(manager, session);
          link = new UpstreamLink(name, await this.open(manager, creds, false, share), events, {
            open: () => this.open(manager, creds, true, share),
            restartable: manager.config.type !== 'sse',
            init,
            initializeTimeoutMs: this.config.limits.initializeTimeoutMs,
            release,
          });
        } catch (err) {
          release();
          throw err;
        }
        session.links.set(name, link);
        await link.handshake();
        return link;
      }),
    );
    const ok: UpstreamLink[] = [];
    let firstError: GatehouseError | undefined;
    results.forEach((r, i) => {
      const name = this.order[i] as string;
      if (r.status === 'fulfilled') ok.push(r.value);
      else {
        const err = r.reason instanceof GatehouseError ? r.reason : new GatehouseError('upstream_failed');
        firstError ??= err;
        this.log.warn(
          { upstream: name, session: session.id, err: err.message, detail: err.detail },
          'upstream failed to initialize',
        );
        const link = session.links.get(name);
        session.links.delete(name);
        void link?.close(err);
      }
    });
    if (ok.length === 0) {
      throw firstError?.code === 'capacity_exceeded'
        ? firstError
        : new GatehouseError('upstream_unavailable', 'no upstream server could be initialized');
    }
    return {
      protocolVersion: session.protocolVersion,
      capabilities: mergeCapabilities(ok),
      serverInfo: GATEWAY_INFO,
      // T14: instructions that are not the pin (changed, or new under quarantine) are withheld until approved.
      ...instructionsOf(ok, (l) => this.pins?.instructionsApproved(l.server, l.instructions) ?? true),
    };
  }

  /**
   * A transport for one session's link, at session start and for every restart: the credentials come
   * through the broker's leases each time (a revoked lease refuses; never a value kept from an ended one).
   */
  private async open(
    manager: UpstreamManager,
    creds: UpstreamCredentials | undefined,
    restart: boolean,
    share: ShareRequest | undefined,
  ): Promise<UpstreamTransport> {
    if (creds) {
      const err = await creds.ensure(false);
      // A stdio process gets its environment at spawn: without its credentials it does not start. An
      // HTTP upstream starts with what can be had (a per-user connection may come later); it is not
      // restarted under a revoked lease.
      if (err && (manager.config.type === 'stdio' || (restart && err.code === 'credential_revoked')))
        throw err;
    }
    return manager.acquire(creds, share);
  }

  // ---- routing ----------------------------------------------------------------

  /** Finds the upstream for a request that names one tool, prompt or resource. */
  route(session: Session, method: string, params: Record<string, unknown> | undefined): Route {
    switch (method) {
      case 'tools/call':
      case 'prompts/get': {
        const name = params?.name;
        if (typeof name !== 'string')
          throw new GatehouseError('invalid_params', 'params.name must be a string');
        const r = resolveName(this.names, name);
        const code = method === 'tools/call' ? 'unknown_tool' : 'unknown_prompt';
        if (!r || !session.links.has(r.server))
          throw new GatehouseError(
            code,
            `${code === 'unknown_tool' ? 'tool' : 'prompt'} \`${name}\` not found`,
          );
        return { server: r.server, params: { ...params, name: r.name }, target: name };
      }
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = params?.uri;
        if (typeof uri !== 'string')
          throw new GatehouseError('invalid_params', 'params.uri must be a string');
        return { server: this.ownerOf(session, uri), params, target: uri };
      }
      case 'completion/complete': {
        const ref = isObject(params?.ref) ? params.ref : undefined;
        if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
          const r = resolveName(this.names, ref.name);
          if (!r || !session.links.has(r.server))
            throw new GatehouseError('unknown_prompt', `prompt \`${ref.name}\` not found`);
          return { server: r.server, params: { ...params, ref: { ...ref, name: r.name } }, target: ref.name };
        }
        if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
          return { server: this.ownerOf(session, ref.uri), params, target: ref.uri };
        }
        throw new GatehouseError('invalid_params', 'params.ref must be a ref/prompt or ref/resource');
      }
      default: {
        // Methods the gateway does not interpret pass through when exactly one upstream is behind it.
        const alive = [...session.links.values()];
        if (alive.length === 1 && alive[0]) return { server: alive[0].server, params, target: undefined };
        throw new GatehouseError('method_not_found', `method \`${method}\` is not supported by this gateway`);
      }
    }
  }

  /** The server that listed `uri` or a template matching it; the only resource server otherwise. */
  private ownerOf(session: Session, uri: string): string {
    const known = session.resourceOwners.get(boundedKey(uri));
    if (known && session.links.has(known)) return known;
    for (const [server, templates] of session.templates) {
      if (templates.some((t) => templateMatches(t, uri)) && session.links.has(server)) return server;
    }
    const withResources = [...session.links.values()].filter((l) => l.capabilities.resources !== undefined);
    if (withResources.length === 1 && withResources[0]) return withResources[0].server;
    throw new GatehouseError('unknown_resource', `resource \`${uri}\` not found`);
  }

  // ---- lists -----------------------------------------------------------------

  /**
   * One page of a merged list. The gateway cursor encodes (server index,
   * upstream cursor); servers are walked in configuration order and empty
   * pages are skipped.
   */
  async list(
    session: Session,
    method: ListMethod,
    params: Record<string, unknown> | undefined,
    visible: ListFilter = () => true,
  ): Promise<Record<string, unknown>> {
    const spec = LIST_METHODS[method];
    const servers = this.order.filter((s) => {
      const l = session.links.get(s);
      return l?.alive && l.capabilities[spec.cap] !== undefined;
    });
    let [index, cursor] = decodeCursor(params?.cursor, servers.length);
    const items: Record<string, unknown>[] = [];
    while (index < servers.length) {
      const server = servers[index] as string;
      const link = session.links.get(server) as UpstreamLink;
      const upstreamParams: Record<string, unknown> = { ...params };
      delete upstreamParams.cursor;
      if (cursor !== undefined) upstreamParams.cursor = cursor;
      const result = await link.request(method, upstreamParams, this.timeoutFor(server));
      const page = Array.isArray(result[spec.key]) ? (result[spec.key] as unknown[]) : [];
      const next = typeof result.nextCursor === 'string' ? result.nextCursor : undefined;
      const tools = method === 'tools/list';
      if (tools) {
        // ORDER: pins are checked before anything is shown or kept (a changed definition is quarantined).
        this.pins?.observe(server, page);
        // A whole listing in one page is a complete, fresh set of definitions (argument validation uses it);
        // a page of a longer listing refreshes the definitions it carries.
        if (cursor === undefined && next === undefined) session.toolDefs.set(server, toolDefMap(page));
        else refreshDefs(session.toolDefs.get(server), page);
      }
      // Prompts and resource templates are pinned like tools (what the agent is told about them).
      const listed =
        method === 'prompts/list'
          ? 'prompt'
          : method === 'resources/templates/list'
            ? 'resource-template'
            : undefined;
      if (listed !== undefined) this.pins?.observeListed(server, listed, page);
      for (const item of page) {
        if (!isObject(item)) continue;
        if (
          tools &&
          this.pins &&
          typeof item.name === 'string' &&
          !this.pins.callable(server, item.name, item)
        )
          continue;
        if (listed !== undefined && this.pins) {
          const name = listed === 'prompt' ? item.name : item.uriTemplate;
          if (typeof name !== 'string' || !this.pins.listable(server, listed, name, item)) continue;
        }
        const exposed = this.expose(session, server, method, item);
        if (exposed && visible(server, item, exposed)) items.push(exposed);
      }
      if (next !== undefined) cursor = next;
      else {
        index++;
        cursor = undefined;
      }
      if (items.length > 0) break;
    }
    const out: Record<string, unknown> = { [spec.key]: items };
    if (index < servers.length) out.nextCursor = encodeCursor(index, cursor);
    return out;
  }

  private expose(
    session: Session,
    server: string,
    method: ListMethod,
    item: Record<string, unknown>,
  ): Record<string, unknown> | undefined {
    if (method === 'resources/list' && typeof item.uri === 'string')
      session.resourceOwners.set(boundedKey(item.uri), server);
    if (method === 'resources/templates/list' && typeof item.uriTemplate === 'string') {
      const list = session.templates.get(server) ?? [];
      if (!list.includes(item.uriTemplate) && list.length < MAX_TEMPLATES) list.push(item.uriTemplate);
      session.templates.set(server, list);
    }
    if (typeof item.name !== 'string') return item;
    const name = exposeName(this.names, server, item.name);
    if (name === undefined) {
      this.log.warn(
        { upstream: server, name: item.name },
        'name hidden: it would shadow a namespaced server',
      );
      return undefined;
    }
    return name === item.name ? item : { ...item, name };
  }

  /** Fetches every page of one upstream's tools/list into the session's definitions. */
  async loadToolDefs(session: Session, server: string): Promise<void> {
    const link = session.links.get(server);
    if (!link?.alive) throw new GatehouseError('upstream_unavailable', `upstream ${server} is not available`);
    const all: unknown[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const result = await link.request('tools/list', cursor ? { cursor } : {}, this.timeoutFor(server));
      if (Array.isArray(result.tools)) all.push(...result.tools);
      cursor = typeof result.nextCursor === 'string' ? result.nextCursor : undefined;
      if (cursor === undefined) break;
    }
    this.pins?.observe(server, all);
    session.toolDefs.set(server, toolDefMap(all));
  }

  /** Fans `logging/setLevel` out to every upstream that supports logging; the gateway's own messages follow it too. */
  async setLogLevel(
    session: Session,
    params: Record<string, unknown> | undefined,
  ): Promise<Record<string, unknown>> {
    session.setLogLevel(params?.level);
    const links = [...session.links.values()].filter((l) => l.alive && l.capabilities.logging !== undefined);
    await Promise.all(links.map((l) => l.request('logging/setLevel', params, this.timeoutFor(l.server))));
    return {};
  }
}

/**
 * Which shared process a session's link joins (`isolation` of a stdio upstream), or undefined for a
 * process of its own. The key holds the protocol revision too, so the upstream speaks the revision each
 * of its sessions negotiated, as with a process of its own; `principal` keys by issuer, agent, user and
 * tenant (`principalKey`).
 */
function shareFor(manager: UpstreamManager, session: Session): ShareRequest | undefined {
  const cfg = manager.config;
  if (cfg.type !== 'stdio' || cfg.isolation === 'session') return undefined;
  const who = cfg.isolation === 'shared' ? 'shared' : `principal ${session.principalKey}`;
  return {
    key: `${who}\0${session.protocolVersion}`,
    protocolVersion: session.protocolVersion,
    clientInfo: { ...GATEWAY_INFO },
  };
}

/** Decides whether a listed item is shown: (server, upstream item, exposed item). */
export type ListFilter = (
  server: string,
  item: Record<string, unknown>,
  exposed: Record<string, unknown>,
) => boolean;

/** Replaces the definitions a session holds for tools that a later page lists again. */
function refreshDefs(defs: Map<string, ToolDefinition> | undefined, page: readonly unknown[]): void {
  if (defs === undefined) return;
  for (const t of page)
    if (isObject(t) && typeof t.name === 'string' && defs.has(t.name)) defs.set(t.name, t);
}

function toolDefMap(tools: readonly unknown[]): Map<string, ToolDefinition> {
  const m = new Map<string, ToolDefinition>();
  for (const t of tools) if (isObject(t) && typeof t.name === 'string') m.set(t.name, t);
  return m;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mergeCapabilities(links: UpstreamLink[]): Record<string, unknown> {
  const caps: Record<string, unknown> = {};
  const has = (k: string): UpstreamLink[] => links.filter((l) => isObject(l.capabilities[k]));
  // The gateway always announces list changes: they happen when an upstream comes or goes.
  if (has('tools').length) caps.tools = { listChanged: true };
  if (has('prompts').length) caps.prompts = { listChanged: true };
  const res = has('resources');
  if (res.length) {
    caps.resources = {
      listChanged: true,
      ...(res.some((l) => (l.capabilities.resources as Record<string, unknown>).subscribe === true)
        ? { subscribe: true }
        : {}),
    };
  }
  // "Servers that emit log message notifications MUST declare the logging capability": the gateway
  // itself tells the client when an upstream restarts or ends, whatever its upstreams declare.
  caps.logging = {};
  if (has('completions').length) caps.completions = {};
  if (links.length === 1 && links[0]) {
    // Single upstream: pass through capabilities the gateway does not interpret (e.g. experimental, tasks).
    for (const [k, v] of Object.entries(links[0].capabilities))
      if (!Object.hasOwn(caps, k)) setOwn(caps, k, v);
  }
  return caps;
}

function instructionsOf(
  links: UpstreamLink[],
  shown: (l: UpstreamLink) => boolean,
): { instructions?: string } {
  const parts = links.filter((l) => l.instructions && shown(l));
  if (parts.length === 0) return {};
  if (links.length === 1) return { instructions: parts[0]?.instructions as string };
  return { instructions: parts.map((l) => `[${l.server}]\n${l.instructions}`).join('\n\n') };
}

function encodeCursor(index: number, cursor: string | undefined): string {
  return Buffer.from(JSON.stringify(cursor === undefined ? [index] : [index, cursor])).toString('base64url');
}

function decodeCursor(raw: unknown, servers: number): [number, string | undefined] {
  if (raw === undefined) return [0, undefined];
  try {
    if (typeof raw !== 'string') throw new Error('not a string');
    const v: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (!Array.isArray(v) || !Number.isInteger(v[0]) || v[0] < 0 || v[0] >= servers) throw new Error('shape');
    if (v.length > 2 || (v.length === 2 && typeof v[1] !== 'string')) throw new Error('shape');
    return [v[0] as number, v[1] as string | undefined];
  } catch {
    throw new GatehouseError('invalid_cursor');
  }
}

/** RFC 6570 level-1 match: `{var}` spans one or more characters other than `/`. */
function templateMatches(template: string, uri: string): boolean {
  const parts = template.split(/\{[^}]*\}/);
  const re = new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]+')}$`);
  return re.test(uri);
}
