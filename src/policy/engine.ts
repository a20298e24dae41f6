/**
 * The policy decision point: builds Cedar entities from the principal and tool attributes, asks Cedar
 * (pre-parsed policy sets, stateful wasm API), and maps the answer to allow / deny / approval_required.
 * Decisions that cannot depend on per-call context (arguments, time, what the grant has read) are cached
 * per (policy generation, principal, action, server, tool, approval state, and the grant only when a policy
 * reads it); per-call policies run as compiled JS closures (compile.ts), with Cedar as the fallback.
 * Design: docs/design/policy-fast-path.md.
 */
import type { Principal } from '../auth/principal.ts';
import { CappedMap } from '../util/bounded.ts';
import { sha256 } from '../util/hash.ts';
import { type AuthorizationAnswer, cedar, type PolicyJson, type StatefulAuthorizationCall } from './cedar.ts';
import { buildStore, type CompiledPolicy, compilePolicy, type EvalEnv, EvaluationError } from './compile.ts';
import { contextFieldsRead, type LoadedPolicy, loadPolicySet, type PolicySet } from './load.ts';
import {
  ACTION_RESOURCE,
  CallStore,
  callWellFormed,
  cedarRequest,
  cedarSafe,
  type DecisionRequest,
  evalEnv,
  type RoleMap,
  requestEntities,
  requestTime,
  type ToolAttributes,
} from './request.ts';
import { NAMESPACE } from './schema.ts';

export {
  argsToNumbers,
  argsToTags,
  type DecisionRequest,
  type PolicyAction,
  type RoleMap,
  resourceEntityId,
  type ToolAttributes,
} from './request.ts';

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

/** Per-call options of {@link PolicyEngine.decide} and {@link PolicyEngine.mayAllow}. */
export interface DecideOptions {
  /** The name is not one an upstream offers: use the small, separate cache for such names. */
  readonly transient?: boolean;
}

/** Decisions kept for names no upstream offers. */
const TRANSIENT_ENTRIES = 1024;

/** Options of a {@link PolicyEngine}. */
export interface PolicyEngineOptions {
  readonly roles?: RoleMap;
  /** Cached decisions kept before the cache is cleared; default 50,000 (keys are at most 512 characters: a bound of about 30 MB). */
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

const UNPARSABLE_MESSAGE = ['the request contains a lone UTF-16 surrogate, which Cedar cannot parse'];
/** A request Cedar must not be given (see cedarSafe): a failure, so a deny. */
const UNPARSABLE: Outcome = {
  reasons: [],
  errors: UNPARSABLE_MESSAGE,
  erroredIds: [],
  failure: UNPARSABLE_MESSAGE,
};

/** A per-call policy whose scope and conditions the JS evaluator implements. */
interface FastPolicy {
  readonly id: string;
  readonly condition: (env: EvalEnv) => boolean;
}

/**
 * What the engine keeps per cache key (principal, grant when policies read it, action, server, tool,
 * approval, tool attributes). Only the policies whose scope matches the key are ever evaluated for it.
 */
interface KeyEntry {
  /** Pre-parsed set of the static policies whose scope matches; undefined: none match. */
  readonly staticId: string | undefined;
  /** Ids of the per-call (argument, time, taint) policies whose scope matches. */
  readonly applicable: readonly string[];
  /** Those the JS evaluator decides on each call. */
  readonly fast: readonly FastPolicy[];
  /** Pre-parsed set of the applicable per-call policies Cedar must evaluate on each call; undefined: none. */
  readonly residualId: string | undefined;
  /** Pre-parsed set of every applicable per-call policy, for calls the JS evaluator hands back; made on first use. */
  allId: string | undefined;
  /** Static outcome for approved = false / true, filled lazily. */
  readonly statics: [Outcome | undefined, Outcome | undefined];
}

/** One policy, with what the engine needs to route it. */
interface Prepared {
  readonly policy: LoadedPolicy;
  readonly compiled: CompiledPolicy;
  /** Reads per-call context (`dynamicFields` non-empty). */
  readonly dynamic: boolean;
  /**
   * Per-call policy the JS evaluator decides: its conditions compiled, and its whole scope too (the scope
   * filter is then exact, and the closure checks conditions only). Undefined: Cedar evaluates it.
   */
  readonly fast: FastPolicy | undefined;
}

/** The policies whose action constraint can hold for one action, indexed for the scope filter. */
interface ActionIndex {
  /** Policies scoped `principal == Gatehouse::Agent::"<id>"`, by agent id. */
  readonly byAgent: ReadonlyMap<string, readonly Prepared[]>;
  /** Every other policy. */
  readonly rest: readonly Prepared[];
}

interface Generation {
  readonly id: number;
  readonly set: PolicySet;
  /** The whole set (decideUncached, and requests only Cedar may answer). */
  readonly fullId: string;
  /** Policies that read no per-call context; undefined when there are none. */
  readonly staticId: string | undefined;
  /** Policies that read per-call context; undefined when there are none. */
  readonly dynamicId: string | undefined;
  readonly byAction: ReadonlyMap<string, ActionIndex>;
  /**
   * Some policy reads `context.grant`: decisions are then kept per grant. Otherwise a decision cannot
   * depend on the grant (no other expression reaches the grant id), and every grant of the same principal
   * shares it.
   */
  readonly grantInKey: boolean;
  /** Pre-parsed subsets, by their sorted ids. */
  readonly subsets: Map<string, string>;
  /** Policies held by all subsets together (wasm memory budget). */
  subsetPolicies: number;
  readonly cache: Map<string, Decision | KeyEntry>;
  /**
   * Decisions on names no upstream offers (a client's guesses): kept apart and few, so a stream of
   * distinct made-up names can neither evict real decisions nor grow memory.
   */
  readonly transient: Map<string, Decision | KeyEntry>;
  hits: number;
  misses: number;
  dynamic: number;
}

/** Distinct pre-parsed subsets kept per generation; beyond it keys use the generation's larger sets. */
const MAX_SUBSETS = 1000;
/** Policies held by one generation's subsets together: bounds the wasm memory they take. */
const MAX_SUBSET_POLICIES = 20_000;
/** Cache keys longer than this are replaced by their hash: principal, tool and server names come from clients. */
const MAX_KEY_CHARS = 512;

let engineSeq = 0;

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

function cacheKey(g: Generation, req: DecisionRequest): string {
  const k = `${principalCacheKey(req.principal)}\u0000${g.grantInKey ? req.grantId : ''}\u0000${req.action}\u0000${req.server}\u0000${req.tool}\u0000${req.approved === true ? 1 : 0}\u0000${attrCacheKey(req.toolAttrs)}`;
  // A short key starts with the principal's JSON ("["), a hashed one with "#": the two never collide.
  return k.length <= MAX_KEY_CHARS ? k : `#${sha256(k, 'base64')}`;
}

/**
 * The request the static policies of a key are evaluated with: no arguments, read labels or time (static
 * policies cannot read them), and no grant unless some policy reads it. The cached outcome therefore
 * depends on the key alone, never on the first call's arguments.
 */
function staticRequest(g: Generation, req: DecisionRequest): DecisionRequest {
  return { ...req, args: undefined, read: undefined, time: 0, grantId: g.grantInKey ? req.grantId : '' };
}

/** Freezes a decision and its arrays, so a cached one can be handed out many times. */
function freeze(d: Decision): Decision {
  Object.freeze(d.policies);
  Object.freeze(d.errors);
  return Object.freeze(d);
}

/** The agent id of a `principal == Gatehouse::Agent::"<id>"` scope, else undefined. */
function agentScope(json: PolicyJson): string | undefined {
  const c = json.principal;
  if (c.op !== '==' || !('entity' in c)) return undefined;
  const e = '__entity' in c.entity ? c.entity.__entity : c.entity;
  return e.type === `${NAMESPACE}::Agent` ? e.id : undefined;
}

/**
 * Evaluates requests against one policy set at a time. Deny by default: no satisfied permit, or any
 * satisfied forbid, denies. `reload` swaps the policy set atomically: the new set is loaded, validated
 * and pre-parsed first, and the engine keeps the old one if anything fails.
 *
 * Fast path (docs/design/policy-fast-path.md): per cache key, a JS scope filter picks the policies that can
 * apply; Cedar evaluates the static ones once (a small pre-parsed subset) and the result is cached; the
 * per-call ones are evaluated on each call by compiled JS closures, and by Cedar whenever the closures
 * cannot decide (an unsupported construct, an evaluation error, input Cedar cannot parse).
 */
export class PolicyEngine {
  readonly #instance = ++engineSeq;
  readonly #roles: RoleMap;
  readonly #maxCache: number;
  readonly #useCache: boolean;
  #gen: Generation;

  constructor(set: PolicySet, options: PolicyEngineOptions = {}) {
    this.#roles = options.roles ?? {};
    this.#maxCache = options.maxCacheEntries ?? 50_000;
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
  decide(req: DecisionRequest, opts: DecideOptions = {}): Decision {
    const g = this.#gen;
    const cache = opts.transient === true ? g.transient : g.cache;
    // Per-call parts the fast path does not model exactly (lone surrogates, a non-integer time): the slow
    // path decides, never the cache (it denies ill-formed strings without handing them to Cedar).
    if (!this.#useCache || !callWellFormed(req)) return this.#full(g, req);
    const key = cacheKey(g, req);
    const hit = cache.get(key);
    if (hit !== undefined && 'effect' in hit) {
      g.hits++;
      return hit;
    }
    if (hit !== undefined) {
      g.dynamic++;
      return this.#dynamic(g, hit, req);
    }
    g.misses++;
    const entry = this.#classify(g, req);
    if (entry === undefined) return this.#full(g, req);
    if (cache.size >= this.#maxCache) cache.clear();
    if (entry.applicable.length > 0) {
      cache.set(key, entry);
      return this.#dynamic(g, entry, req);
    }
    const d = this.#combine(g, (approved) => this.#statics(g, entry, req, approved), req.approved === true);
    cache.set(key, d);
    return d;
  }

  /**
   * Whether the request could be allowed for some call context: the decision without arguments is
   * allow or approval_required, or it depends on per-call context (arguments, time, what was read), so
   * some arguments may be allowed. Lists show such tools; task grants may include them.
   */
  mayAllow(req: DecisionRequest, opts: DecideOptions = {}): boolean {
    const bare: DecisionRequest = { ...req, args: undefined, approved: false };
    const d = this.decide(bare, opts);
    if (d.effect !== 'deny') return true;
    if (!this.#useCache) return true; // cannot tell without the cache's classification: let per-call decide
    const g = this.#gen;
    const entry = (opts.transient === true ? g.transient : g.cache).get(cacheKey(g, bare));
    // Not classified (only Cedar could answer it): a request Cedar cannot parse is always denied;
    // anything else may depend on per-call context, so be conservative.
    if (entry === undefined) return cedarSafe(bare, this.#roles);
    if ('effect' in entry) return false; // no per-call context can change a static deny
    const byId = g.set.byId;
    const isPermit = (id: string) => byId.get(id)?.effect === 'permit';
    // A static, non-approval forbid denies whatever the arguments.
    const absolute = d.policies.some((id) => {
      const p = byId.get(id);
      return p !== undefined && p.effect === 'forbid' && p.dynamicFields.length === 0 && !p.approval;
    });
    if (absolute) return false;
    // Some permit must be able to hold: an applicable dynamic one, or a static one satisfied with or
    // without an approval (a deny lists only its forbids, so both approval states are asked: a call an
    // approval would release is one that may be allowed).
    if (entry.applicable.some(isPermit)) return true;
    return (
      this.#statics(g, entry, bare, false).reasons.some(isPermit) ||
      this.#statics(g, entry, bare, true).reasons.some(isPermit)
    );
  }

  /** Evaluation without the cache or the static/dynamic split (benchmarks, tests): the whole set, every call. */
  decideUncached(req: DecisionRequest): Decision {
    return this.#full(this.#gen, req);
  }

  #full(g: Generation, req: DecisionRequest): Decision {
    return this.#combine(g, (approved) => this.#run(g.fullId, req, approved), req.approved === true);
  }

  /**
   * The first request of a key: which policies can apply to it at all (scope, decided in JS on the same
   * entities Cedar gets), split into static and per-call ones. Undefined when Cedar must see the request
   * itself (a string or value the JS side does not model).
   */
  #classify(g: Generation, req: DecisionRequest): KeyEntry | undefined {
    const sreq = staticRequest(g, req);
    const store = buildStore(requestEntities(sreq, this.#roles));
    if (store === undefined) return undefined;
    const env = evalEnv(sreq, store, 0, false);
    const index = g.byAction.get(req.action);
    const staticIds: string[] = [];
    const applicable: string[] = [];
    const fast: FastPolicy[] = [];
    const residual: string[] = [];
    const consider = (p: Prepared): void => {
      const { compiled } = p;
      if (compiled.scope !== undefined && !compiled.scope(env)) return;
      if (!p.dynamic) {
        staticIds.push(p.policy.id);
        return;
      }
      applicable.push(p.policy.id);
      if (p.fast !== undefined) fast.push(p.fast);
      else residual.push(p.policy.id);
    };
    for (const p of index?.byAgent.get(req.principal.agent) ?? []) consider(p);
    for (const p of index?.rest ?? []) consider(p);
    const residualId = this.#subset(g, residual, g.dynamicId);
    return {
      staticId: this.#subset(g, staticIds, g.staticId),
      applicable,
      fast,
      residualId,
      allId: fast.length === 0 ? residualId : undefined,
      statics: [undefined, undefined],
    };
  }

  /** The key's static outcome, evaluated by Cedar once per approval state. */
  #statics(g: Generation, entry: KeyEntry, req: DecisionRequest, approved: boolean): Outcome {
    const i = approved ? 1 : 0;
    let st = entry.statics[i];
    if (st === undefined) {
      st = this.#run(entry.staticId, staticRequest(g, req), approved);
      entry.statics[i] = st;
    }
    return st;
  }

  /** A request of a key where per-call policies apply: the cached static outcome plus those policies. */
  #dynamic(g: Generation, entry: KeyEntry, req: DecisionRequest): Decision {
    // One time for the whole decision, whichever evaluator reads it.
    const call = req.time === undefined ? { ...req, time: requestTime(req) } : req;
    if (entry.fast.length > 0) {
      const store = new CallStore(call, this.#roles);
      const time = requestTime(call);
      try {
        return this.#combine(
          g,
          (approved) => {
            const st = this.#statics(g, entry, call, approved);
            const env = evalEnv(call, store, time, approved);
            const reasons: string[] = [];
            for (const p of entry.fast) if (p.condition(env)) reasons.push(p.id);
            const fast: Outcome = { reasons, errors: [], erroredIds: [] };
            return merge(merge(st, fast), this.#run(entry.residualId, call, approved));
          },
          call.approved === true,
        );
      } catch (err) {
        // Cedar reports an error here (or sees something the JS side does not model): ask Cedar, for its
        // exact outcome and error messages.
        if (!(err instanceof EvaluationError)) throw err;
      }
    }
    if (entry.allId === undefined) entry.allId = this.#subset(g, entry.applicable, g.dynamicId);
    const allId = entry.allId;
    return this.#combine(
      g,
      (approved) => merge(this.#statics(g, entry, call, approved), this.#run(allId, call, approved)),
      call.approved === true,
    );
  }

  /**
   * A pre-parsed set holding exactly these policies: undefined when there are none; `fallback` (a superset
   * in which the others never match this key) when the subset budget is spent.
   */
  #subset(g: Generation, ids: readonly string[], fallback: string | undefined): string | undefined {
    if (ids.length === 0) return undefined;
    const name = [...ids].sort().join('\u0000');
    const existing = g.subsets.get(name);
    if (existing !== undefined) return existing;
    if (g.subsets.size >= MAX_SUBSETS || g.subsetPolicies + ids.length > MAX_SUBSET_POLICIES) return fallback;
    const staticPolicies: Record<string, string> = {};
    for (const id of ids) {
      const p = g.set.byId.get(id);
      if (p === undefined) return fallback;
      staticPolicies[id] = p.text;
    }
    const psetId = `${g.fullId}-s${g.subsets.size}`;
    if (cedar.preparsePolicySet(psetId, { staticPolicies }).type === 'failure') return fallback;
    g.subsets.set(name, psetId);
    g.subsetPolicies += ids.length;
    return psetId;
  }

  #prepare(set: PolicySet, id: number): Generation {
    // Two slots per engine: the wasm side keeps pre-parsed sets by name and has no delete, so alternating
    // names bounds memory; decide() is synchronous, so nothing still uses the slot being overwritten.
    const slot = `gatehouse-${this.#instance}-${id % 2}`;
    const all: Record<string, string> = {};
    const statics: Record<string, string> = {};
    const dynamics: Record<string, string> = {};
    const prepared: Prepared[] = [];
    let grantInKey = false;
    for (const p of set.policies) {
      all[p.id] = p.text;
      const dynamic = p.dynamicFields.length > 0;
      if (dynamic) dynamics[p.id] = p.text;
      else statics[p.id] = p.text;
      const compiled = compilePolicy(p.id, p.json);
      const { condition } = compiled;
      const exact = compiled.scope !== undefined && compiled.action !== undefined;
      const fast = dynamic && exact && condition !== undefined ? { id: p.id, condition } : undefined;
      prepared.push({ policy: p, compiled, dynamic, fast });
      if (contextFieldsRead(p.json).has('grant')) grantInKey = true;
    }
    const byAction = new Map<string, ActionIndex>();
    for (const action of Object.keys(ACTION_RESOURCE)) {
      const byAgent = new Map<string, Prepared[]>();
      const rest: Prepared[] = [];
      for (const p of prepared) {
        // An action constraint that did not compile keeps the policy: Cedar decides it.
        if (p.compiled.action !== undefined && !p.compiled.action(action)) continue;
        const agent = agentScope(p.policy.json);
        if (agent === undefined) rest.push(p);
        else byAgent.set(agent, [...(byAgent.get(agent) ?? []), p]);
      }
      byAction.set(action, { byAgent, rest });
    }
    const prepare = (name: string, staticPolicies: Record<string, string>): string | undefined => {
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
      dynamicId: prepare(`${slot}-dynamic`, dynamics),
      byAction,
      grantInKey,
      subsets: new Map(),
      subsetPolicies: 0,
      cache: new Map(),
      transient: new CappedMap(TRANSIENT_ENTRIES),
      hits: 0,
      misses: 0,
      dynamic: 0,
    };
  }

  /** One Cedar call against a pre-parsed set; an absent set satisfies nothing. */
  #run(psetId: string | undefined, req: DecisionRequest, approved: boolean): Outcome {
    if (psetId === undefined) return EMPTY;
    if (!cedarSafe(req, this.#roles)) return UNPARSABLE;
    const call = cedarRequest(req, approved);
    return authorize({
      principal: call.principal,
      action: call.action,
      resource: call.resource,
      context: call.context,
      preparsedPolicySetId: psetId,
      entities: requestEntities(req, this.#roles),
    });
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

/** One stateful Cedar call, as an {@link Outcome}. */
function authorize(call: StatefulAuthorizationCall): Outcome {
  let ans: AuthorizationAnswer;
  try {
    ans = cedar.statefulIsAuthorized(call);
  } catch (err) {
    // The wasm glue throws when it cannot parse the request (e.g. a lone surrogate in a string): deny.
    const msgs = [`cannot evaluate the request: ${err instanceof Error ? err.message : String(err)}`];
    return { reasons: [], errors: msgs, erroredIds: [], failure: msgs };
  }
  if (ans.type === 'failure') {
    const msgs: string[] = [];
    for (const e of ans.errors) msgs.push(e.message);
    return { reasons: [], errors: msgs, erroredIds: [], failure: msgs };
  }
  const { diagnostics } = ans.response;
  const errors: string[] = [];
  const erroredIds: string[] = [];
  for (const e of diagnostics.errors) {
    errors.push(`${e.policyId}: ${e.error.message}`);
    erroredIds.push(e.policyId);
  }
  return { reasons: diagnostics.reason, errors, erroredIds };
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
