/**
 * The policy decision point: builds Cedar entities from the principal and tool attributes, asks Cedar
 * (pre-parsed policy set, stateful wasm API), and maps the answer to allow / deny / approval_required.
 * Decisions that cannot depend on per-call context (arguments, time, what the grant has read) are cached
 * per (policy generation, principal, grant, action, server, tool, approval state).
 */
import type { Principal } from '../auth/principal.ts';
import { setOwn } from '../util/own.ts';
import { cedar, type EntityJson, type EntityUidJson, type PolicyJson } from './cedar.ts';
import { loadPolicySet, type PolicySet } from './load.ts';
import { NAMESPACE } from './schema.ts';

/** The MCP operations policies decide on. */
export type PolicyAction = 'call_tool' | 'list_tools' | 'read_resource' | 'get_prompt';

/** Operator-assigned attributes of a tool, plus the upstream's (untrusted) annotations. */
export interface ToolAttributes {
  /** Operator-assigned risk, e.g. low | medium | high | critical. Default "unknown". */
  readonly risk?: string;
  /** Operator-assigned side-effect class, e.g. none | read | write | destructive | external. Default "unknown". */
  readonly sideEffect?: string;
  /** Owning team or person. Default "". */
  readonly owner?: string;
  /** The operator marked the server trusted: only then are `annotations` believed. */
  readonly serverTrusted?: boolean;
  /** MCP tool annotations as the upstream sent them. */
  readonly annotations?: { readonly readOnlyHint?: boolean; readonly destructiveHint?: boolean };
}

/** One authorization question. */
export interface DecisionRequest {
  readonly principal: Principal;
  readonly action: PolicyAction;
  readonly server: string;
  /** Tool name (call_tool, list_tools), resource URI (read_resource) or prompt name (get_prompt), without the server prefix. */
  readonly tool: string;
  readonly toolAttrs?: ToolAttributes;
  /** Call arguments; each top-level key becomes a tag of `context.args`. */
  readonly args?: unknown;
  readonly grantId: string;
  /** A human approved this call (see `@approval`). Default false. */
  readonly approved?: boolean;
  /** Epoch seconds; default now. */
  readonly time?: number;
  /** Labels of what the grant has already read (`context.read`). */
  readonly read?: readonly string[];
}

/** The answer: effect, the ids of the policies that produced it, and evaluation errors. */
export interface Decision {
  readonly effect: 'allow' | 'deny' | 'approval_required';
  /**
   * allow: the satisfied permits. deny: the satisfied forbids (empty for deny by default).
   * approval_required: the `@approval` forbids, then the permits that allow once approved.
   */
  readonly policies: readonly string[];
  /** Policy evaluation errors, `<policy id>: <message>`. An erroring forbid policy denies (fail closed). */
  readonly errors: readonly string[];
}

/** Role memberships, by agent id and by user id. */
export interface RoleMap {
  readonly agents?: Readonly<Record<string, readonly string[]>>;
  readonly users?: Readonly<Record<string, readonly string[]>>;
}

/** Options of a {@link PolicyEngine}. */
export interface PolicyEngineOptions {
  readonly roles?: RoleMap;
  /** Cached decisions kept before the cache is cleared; default 100,000. */
  readonly maxCacheEntries?: number;
  /** Turn the decision cache off (benchmarks, tests). */
  readonly cache?: boolean;
}

/** Counters of the decision cache since the last reload. */
export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  /** Requests whose key is argument-dependent (evaluated each time). */
  readonly dynamic: number;
  readonly size: number;
  readonly generation: number;
}

/** What one Cedar call said: satisfied policy ids and evaluation errors. */
interface Outcome {
  readonly reasons: readonly string[];
  /** `<policy id>: <message>` per erroring policy. */
  readonly errors: readonly string[];
  readonly erroredIds: readonly string[];
  /** The call itself failed (malformed request); deny. */
  readonly failure?: readonly string[];
}

const EMPTY: Outcome = { reasons: [], errors: [], erroredIds: [] };

/**
 * A cache entry for a key where argument/time/taint-dependent policies apply: the outcome of the other
 * (static) policies is kept, per approval state, and only the applicable dynamic policies run per call.
 */
interface DynamicEntry {
  /** Pre-parsed set holding just the dynamic policies that apply to this key; undefined: use the full set. */
  readonly subsetId: string | undefined;
  /** Ids of the dynamic policies that apply to this key; undefined when the probe failed. */
  readonly applicable: readonly string[] | undefined;
  /** Static outcome for approved = false / true, filled lazily. */
  readonly statics: [Outcome | undefined, Outcome | undefined];
}

interface Generation {
  readonly id: number;
  readonly set: PolicySet;
  /** The whole set (decideUncached, and the fallback). */
  readonly fullId: string;
  /** Policies that read no per-call context; undefined when there are none. */
  readonly staticId: string | undefined;
  /** Scope-only permits, one per dynamic policy; undefined when there are none. */
  readonly probeId: string | undefined;
  /** Pre-parsed subsets of dynamic policies, by their sorted ids. */
  readonly subsets: Map<string, string>;
  readonly cache: Map<string, Decision | DynamicEntry>;
  hits: number;
  misses: number;
  dynamic: number;
}

/** Distinct pre-parsed dynamic subsets kept per generation; beyond it dynamic keys use the full set. */
const MAX_SUBSETS = 1000;

let engineSeq = 0;

const ACTION_RESOURCE: Record<PolicyAction, string> = {
  call_tool: `${NAMESPACE}::Tool`,
  list_tools: `${NAMESPACE}::Tool`,
  read_resource: `${NAMESPACE}::Resource`,
  get_prompt: `${NAMESPACE}::Prompt`,
};

const principalKeys = new WeakMap<Principal, string>();
const attrKeys = new WeakMap<ToolAttributes, string>();

function principalCacheKey(p: Principal): string {
  let k = principalKeys.get(p);
  if (k === undefined) {
    k = JSON.stringify([
      p.issuer,
      p.agent,
      p.user ?? null,
      p.tenant ?? null,
      p.actors,
      [...p.scopes].sort(),
      p.authMethod,
      p.groups ?? null,
    ]);
    principalKeys.set(p, k);
  }
  return k;
}

function attrCacheKey(a: ToolAttributes | undefined): string {
  if (a === undefined) return '';
  let k = attrKeys.get(a);
  if (k === undefined) {
    k = JSON.stringify([
      a.risk,
      a.sideEffect,
      a.owner,
      a.serverTrusted,
      a.annotations?.readOnlyHint,
      a.annotations?.destructiveHint,
    ]);
    attrKeys.set(a, k);
  }
  return k;
}

function uid(type: string, id: string): EntityUidJson {
  return { type: `${NAMESPACE}::${type}`, id };
}

/** Entity id of a tool, resource or prompt: `<server>__<name>`, as the gateway exposes names. */
export function resourceEntityId(server: string, name: string): string {
  return `${server}__${name}`;
}

/** Turns call arguments into `Args` tags: strings as-is, other values as JSON text. */
export function argsToTags(args: unknown): Record<string, string> {
  const tags: Record<string, string> = {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return tags;
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined) continue;
    setOwn(tags, k, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return tags;
}

function cacheKey(req: DecisionRequest): string {
  return `${principalCacheKey(req.principal)}\u0000${req.grantId}\u0000${req.action}\u0000${req.server}\u0000${req.tool}\u0000${req.approved === true ? 1 : 0}\u0000${attrCacheKey(req.toolAttrs)}`;
}

/** Integer call arguments (within Cedar's 64-bit Long range) as `Numbers` tags. */
export function argsToNumbers(args: unknown): Record<string, number> {
  const tags: Record<string, number> = {};
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return tags;
  for (const [k, v] of Object.entries(args)) {
    if (typeof v === 'number' && Number.isSafeInteger(v)) setOwn(tags, k, v);
  }
  return tags;
}

/** Freezes a decision and its arrays, so a cached one can be handed out many times. */
function freeze(d: Decision): Decision {
  Object.freeze(d.policies);
  Object.freeze(d.errors);
  return Object.freeze(d);
}

/**
 * Evaluates requests against one policy set at a time. Deny by default: no satisfied permit, or any
 * satisfied forbid, denies. `reload` swaps the policy set atomically: the new set is loaded, validated
 * and pre-parsed first, and the engine keeps the old one if anything fails.
 */
export class PolicyEngine {
  readonly #instance = ++engineSeq;
  readonly #roles: RoleMap;
  readonly #maxCache: number;
  readonly #useCache: boolean;
  #gen: Generation;

  constructor(set: PolicySet, options: PolicyEngineOptions = {}) {
    this.#roles = options.roles ?? {};
    this.#maxCache = options.maxCacheEntries ?? 100_000;
    this.#useCache = options.cache ?? true;
    this.#gen = this.#prepare(set, 1);
  }

  /** Loads, validates and pre-parses policy files; throws PolicyLoadError. */
  static fromFiles(files: readonly string[], options?: PolicyEngineOptions): PolicyEngine {
    return new PolicyEngine(loadPolicySet({ files }), options);
  }

  /** Policy generation: starts at 1, +1 per successful reload. */
  get generation(): number {
    return this.#gen.id;
  }

  /** The active policy set. */
  get policySet(): PolicySet {
    return this.#gen.set;
  }

  /** Reloads from files. On any error (PolicyLoadError) the current policies stay active. */
  reload(files: readonly string[]): void {
    this.replace(loadPolicySet({ files }));
  }

  /** Swaps in an already loaded set; the decision cache starts empty. */
  replace(set: PolicySet): void {
    this.#gen = this.#prepare(set, this.#gen.id + 1);
  }

  /** Counters of the current generation's cache. */
  cacheStats(): CacheStats {
    const g = this.#gen;
    return { hits: g.hits, misses: g.misses, dynamic: g.dynamic, size: g.cache.size, generation: g.id };
  }

  /** Decides one request. Never throws: a Cedar failure is a deny with the error in `errors`. */
  decide(req: DecisionRequest): Decision {
    const g = this.#gen;
    if (!this.#useCache) return this.#full(g, req);
    const key = cacheKey(req);
    const hit = g.cache.get(key);
    if (hit !== undefined && 'effect' in hit) {
      g.hits++;
      return hit;
    }
    const entities = this.#entities(req);
    if (hit !== undefined) {
      g.dynamic++;
      return this.#dynamic(g, hit, req, entities);
    }
    g.misses++;
    if (g.cache.size >= this.#maxCache) g.cache.clear();
    const applicable = g.probeId === undefined ? [] : this.#probe(g.probeId, req, entities);
    if (applicable === undefined || applicable.length > 0) {
      const entry: DynamicEntry = {
        subsetId: this.#subset(g, applicable),
        applicable,
        statics: [undefined, undefined],
      };
      g.cache.set(key, entry);
      return this.#dynamic(g, entry, req, entities);
    }
    const d = this.#combine(
      g,
      (approved) => this.#run(g.staticId, req, entities, approved),
      req.approved === true,
    );
    g.cache.set(key, d);
    return d;
  }

  /**
   * Whether the request could be allowed for some call context: the decision without arguments is
   * allow or approval_required, or it depends on per-call context (arguments, time, what was read), so
   * some arguments may be allowed. Lists show such tools; task grants may include them.
   */
  mayAllow(req: DecisionRequest): boolean {
    const bare: DecisionRequest = { ...req, args: undefined, approved: false };
    const d = this.decide(bare);
    if (d.effect !== 'deny') return true;
    if (!this.#useCache) return true; // cannot tell without the cache's classification: let per-call decide
    const entry = this.#gen.cache.get(cacheKey(bare));
    if (entry === undefined || 'effect' in entry) return false; // no per-call context can change a static deny
    const byId = this.#gen.set.byId;
    const isPermit = (id: string) => byId.get(id)?.effect === 'permit';
    // A static, non-approval forbid denies whatever the arguments.
    const absolute = d.policies.some((id) => {
      const p = byId.get(id);
      return p !== undefined && p.effect === 'forbid' && p.dynamicFields.length === 0 && !p.approval;
    });
    if (absolute) return false;
    if (entry.applicable === undefined || entry.statics[0] === undefined) return true; // be conservative
    // Some permit must be able to hold: a static one already satisfied, or an applicable dynamic one.
    return entry.applicable.some(isPermit) || entry.statics[0].reasons.some(isPermit);
  }

  /** Evaluation without the cache or the static/dynamic split (benchmarks, tests): the whole set, every call. */
  decideUncached(req: DecisionRequest): Decision {
    return this.#full(this.#gen, req);
  }

  #full(g: Generation, req: DecisionRequest): Decision {
    const entities = this.#entities(req);
    return this.#combine(
      g,
      (approved) => this.#run(g.fullId, req, entities, approved),
      req.approved === true,
    );
  }

  #dynamic(g: Generation, entry: DynamicEntry, req: DecisionRequest, entities: EntityJson[]): Decision {
    if (entry.subsetId === undefined) {
      return this.#combine(
        g,
        (approved) => this.#run(g.fullId, req, entities, approved),
        req.approved === true,
      );
    }
    const subsetId = entry.subsetId;
    return this.#combine(
      g,
      (approved) => {
        const i = approved ? 1 : 0;
        let st = entry.statics[i];
        if (st === undefined) {
          st = this.#run(g.staticId, req, entities, approved);
          entry.statics[i] = st;
        }
        return merge(st, this.#run(subsetId, req, entities, approved));
      },
      req.approved === true,
    );
  }

  /** The pre-parsed set of these dynamic policies (created once per distinct subset), or undefined. */
  #subset(g: Generation, ids: readonly string[] | undefined): string | undefined {
    if (ids === undefined) return undefined;
    const name = [...ids].sort().join('\u0000');
    const existing = g.subsets.get(name);
    if (existing !== undefined) return existing;
    if (g.subsets.size >= MAX_SUBSETS) return undefined;
    const staticPolicies: Record<string, string> = {};
    for (const id of ids) {
      const p = g.set.byId.get(id);
      if (p === undefined) return undefined;
      staticPolicies[id] = p.text;
    }
    const psetId = `${g.fullId}-d${g.subsets.size}`;
    if (cedar.preparsePolicySet(psetId, { staticPolicies }).type === 'failure') return undefined;
    g.subsets.set(name, psetId);
    return psetId;
  }

  #prepare(set: PolicySet, id: number): Generation {
    // Two slots per engine: the wasm side keeps pre-parsed sets by name and has no delete, so alternating
    // names bounds memory; decide() is synchronous, so nothing still uses the slot being overwritten.
    const slot = `gatehouse-${this.#instance}-${id % 2}`;
    const all: Record<string, string> = {};
    const statics: Record<string, string> = {};
    const probes: Record<string, PolicyJson> = {};
    for (const p of set.policies) {
      all[p.id] = p.text;
      if (p.dynamicFields.length > 0) {
        // Same scope, no conditions: satisfied exactly when the policy applies to this principal/action/resource.
        probes[p.id] = {
          effect: 'permit',
          principal: p.json.principal,
          action: p.json.action,
          resource: p.json.resource,
          conditions: [],
        };
      } else {
        statics[p.id] = p.text;
      }
    }
    const prepare = (
      name: string,
      staticPolicies: Record<string, string | PolicyJson>,
    ): string | undefined => {
      if (Object.keys(staticPolicies).length === 0) return undefined;
      const r = cedar.preparsePolicySet(name, { staticPolicies });
      if (r.type === 'failure')
        throw new Error(`cannot prepare policies: ${r.errors.map((e) => e.message).join('; ')}`);
      return name;
    };
    const fullId = `${slot}-full`;
    const full = cedar.preparsePolicySet(fullId, { staticPolicies: all });
    if (full.type === 'failure')
      throw new Error(`cannot prepare policies: ${full.errors.map((e) => e.message).join('; ')}`);
    return {
      id,
      set,
      fullId,
      staticId: prepare(`${slot}-static`, statics),
      probeId: prepare(`${slot}-probe`, probes),
      subsets: new Map(),
      cache: new Map(),
      hits: 0,
      misses: 0,
      dynamic: 0,
    };
  }

  #entities(req: DecisionRequest): EntityJson[] {
    const p = req.principal;
    const entities: EntityJson[] = [];
    const tenantParents: EntityUidJson[] = [];
    if (p.tenant !== undefined) {
      tenantParents.push(uid('Tenant', p.tenant));
      entities.push({ uid: uid('Tenant', p.tenant), attrs: {}, parents: [] });
    }
    const roleSeen = new Set<string>();
    // Own properties only: a principal named "constructor" or "__proto__" has no roles, not Object's.
    const rolesOf = (
      table: Readonly<Record<string, readonly string[]>> | undefined,
      id: string,
    ): readonly string[] | undefined => (table && Object.hasOwn(table, id) ? table[id] : undefined);
    const roleUids = (ids: readonly string[] | undefined): EntityUidJson[] =>
      (ids ?? []).map((r) => {
        if (!roleSeen.has(r)) {
          roleSeen.add(r);
          entities.push({ uid: uid('Role', r), attrs: {}, parents: [] });
        }
        return uid('Role', r);
      });
    const agentAttrs: Record<string, EntityJson['attrs'][string]> = {
      issuer: p.issuer,
      actors: [...p.actors],
      scopes: [...p.scopes],
      authMethod: p.authMethod,
    };
    if (p.user !== undefined) {
      entities.push({
        uid: uid('User', p.user),
        attrs: { issuer: p.issuer },
        // The user's roles: from the config (policy.roles.users) and the groups its token carries.
        parents: [
          ...tenantParents,
          ...roleUids([...new Set([...(rolesOf(this.#roles.users, p.user) ?? []), ...(p.groups ?? [])])]),
        ],
      });
      agentAttrs['user'] = { __entity: { type: `${NAMESPACE}::User`, id: p.user } };
    }
    entities.push({
      uid: uid('Agent', p.agent),
      attrs: agentAttrs,
      parents: [...tenantParents, ...roleUids(rolesOf(this.#roles.agents, p.agent))],
    });
    const a = req.toolAttrs ?? {};
    const trusted = a.serverTrusted === true;
    const serverUid = uid('Server', req.server);
    entities.push({ uid: serverUid, attrs: { trusted }, parents: [] });
    const rType = ACTION_RESOURCE[req.action];
    const rAttrs: EntityJson['attrs'] = {
      name: req.tool,
      server: { __entity: serverUid as { type: string; id: string } },
    };
    if (rType === `${NAMESPACE}::Tool`) {
      rAttrs['risk'] = a.risk ?? 'unknown';
      rAttrs['sideEffect'] = a.sideEffect ?? 'unknown';
      rAttrs['owner'] = a.owner ?? '';
      // Untrusted servers get the MCP spec's pessimistic defaults whatever they claim.
      rAttrs['readOnlyHint'] = trusted ? (a.annotations?.readOnlyHint ?? false) : false;
      rAttrs['destructiveHint'] = trusted ? (a.annotations?.destructiveHint ?? true) : true;
    }
    entities.push({
      uid: { type: rType, id: resourceEntityId(req.server, req.tool) },
      attrs: rAttrs,
      parents: [serverUid],
    });
    entities.push({ uid: uid('Grant', req.grantId), attrs: {}, parents: [] });
    entities.push({ uid: uid('Args', 'call'), attrs: {}, parents: [], tags: argsToTags(req.args) });
    entities.push({ uid: uid('Numbers', 'call'), attrs: {}, parents: [], tags: argsToNumbers(req.args) });
    return entities;
  }

  /** One Cedar call against a pre-parsed set; an absent set satisfies nothing. */
  #run(psetId: string | undefined, req: DecisionRequest, entities: EntityJson[], approved: boolean): Outcome {
    if (psetId === undefined) return EMPTY;
    const ans = cedar.statefulIsAuthorized({
      principal: uid('Agent', req.principal.agent),
      action: uid('Action', req.action),
      resource: { type: ACTION_RESOURCE[req.action], id: resourceEntityId(req.server, req.tool) },
      context: {
        grant: { __entity: { type: `${NAMESPACE}::Grant`, id: req.grantId } },
        args: { __entity: { type: `${NAMESPACE}::Args`, id: 'call' } },
        numbers: { __entity: { type: `${NAMESPACE}::Numbers`, id: 'call' } },
        approved,
        time: Math.floor(req.time ?? Date.now() / 1000),
        read: [...(req.read ?? [])],
      },
      preparsedPolicySetId: psetId,
      entities,
    });
    if (ans.type === 'failure') {
      const msgs = ans.errors.map((e) => e.message);
      return { reasons: [], errors: msgs, erroredIds: [], failure: msgs };
    }
    const { diagnostics } = ans.response;
    return {
      reasons: diagnostics.reason,
      errors: diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`),
      erroredIds: diagnostics.errors.map((e) => e.policyId),
    };
  }

  /** Ids of the dynamic policies whose scope matches the request; undefined if the probe failed (be conservative). */
  #probe(probeId: string, req: DecisionRequest, entities: EntityJson[]): readonly string[] | undefined {
    const o = this.#run(probeId, req, entities, req.approved === true);
    return o.failure === undefined ? o.reasons : undefined;
  }

  /**
   * Cedar's rule (allow iff some permit and no forbid is satisfied), failing closed on an erroring forbid,
   * plus approval: when only `@approval` forbids deny, ask again as if approved.
   */
  #combine(g: Generation, outcome: (approved: boolean) => Outcome, approved: boolean): Decision {
    const o = outcome(approved);
    if (o.failure !== undefined) return freeze({ effect: 'deny', policies: [], errors: [...o.failure] });
    const effectOf = (id: string) => g.set.byId.get(id)?.effect;
    // Cedar skips a policy whose evaluation errors; for a forbid that would fail open, so deny instead.
    const erroredForbids = o.erroredIds.filter((id) => effectOf(id) === 'forbid');
    if (erroredForbids.length > 0)
      return freeze({ effect: 'deny', policies: erroredForbids, errors: [...o.errors] });
    const forbids = o.reasons.filter((id) => effectOf(id) === 'forbid');
    const permits = o.reasons.filter((id) => effectOf(id) === 'permit');
    if (forbids.length === 0 && permits.length > 0)
      return freeze({ effect: 'allow', policies: permits, errors: [...o.errors] });
    if (!approved && forbids.length > 0 && forbids.every((id) => g.set.byId.get(id)?.approval === true)) {
      // Only approval gates deny: would the call be allowed once approved?
      const again = outcome(true);
      const againForbids = again.reasons.filter((id) => effectOf(id) === 'forbid');
      const againPermits = again.reasons.filter((id) => effectOf(id) === 'permit');
      if (
        again.failure === undefined &&
        again.erroredIds.length === 0 &&
        againForbids.length === 0 &&
        againPermits.length > 0
      ) {
        return freeze({
          effect: 'approval_required',
          policies: [...forbids, ...againPermits],
          errors: [...o.errors],
        });
      }
    }
    return freeze({ effect: 'deny', policies: forbids, errors: [...o.errors] });
  }
}

function merge(a: Outcome, b: Outcome): Outcome {
  if (a.failure !== undefined) return a;
  if (b.failure !== undefined) return b;
  return {
    reasons: [...a.reasons, ...b.reasons],
    errors: [...a.errors, ...b.errors],
    erroredIds: [...a.erroredIds, ...b.erroredIds],
  };
}
