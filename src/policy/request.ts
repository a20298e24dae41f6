/**
 * One authorization request as Cedar sees it (entities JSON and context) and as the JS evaluator sees it
 * (the same entities parsed into a store, the same context as a record). Both are built here, from the same
 * data, so the fast path cannot drift from what Cedar is asked.
 */

import type { Principal } from '../auth/principal.ts';
import type { EntityJson, EntityUidJson } from './cedar.ts';
import {
  buildStore,
  CedarRecord,
  CedarSet,
  type EntityStore,
  EntityUid,
  type EvalEnv,
  EvaluationError,
  type StoredEntity,
  taggedEntity,
  type Value,
  wellFormed,
} from './compile.ts';
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

/** Role memberships, by agent id and by user id. */
export interface RoleMap {
  readonly agents?: Readonly<Record<string, readonly string[]>>;
  readonly users?: Readonly<Record<string, readonly string[]>>;
}

/** Cedar resource entity type per action. */
export const ACTION_RESOURCE: Readonly<Record<PolicyAction, string>> = {
  call_tool: `${NAMESPACE}::Tool`,
  list_tools: `${NAMESPACE}::Tool`,
  read_resource: `${NAMESPACE}::Resource`,
  get_prompt: `${NAMESPACE}::Prompt`,
};

/** A `Gatehouse::<type>` entity uid. */
export function uid(type: string, id: string): EntityUidJson {
  return { type: `${NAMESPACE}::${type}`, id };
}

/** Entity id of a tool, resource or prompt: `<server>__<name>`, as the gateway exposes names. */
export function resourceEntityId(server: string, name: string): string {
  return `${server}__${name}`;
}

/**
 * Turns call arguments into `Args` tags: strings as-is, other values as JSON text. The record has no
 * prototype, so an argument named `__proto__` is a tag like any other instead of silently vanishing.
 */
export function argsToTags(args: unknown): Record<string, string> {
  const tags: Record<string, string> = Object.create(null);
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return tags;
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined) continue;
    tags[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return tags;
}

/** Integer call arguments (within Cedar's 64-bit Long range) as `Numbers` tags. */
export function argsToNumbers(args: unknown): Record<string, number> {
  const tags: Record<string, number> = Object.create(null);
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return tags;
  for (const [k, v] of Object.entries(args)) {
    if (typeof v === 'number' && Number.isSafeInteger(v)) tags[k] = v;
  }
  return tags;
}

/** `context.time`: the request's time, or now, in whole epoch seconds. */
export function requestTime(req: DecisionRequest): number {
  return Math.floor(req.time ?? Date.now() / 1000);
}

/**
 * Whether the per-call parts of the request (grant, arguments, read labels, time) are ones the fast path
 * models exactly: no lone UTF-16 surrogate (see {@link cedarSafe}) and a `context.time` that is a safe
 * integer. A request failing this takes the slow path (the whole set, where {@link cedarSafe} applies), so
 * the fast path never decides something Cedar would refuse to evaluate.
 */
export function callWellFormed(req: DecisionRequest): boolean {
  if (req.time !== undefined && !Number.isSafeInteger(Math.floor(req.time))) return false;
  return callStringsSafe(req);
}

/**
 * Whether every string of the request (principal, tool, server, grant, tool attributes, roles, argument
 * names and string values, read labels) is well-formed UTF-16. The wasm glue passes requests as JSON text;
 * Cedar's parser rejects a lone surrogate by throwing through the wasm frames, and each such throw leaks
 * wasm stack: after about a thousand, the instance fails with "memory access out of bounds" for every later
 * call. A request failing this must never reach Cedar; it is denied without asking.
 */
export function cedarSafe(req: DecisionRequest, roles: RoleMap): boolean {
  const p = req.principal;
  const all = (xs: Iterable<unknown>): boolean => {
    for (const x of xs) if (!wellFormed(x)) return false;
    return true;
  };
  const roleNames = (
    table: Readonly<Record<string, readonly string[]>> | undefined,
    id: string | undefined,
  ) => id === undefined || table === undefined || !Object.hasOwn(table, id) || all(table[id] ?? []);
  const a = req.toolAttrs;
  return (
    wellFormed(p.agent) &&
    (p.user === undefined || wellFormed(p.user)) &&
    (p.tenant === undefined || wellFormed(p.tenant)) &&
    wellFormed(p.issuer) &&
    wellFormed(p.authMethod) &&
    all(p.actors) &&
    all(p.scopes) &&
    all(p.groups ?? []) &&
    wellFormed(req.server) &&
    wellFormed(req.tool) &&
    (a === undefined ||
      ((a.risk === undefined || wellFormed(a.risk)) &&
        (a.sideEffect === undefined || wellFormed(a.sideEffect)) &&
        (a.owner === undefined || wellFormed(a.owner)))) &&
    roleNames(roles.agents, p.agent) &&
    roleNames(roles.users, p.user) &&
    callStringsSafe(req)
  );
}

/** The per-call strings (grant, argument names and string values, read labels) are well-formed. */
function callStringsSafe(req: DecisionRequest): boolean {
  if (!wellFormed(req.grantId)) return false;
  if (req.read !== undefined) for (const l of req.read) if (!wellFormed(l)) return false;
  const a = req.args;
  if (a !== null && typeof a === 'object' && !Array.isArray(a)) {
    // Non-string values become JSON text, which JSON.stringify always writes well-formed.
    for (const [k, v] of Object.entries(a))
      if (!wellFormed(k) || (typeof v === 'string' && !wellFormed(v))) return false;
  }
  return true;
}

/** Cedar's request: principal, action, resource uids and the context JSON. */
export function cedarRequest(req: DecisionRequest, approved: boolean) {
  return {
    principal: uid('Agent', req.principal.agent),
    action: uid('Action', req.action),
    resource: { type: ACTION_RESOURCE[req.action], id: resourceEntityId(req.server, req.tool) },
    context: {
      grant: { __entity: { type: `${NAMESPACE}::Grant`, id: req.grantId } },
      args: { __entity: { type: `${NAMESPACE}::Args`, id: 'call' } },
      numbers: { __entity: { type: `${NAMESPACE}::Numbers`, id: 'call' } },
      approved,
      time: requestTime(req),
      read: [...(req.read ?? [])],
    },
  };
}

const ARGS = new EntityUid(`${NAMESPACE}::Args`, 'call');
const NUMBERS = new EntityUid(`${NAMESPACE}::Numbers`, 'call');

/**
 * The entity store of one call, built lazily: argument rules mostly read only `context.args` /
 * `context.numbers`, so those two entities are made directly from the arguments, and the rest of
 * {@link requestEntities} is parsed only if an expression reaches it. Same data as {@link buildStore} of
 * {@link requestEntities}; the request must pass {@link callWellFormed}.
 */
export class CallStore implements EntityStore {
  #args: StoredEntity | undefined;
  #numbers: StoredEntity | undefined;
  #rest: EntityStore | undefined;

  constructor(
    private readonly req: DecisionRequest,
    private readonly roles: RoleMap,
  ) {}

  get(key: string): StoredEntity | undefined {
    if (key === ARGS.key) {
      this.#args ??= taggedEntity(argsToTags(this.req.args));
      return this.#args;
    }
    if (key === NUMBERS.key) {
      this.#numbers ??= taggedEntity(argsToNumbers(this.req.args));
      return this.#numbers;
    }
    // Cedar could not parse what the JS side cannot model: hand the call back to Cedar.
    this.#rest ??= buildStore(requestEntities(this.req, this.roles)) ?? fail();
    return this.#rest.get(key);
  }
}

function fail(): never {
  throw new EvaluationError('request entities the JS evaluator does not model');
}

/**
 * The JS evaluator's view of {@link cedarRequest}: same uids, same context fields. `entities` must be
 * {@link buildStore} of {@link requestEntities} for the same request; `time` {@link requestTime} of it.
 */
export function evalEnv(
  req: DecisionRequest,
  entities: EntityStore,
  time: number,
  approved: boolean,
): EvalEnv {
  return {
    principal: new EntityUid(`${NAMESPACE}::Agent`, req.principal.agent),
    action: new EntityUid(`${NAMESPACE}::Action`, req.action),
    resource: new EntityUid(ACTION_RESOURCE[req.action], resourceEntityId(req.server, req.tool)),
    context: new CedarRecord(
      new Map<string, Value>([
        ['grant', new EntityUid(`${NAMESPACE}::Grant`, req.grantId)],
        ['args', ARGS],
        ['numbers', NUMBERS],
        ['approved', approved],
        ['time', BigInt(time)],
        ['read', new CedarSet([...(req.read ?? [])])],
      ]),
    ),
    entities,
  };
}

/** The entities of one request: principal (agent, user, tenant, roles), resource and its server, grant, arguments. */
export function requestEntities(req: DecisionRequest, roles: RoleMap): EntityJson[] {
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
        ...roleUids([...new Set([...(rolesOf(roles.users, p.user) ?? []), ...(p.groups ?? [])])]),
      ],
    });
    agentAttrs['user'] = { __entity: { type: `${NAMESPACE}::User`, id: p.user } };
  }
  entities.push({
    uid: uid('Agent', p.agent),
    attrs: agentAttrs,
    parents: [...tenantParents, ...roleUids(rolesOf(roles.agents, p.agent))],
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
