/**
 * A JavaScript evaluator for the part of Cedar's expression language Gatehouse policies use, compiled once
 * per policy generation from each policy's JSON form (EST). The engine uses it for two things only:
 *
 * - the scope (`principal`, `action`, `resource` constraints) of every policy, to pick the policies that can
 *   apply to a request before asking Cedar about them;
 * - the conditions of per-call (argument, time, taint) policies, evaluated on every call instead of a wasm
 *   round trip.
 *
 * It mirrors the Cedar 4.x evaluator (cedar-policy-core `evaluator.rs`) operator by operator and reports an
 * evaluation error wherever Cedar would; it never produces Cedar's error messages: on any error the engine
 * asks Cedar again, so errors (and their messages) always come from Cedar. Anything it does not support
 * (extension functions, templates' slots, Long literals outside ±(2^53-1), unknown node shapes) makes the
 * policy {@link Unsupported}, and the engine evaluates that policy with Cedar on every call. Exactness is
 * checked by test/policy/differential.test.ts, which runs random requests through both.
 */
import type { EntityJson, EntityUidJson, PolicyJson } from './cedar.ts';
import { NAMESPACE } from './schema.ts';

/** An entity reference: Cedar's `EntityUID`. Two references are equal when type and id are. */
export class EntityUid {
  constructor(
    readonly type: string,
    readonly id: string,
  ) {}

  /** Store key; entity type names never contain NUL, so the split is unambiguous. */
  get key(): string {
    return `${this.type}\u0000${this.id}`;
  }
}

/** A Cedar set. Duplicates may be kept: every operation on it is by membership. */
export class CedarSet {
  constructor(readonly items: readonly Value[]) {}
}

/** A Cedar record. */
export class CedarRecord {
  constructor(readonly fields: ReadonlyMap<string, Value>) {}
}

/** A Cedar value: Bool, Long (as bigint, always within i64), String, entity, set or record. */
export type Value = boolean | bigint | string | EntityUid | CedarSet | CedarRecord;

/** One entity of the request, as Cedar sees it after parsing the entities JSON. */
export interface StoredEntity {
  readonly attrs: ReadonlyMap<string, Value>;
  readonly tags: ReadonlyMap<string, Value>;
  /** Keys ({@link EntityUid.key}) of every ancestor: the transitive closure of `parents`, as Cedar computes it. */
  readonly ancestors: ReadonlySet<string>;
}

/** Entities by {@link EntityUid.key}; a `ReadonlyMap` is one. */
export interface EntityStore {
  get(key: string): StoredEntity | undefined;
}

/** Everything an expression can read. */
export interface EvalEnv {
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: CedarRecord;
  readonly entities: EntityStore;
}

/**
 * Cedar would report an evaluation error here. Carries no Cedar message on purpose: callers re-evaluate
 * with Cedar to get the real one.
 */
export class EvaluationError extends Error {
  override readonly name = 'EvaluationError';
}

/** The policy uses a construct this evaluator does not implement; Cedar must evaluate it. */
export class Unsupported extends Error {
  override readonly name = 'Unsupported';
}

type Fn = (env: EvalEnv) => Value;

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Whether a string survives the trip into Cedar: the wasm API passes requests as JSON text, and a lone
 * UTF-16 surrogate makes the whole request fail to parse (so only Cedar may answer such a request).
 */
export function wellFormed(s: unknown): s is string {
  return typeof s === 'string' && !LONE_SURROGATE.test(s);
}

function fail(what: string): never {
  throw new EvaluationError(what);
}

function unsupported(what: string): never {
  throw new Unsupported(what);
}

function asBool(v: Value): boolean {
  return typeof v === 'boolean' ? v : fail('type error: expected Bool');
}

function asLong(v: Value): bigint {
  return typeof v === 'bigint' ? v : fail('type error: expected Long');
}

function asString(v: Value): string {
  return typeof v === 'string' ? v : fail('type error: expected String');
}

function asEntity(v: Value): EntityUid {
  return v instanceof EntityUid ? v : fail('type error: expected an entity');
}

function asSet(v: Value): CedarSet {
  return v instanceof CedarSet ? v : fail('type error: expected a Set');
}

/** Cedar's checked i64 arithmetic: overflow is an evaluation error, never a wrap. */
function checked(n: bigint): bigint {
  return n < I64_MIN || n > I64_MAX ? fail('integer overflow') : n;
}

/** Cedar's `==`: structural, sets compared as sets, values of different types unequal (never an error). */
export function valueEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (a instanceof EntityUid) return b instanceof EntityUid && a.type === b.type && a.id === b.id;
  if (a instanceof CedarSet) return b instanceof CedarSet && subsetOf(a, b) && subsetOf(b, a);
  if (!(b instanceof CedarRecord) || a.fields.size !== b.fields.size) return false;
  for (const [k, v] of a.fields) {
    const w = b.fields.get(k);
    if (w === undefined || !valueEquals(v, w)) return false;
  }
  return true;
}

function setHas(s: CedarSet, v: Value): boolean {
  for (const item of s.items) if (valueEquals(item, v)) return true;
  return false;
}

function subsetOf(a: CedarSet, b: CedarSet): boolean {
  for (const item of a.items) if (!setHas(b, item)) return false;
  return true;
}

/** Cedar's `in`: equal, or an ancestor of an entity present in the store (a missing entity has none). */
function entityIn(env: EvalEnv, child: EntityUid, parent: EntityUid): boolean {
  if (child.type === parent.type && child.id === parent.id) return true;
  return env.entities.get(child.key)?.ancestors.has(parent.key) === true;
}

/** `left in right`, right an entity or a set of entities (every element must be one, or it is an error). */
function evalIn(env: EvalEnv, left: Value, right: Value): boolean {
  const child = asEntity(left);
  if (right instanceof EntityUid) return entityIn(env, child, right);
  if (!(right instanceof CedarSet)) fail('type error: `in` needs an entity or a set of entities');
  const parents = right.items.map(asEntity);
  return parents.some((p) => entityIn(env, child, p));
}

function getAttr(env: EvalEnv, v: Value, attr: string): Value {
  if (v instanceof CedarRecord) return v.fields.get(attr) ?? fail(`record has no attribute ${attr}`);
  if (v instanceof EntityUid) {
    const e = env.entities.get(v.key) ?? fail('entity does not exist');
    return e.attrs.get(attr) ?? fail(`entity has no attribute ${attr}`);
  }
  return fail('type error: expected a record or an entity');
}

function hasAttr(env: EvalEnv, v: Value, attr: string): boolean {
  if (v instanceof CedarRecord) return v.fields.has(attr);
  // `has` on an entity missing from the store is false, not an error.
  if (v instanceof EntityUid) return env.entities.get(v.key)?.attrs.has(attr) === true;
  return fail('type error: expected a record or an entity');
}

/** Cedar's `like`: `*` matches any run of characters (Unicode scalar values), everything else itself. */
function likeMatch(pattern: readonly (string | null)[], text: string): boolean {
  // Same greedy backtracking as cedar-policy-core's `wildcard_match`; `null` is the wildcard.
  const t = Array.from(text);
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (i < t.length) {
    if (j < pattern.length && pattern[j] === null) {
      star = j++;
      mark = i;
    } else if (j < pattern.length && pattern[j] === t[i]) {
      i++;
      j++;
    } else if (star >= 0) {
      j = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (j < pattern.length && pattern[j] === null) j++;
  return j === pattern.length;
}

/** A JSON value (entity attribute, tag, policy literal) as Cedar parses it, without a schema. */
export function fromJson(v: unknown): Value {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') {
    // Long literals reach us as JS numbers; beyond 2^53 the exact value is already lost, so leave it to Cedar.
    if (!Number.isSafeInteger(v)) unsupported('number outside the safe integer range');
    return BigInt(v);
  }
  if (typeof v === 'bigint') return v >= I64_MIN && v <= I64_MAX ? v : unsupported('Long out of range');
  if (Array.isArray(v)) return new CedarSet(v.map(fromJson));
  if (v !== null && typeof v === 'object') {
    const rec = v as Record<string, unknown>;
    if ('__extn' in rec) unsupported('extension value');
    if ('__entity' in rec) {
      const e = rec['__entity'] as { type?: unknown; id?: unknown } | null;
      if (Object.keys(rec).length !== 1 || e === null || typeof e !== 'object')
        unsupported('malformed entity');
      if (typeof e.type !== 'string' || typeof e.id !== 'string') unsupported('malformed entity');
      return new EntityUid(e.type, e.id);
    }
    const fields = new Map<string, Value>();
    for (const [k, x] of Object.entries(rec)) fields.set(k, fromJson(x));
    return new CedarRecord(fields);
  }
  return unsupported(`value ${String(v)}`);
}

function uidOf(u: EntityUidJson): EntityUid {
  const t = '__entity' in u ? u.__entity : u;
  return new EntityUid(t.type, t.id);
}

const NO_ATTRS: ReadonlyMap<string, Value> = new Map();
const NO_ANCESTORS: ReadonlySet<string> = new Set();

/**
 * A parentless, attribute-less entity carrying tags (`Args`, `Numbers`), exactly as {@link buildStore} would
 * hold it. The caller vouches that every tag is a well-formed string or a safe integer.
 */
export function taggedEntity(tags: Readonly<Record<string, unknown>>): StoredEntity {
  const map = new Map<string, Value>();
  for (const [k, v] of Object.entries(tags)) map.set(k, fromJson(v));
  return { attrs: NO_ATTRS, tags: map, ancestors: NO_ANCESTORS };
}

/**
 * The entities of one request as Cedar sees them, or undefined when Cedar must see them itself: a string
 * it cannot parse, a value this evaluator does not model, or a duplicate entity.
 */
export function buildStore(entities: readonly EntityJson[]): EntityStore | undefined {
  const parents = new Map<string, string[]>();
  const raw = new Map<string, { attrs: Map<string, Value>; tags: Map<string, Value> }>();
  const strings = (v: unknown): boolean => {
    if (typeof v === 'string') return wellFormed(v);
    if (Array.isArray(v)) return v.every(strings);
    if (v !== null && typeof v === 'object')
      return Object.entries(v).every(([k, x]) => wellFormed(k) && strings(x));
    return true;
  };
  try {
    for (const e of entities) {
      if (!strings(e)) return undefined;
      const uid = uidOf(e.uid);
      if (raw.has(uid.key)) return undefined;
      const attrs = new Map<string, Value>();
      for (const [k, v] of Object.entries(e.attrs)) attrs.set(k, fromJson(v));
      const tags = new Map<string, Value>();
      for (const [k, v] of Object.entries(e.tags ?? {})) tags.set(k, fromJson(v));
      raw.set(uid.key, { attrs, tags });
      parents.set(
        uid.key,
        e.parents.map((p) => uidOf(p).key),
      );
    }
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  // Transitive closure, as Cedar computes it when it parses entities: parents of parents, present or not.
  const store = new Map<string, StoredEntity>();
  for (const [key, data] of raw) {
    const ancestors = new Set<string>();
    const todo = [...(parents.get(key) ?? [])];
    for (let p = todo.pop(); p !== undefined; p = todo.pop()) {
      if (ancestors.has(p)) continue;
      ancestors.add(p);
      todo.push(...(parents.get(p) ?? []));
    }
    store.set(key, { attrs: data.attrs, tags: data.tags, ancestors });
  }
  return store;
}

/** The single key of an EST node and its body, or Unsupported. */
function node(e: unknown): [string, unknown] {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return unsupported('expression');
  const entries = Object.entries(e);
  const first = entries[0];
  if (entries.length !== 1 || first === undefined) return unsupported('expression');
  return first;
}

function field(body: unknown, name: string): unknown {
  if (body === null || typeof body !== 'object' || !(name in body)) return unsupported(`missing ${name}`);
  return (body as Record<string, unknown>)[name];
}

/** The constant value of a literal or a set of literals, else undefined. */
function constantOf(e: unknown): Value | undefined {
  try {
    const [k, body] = node(e);
    if (k === 'Value') return fromJson(body);
    if (k === 'Set' && Array.isArray(body)) {
      const items = body.map(constantOf);
      return items.every((x) => x !== undefined) ? new CedarSet(items as Value[]) : undefined;
    }
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
  }
  return undefined;
}

/**
 * Compiles one EST expression into a closure. Throws {@link Unsupported} at compile time for what it does
 * not implement; the closure throws {@link EvaluationError} wherever Cedar's evaluation errors.
 *
 * Binary operators evaluate both operands before checking types (as Cedar does); since expressions have no
 * side effects, only the short-circuits of `&&`, `||` and `if` decide whether an error is reached at all,
 * and those are mirrored exactly.
 */
export function compileExpr(e: unknown): Fn {
  const [k, body] = node(e);
  const unary = (): Fn => compileExpr(field(body, 'arg'));
  const binary = (): [Fn, Fn] => [compileExpr(field(body, 'left')), compileExpr(field(body, 'right'))];
  switch (k) {
    case 'Value': {
      const v = fromJson(body);
      return () => v;
    }
    case 'Var':
      switch (body) {
        case 'principal':
          return (env) => env.principal;
        case 'action':
          return (env) => env.action;
        case 'resource':
          return (env) => env.resource;
        case 'context':
          return (env) => env.context;
      }
      return unsupported(`variable ${String(body)}`);
    case '!': {
      const a = unary();
      return (env) => !asBool(a(env));
    }
    case 'neg': {
      const a = unary();
      return (env) => checked(-asLong(a(env)));
    }
    case '==': {
      const [l, r] = binary();
      return (env) => {
        const a = l(env);
        return valueEquals(a, r(env));
      };
    }
    case '!=': {
      // Cedar parses `a != b` as `!(a == b)`.
      const [l, r] = binary();
      return (env) => {
        const a = l(env);
        return !valueEquals(a, r(env));
      };
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      // Long only: Gatehouse values carry no extension values (datetime, duration), the other comparable types.
      const [l, r] = binary();
      const cmp: (a: bigint, b: bigint) => boolean =
        k === '<'
          ? (a, b) => a < b
          : k === '<='
            ? (a, b) => a <= b
            : k === '>'
              ? (a, b) => a > b
              : (a, b) => a >= b;
      return (env) => {
        const a = l(env);
        const b = r(env);
        return cmp(asLong(a), asLong(b));
      };
    }
    case '+':
    case '-':
    case '*': {
      const [l, r] = binary();
      const op: (a: bigint, b: bigint) => bigint =
        k === '+' ? (a, b) => a + b : k === '-' ? (a, b) => a - b : (a, b) => a * b;
      return (env) => {
        const a = l(env);
        const b = r(env);
        return checked(op(asLong(a), asLong(b)));
      };
    }
    case '&&': {
      // Cedar: the left operand must be a Bool; false short-circuits (the right one is never evaluated).
      const [l, r] = binary();
      return (env) => asBool(l(env)) && asBool(r(env));
    }
    case '||': {
      const [l, r] = binary();
      return (env) => asBool(l(env)) || asBool(r(env));
    }
    case 'in': {
      const [l, r] = binary();
      return (env) => {
        const a = l(env);
        return evalIn(env, a, r(env));
      };
    }
    case 'contains': {
      const [l, r] = binary();
      const lit = constantOf(field(body, 'left'));
      if (lit instanceof CedarSet && lit.items.every((x) => typeof x !== 'object')) {
        // A literal allow-list of strings/Longs/Bools: a hash lookup. No primitive equals a non-primitive.
        const members = new Set<Value>(lit.items);
        return (env) => {
          const v = r(env);
          return typeof v !== 'object' && members.has(v);
        };
      }
      return (env) => {
        const s = l(env);
        const v = r(env);
        return setHas(asSet(s), v);
      };
    }
    case 'containsAll': {
      const [l, r] = binary();
      return (env) => {
        const a = l(env);
        const b = r(env);
        const sa = asSet(a);
        return subsetOf(asSet(b), sa);
      };
    }
    case 'containsAny': {
      const [l, r] = binary();
      return (env) => {
        const a = l(env);
        const b = r(env);
        const sa = asSet(a);
        const sb = asSet(b);
        return sb.items.some((x) => setHas(sa, x));
      };
    }
    case 'isEmpty': {
      const a = unary();
      return (env) => asSet(a(env)).items.length === 0;
    }
    case 'hasTag':
    case 'getTag': {
      const [l, r] = binary();
      const get = k === 'getTag';
      return (env) => {
        const a = l(env);
        const b = r(env);
        const uid = asEntity(a);
        const tag = asString(b);
        const entity = env.entities.get(uid.key);
        // hasTag on a missing entity is false; getTag on one is an error.
        if (!get) return entity?.tags.has(tag) === true;
        if (entity === undefined) return fail('entity does not exist');
        return entity.tags.get(tag) ?? fail(`no tag ${tag}`);
      };
    }
    case '.': {
      const l = compileExpr(field(body, 'left'));
      const attr = field(body, 'attr');
      if (typeof attr !== 'string') return unsupported('attribute');
      return (env) => getAttr(env, l(env), attr);
    }
    case 'has': {
      const l = compileExpr(field(body, 'left'));
      const attr = field(body, 'attr');
      const path = typeof attr === 'string' ? [attr] : attr;
      if (!Array.isArray(path) || path.length === 0 || !path.every((a) => typeof a === 'string'))
        return unsupported('attribute path');
      const attrs = path as string[];
      // `e has a.b.c` is `e has a && e.a has b && e.a.b has c` (Cedar's desugaring).
      return (env) => {
        let v = l(env);
        for (let i = 0; i < attrs.length; i++) {
          const a = attrs[i] as string;
          if (!hasAttr(env, v, a)) return false;
          if (i < attrs.length - 1) v = getAttr(env, v, a);
        }
        return true;
      };
    }
    case 'like': {
      const l = compileExpr(field(body, 'left'));
      const raw = field(body, 'pattern');
      if (!Array.isArray(raw)) return unsupported('pattern');
      const pattern: (string | null)[] = [];
      for (const el of raw) {
        if (el === 'Wildcard') pattern.push(null);
        else if (
          el !== null &&
          typeof el === 'object' &&
          typeof (el as { Literal?: unknown }).Literal === 'string'
        )
          pattern.push(...Array.from((el as { Literal: string }).Literal));
        else unsupported('pattern element');
      }
      return (env) => likeMatch(pattern, asString(l(env)));
    }
    case 'is': {
      const l = compileExpr(field(body, 'left'));
      const type = field(body, 'entity_type');
      if (typeof type !== 'string') return unsupported('entity type');
      const within =
        body !== null && typeof body === 'object' && 'in' in body
          ? compileExpr(field(body, 'in'))
          : undefined;
      // `e is T in E` is `e is T && e in E`.
      return (env) => {
        const v = asEntity(l(env));
        if (v.type !== type) return false;
        return within === undefined ? true : evalIn(env, v, within(env));
      };
    }
    case 'if-then-else': {
      const c = compileExpr(field(body, 'if'));
      const t = compileExpr(field(body, 'then'));
      const f = compileExpr(field(body, 'else'));
      return (env) => (asBool(c(env)) ? t(env) : f(env));
    }
    case 'Set': {
      if (!Array.isArray(body)) return unsupported('set');
      const items = body.map(compileExpr);
      return (env) => new CedarSet(items.map((f) => f(env)));
    }
    case 'Record': {
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return unsupported('record');
      const entries = Object.entries(body).map(([name, x]) => [name, compileExpr(x)] as const);
      return (env) => new CedarRecord(new Map(entries.map(([name, f]) => [name, f(env)])));
    }
  }
  // Slot, Unknown, extension functions (ip, decimal, datetime, ...): Cedar evaluates these.
  return unsupported(`operator ${k}`);
}

const ACTION_TYPE = `${NAMESPACE}::Action`;
const ACTION_PROBE = new EntityUid('', '');
const EMPTY_RECORD = new CedarRecord(new Map());

/** Scope of one policy, compiled. */
type Constraint = (env: EvalEnv) => boolean;

function compileConstraint(c: unknown, variable: 'principal' | 'action' | 'resource'): Constraint {
  if (c === null || typeof c !== 'object') return unsupported('scope');
  const rec = c as Record<string, unknown>;
  const v = (env: EvalEnv) => env[variable];
  const entity = (x: unknown): EntityUid => {
    if (x === null || typeof x !== 'object') return unsupported('scope entity');
    const u = fromJson('__entity' in x ? x : { __entity: x });
    return u instanceof EntityUid ? u : unsupported('scope entity');
  };
  switch (rec['op']) {
    case 'All':
      return () => true;
    case '==': {
      if (!('entity' in rec)) return unsupported('slot');
      const e = entity(rec['entity']);
      return (env) => valueEquals(v(env), e);
    }
    case 'in': {
      if ('entities' in rec) {
        if (!Array.isArray(rec['entities'])) return unsupported('scope');
        const set = new CedarSet(rec['entities'].map(entity));
        return (env) => evalIn(env, v(env), set);
      }
      if (!('entity' in rec)) return unsupported('slot');
      const e = entity(rec['entity']);
      return (env) => evalIn(env, v(env), e);
    }
    case 'is': {
      const type = rec['entity_type'];
      if (typeof type !== 'string') return unsupported('scope');
      const within = rec['in'] as { entity?: unknown } | undefined;
      if (within === undefined) return (env) => v(env).type === type;
      if (within === null || typeof within !== 'object' || !('entity' in within)) return unsupported('slot');
      const e = entity(within.entity);
      return (env) => v(env).type === type && evalIn(env, v(env), e);
    }
  }
  return unsupported('scope');
}

/** One policy, compiled for the engine's fast path. */
export interface CompiledPolicy {
  readonly id: string;
  readonly effect: 'permit' | 'forbid';
  /** Whether the action constraint holds for this action id (actions have no parents in Gatehouse requests). */
  readonly action: ((actionId: string) => boolean) | undefined;
  /** Whether the principal and resource constraints hold; undefined when not compiled (treat as holding). */
  readonly scope: Constraint | undefined;
  /**
   * The `when` / `unless` clauses; throws {@link EvaluationError} where Cedar's evaluation errors. Undefined
   * when the policy uses something this evaluator does not support (Cedar must evaluate it).
   */
  readonly condition: Constraint | undefined;
}

function tryCompile<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
}

/**
 * Compiles a policy's scope and conditions. Cedar's policy condition is
 * `principal-scope && action-scope && resource-scope && when₁ && !unless₁ && …` in clause order, each
 * clause a Bool (a non-Bool is a type error); so a false clause stops evaluation before later clauses can
 * error, which `condition` mirrors.
 */
export function compilePolicy(id: string, json: PolicyJson): CompiledPolicy {
  const actionConstraint = tryCompile(() => compileConstraint(json.action, 'action'));
  const principal = tryCompile(() => compileConstraint(json.principal, 'principal'));
  const resource = tryCompile(() => compileConstraint(json.resource, 'resource'));
  const scope = principal && resource ? (env: EvalEnv) => principal(env) && resource(env) : undefined;
  const condition = tryCompile(() => {
    const clauses = json.conditions.map((c) => {
      if (c.kind !== 'when' && c.kind !== 'unless') unsupported('clause');
      return { when: c.kind === 'when', body: compileExpr(c.body) };
    });
    return (env: EvalEnv): boolean => {
      for (const c of clauses) if (asBool(c.body(env)) !== c.when) return false;
      return true;
    };
  });
  // Action constraints only compare action uids: no store is needed (action entities are never passed).
  const noEntities: EntityStore = new Map();
  const action =
    actionConstraint &&
    ((actionId: string) =>
      actionConstraint({
        principal: ACTION_PROBE,
        action: new EntityUid(ACTION_TYPE, actionId),
        resource: ACTION_PROBE,
        context: EMPTY_RECORD,
        entities: noEntities,
      }));
  return { id, effect: json.effect, action, scope, condition };
}
