/**
 * Differential tests of the policy fast path against Cedar itself. Random requests (principals, roles,
 * tools, actions, arguments of every JSON type, time, read labels, approval, grants) go through
 *
 * 1. the JS evaluator, policy by policy, against one Cedar call over the same policies: every policy must
 *    be satisfied, not satisfied, or erroring exactly as Cedar says (scope and conditions);
 * 2. PolicyEngine.decide (scope filter, cached static part, JS per-call part, fallbacks) against
 *    PolicyEngine.decideUncached (the whole set in Cedar, every call): same effect, same deciding policy
 *    ids, same errors.
 *
 * Policies: every file in examples/policies and test/fixtures/policies, hand-written rules covering every
 * operator the evaluator implements (OPERATORS), rules Cedar's validator would reject, to reach every
 * evaluation error (RAW, evaluator test only), and random well-typed argument rules.
 *
 * The PRNG is seeded; the seed is printed. Reproduce with DIFF_SEED=<seed>; DIFF_SCALE multiplies the
 * number of requests (default 1).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Principal } from '../../src/auth/principal.ts';
import { cedar } from '../../src/policy/cedar.ts';
import { buildStore, type CompiledPolicy, compilePolicy, EvaluationError } from '../../src/policy/compile.ts';
import {
  type DecisionRequest,
  GATEHOUSE_SCHEMA,
  loadPolicySet,
  type PolicyAction,
  PolicyEngine,
  type RoleMap,
  splitPolicies,
  type ToolAttributes,
} from '../../src/policy/index.ts';
import {
  CallStore,
  callWellFormed,
  cedarRequest,
  cedarSafe,
  evalEnv,
  requestEntities,
  requestTime,
} from '../../src/policy/request.ts';

const SEED = process.env['DIFF_SEED'] !== undefined ? Number(process.env['DIFF_SEED']) : Date.now() % 2 ** 31;
const SCALE = Number(process.env['DIFF_SCALE'] ?? 1);
console.log(`# differential seed ${SEED} (reproduce: DIFF_SEED=${SEED})`);

type Rng = () => number;

/** mulberry32: small, fast, good enough to spread test inputs; seeded per test. */
function prng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
const chance = (rng: Rng, p: number): boolean => rng() < p;
const subset = <T>(rng: Rng, xs: readonly T[], p = 0.3): T[] => xs.filter(() => chance(rng, p));

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const cedarFiles = (dir: string) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.cedar'))
    .sort()
    .map((f) => join(ROOT, dir, f));
const EXAMPLE_FILES = cedarFiles('examples/policies');
const FIXTURE_FILES = cedarFiles('test/fixtures/policies');

/** One rule per operator and construct the evaluator implements, plus unsupported ones (Cedar decides). */
const OPERATORS = `
@id("o-eq") forbid(principal, action == Gatehouse::Action::"call_tool", resource) when { context.args.hasTag("repo") && context.args.getTag("repo") == "acme/secret" };
@id("o-ne") forbid(principal, action, resource == Gatehouse::Tool::"files__write_file") when { context.args.hasTag("q") && context.args.getTag("q") != "safe" };
@id("o-lt") forbid(principal, action == Gatehouse::Action::"call_tool", resource in Gatehouse::Server::"work") unless { context.numbers.hasTag("amount") && context.numbers.getTag("amount") < 1000 };
@id("o-le-ge") permit(principal, action, resource in Gatehouse::Server::"work") when { context.numbers.hasTag("n") && context.numbers.getTag("n") >= -5 && context.numbers.getTag("n") <= 5 };
@id("o-gt") permit(principal, action, resource) when { context.numbers.hasTag("amount") && context.numbers.getTag("amount") > 999 };
@id("o-overflow") forbid(principal, action, resource in Gatehouse::Server::"work") when { context.numbers.hasTag("n") && context.numbers.getTag("n") * 4294967296 + 1 > 9007199254740991 - context.time };
@id("o-neg-sub") permit(principal, action, resource in Gatehouse::Server::"github") when { context.numbers.hasTag("n") && -context.numbers.getTag("n") - 3 > context.time - 2000 };
@id("o-like") forbid(principal, action == Gatehouse::Action::"call_tool", resource in Gatehouse::Server::"files") unless { context.args.hasTag("path") && context.args.getTag("path") like "/srv/app/*" };
@id("o-like2") permit(principal, action, resource) when { context.args.hasTag("q") && context.args.getTag("q") like "*a*b*" };
@id("o-like3") permit(principal, action, resource) when { context.args.hasTag("🔑") && context.args.getTag("🔑") like "é*\\*🔑" };
@id("o-in-list") permit(principal, action, resource in Gatehouse::Server::"github") when { context.args.hasTag("repo") && ["acme/widgets", "org/shared"].contains(context.args.getTag("repo")) };
@id("o-read") forbid(principal, action, resource) when { context.read.contains("secret") && resource is Gatehouse::Tool && resource.sideEffect == "external" };
@id("o-read-any") forbid(principal, action == Gatehouse::Action::"call_tool", resource in Gatehouse::Server::"deploy") when { context.read.containsAny(["pii", "secret"]) };
@id("o-read-all") permit(principal, action, resource in Gatehouse::Server::"docs") when { context.read.containsAll(["public"]) || context.read.isEmpty() || ["public", "é"].containsAll(context.read) };
@id("o-if") permit(principal, action, resource) when { if context.args.hasTag("x") then context.args.getTag("x") == "1" else context.approved };
@id("o-or-not") forbid(principal, action, resource in Gatehouse::Server::"shady") when { !context.args.hasTag("token") || !principal.scopes.contains("mcp:admin") };
@id("o-attrs") forbid(principal, action, resource) when { resource is Gatehouse::Tool && resource.risk == "high" && context.numbers.hasTag("n") && context.numbers.getTag("n") > 10 };
@id("o-user") permit(principal, action, resource) when { principal has user.issuer && principal.user.issuer == "https://issuer.test" && context.time > 5 && context.time < 1000 };
@id("o-in-role") permit(principal, action, resource) when { principal in Gatehouse::Role::"ops" && context.args.hasTag("x") };
@id("o-is-in") forbid(principal, action, resource) when { resource is Gatehouse::Tool in Gatehouse::Server::"files" && context.args.hasTag("") };
@id("o-set-rec") permit(principal, action, resource in Gatehouse::Server::"search") when { [context.time, 1] == [1, context.time] && {a: context.time}.a == 1000 && {t: context.time, s: "x"} has s };
@id("o-literal-args") forbid(principal, action, resource in Gatehouse::Server::"github") when { Gatehouse::Args::"call".hasTag("force") };
@id("o-grant") permit(principal, action, resource in Gatehouse::Server::"x") when { context.grant == Gatehouse::Grant::"g1" && context.args.hasTag("repo") };
@id("o-ext") forbid(principal, action, resource in Gatehouse::Server::"docs") when { ip("127.0.0.1").isLoopback() && context.args.hasTag("ip") };
@id("o-json-text") permit(principal, action, resource in Gatehouse::Server::"work") when { context.args.hasTag("n") && context.args.getTag("n") == "42" };
@id("o-token") permit(principal, action, resource in Gatehouse::Server::"work") when { context.args.hasTag("token") && context.args.getTag("token") == "t" };
@id("o-big") permit(principal, action, resource in Gatehouse::Server::"search") when { context.time < 9223372036854775807 && context.args.hasTag("q") };
@id("o-unicode-key") permit(principal, action, resource) when { context.args.hasTag("ключ") && context.args.getTag("ключ") like "*🔑*" };
@id("o-proto") forbid(principal, action, resource in Gatehouse::Server::"github") when { context.args.hasTag("__proto__") };
@id("o-approval") @approval("required") forbid(principal, action == Gatehouse::Action::"call_tool", resource in Gatehouse::Server::"work") when { context.numbers.hasTag("amount") && context.numbers.getTag("amount") > 100 } unless { context.approved };
@id("o-ctx-has") permit(principal, action, resource in Gatehouse::Server::"search") when { context has args && context.args.hasTag("x") };
@id("o-set-eq") forbid(principal, action, resource in Gatehouse::Server::"deploy") when { context.read == ["secret", "pii"] || principal.scopes == ["read"] };
@id("o-like-case") permit(principal, action, resource in Gatehouse::Server::"files") when { context.args.hasTag("repo") && context.args.getTag("repo") like "A*/*s" };
@id("o-ops") permit(principal in Gatehouse::Role::"operators", action, resource);
@id("o-tenant") permit(principal is Gatehouse::Agent in Gatehouse::Tenant::"acme", action in [Gatehouse::Action::"list_tools", Gatehouse::Action::"call_tool"], resource is Gatehouse::Tool in Gatehouse::Server::"files");
@id("o-res") permit(principal, action == Gatehouse::Action::"read_resource", resource is Gatehouse::Resource);
@id("o-agent-b") permit(principal == Gatehouse::Agent::"b", action, resource == Gatehouse::Tool::"work__transfer");
@id("o-static-approval") @approval("required") forbid(principal, action == Gatehouse::Action::"call_tool", resource is Gatehouse::Tool) when { resource.risk == "high" } unless { context.approved };
`;

/** Rules the validator rejects (or would), to reach every evaluation error and type error; evaluator test only. */
const RAW = [
  'context.args.getTag("q") == "x"',
  'context.numbers.getTag("n") < "a"',
  'context.nope',
  'principal.user.issuer == "https://issuer.test"',
  'resource.risk == "high"',
  '1 in principal',
  'principal in [1]',
  'principal in [Gatehouse::Role::"ops", 1]',
  'principal in [Gatehouse::Role::"ops", Gatehouse::Tenant::"acme"]',
  '[1].contains(context.args)',
  'context.args.contains(1)',
  'context.time',
  'false && context.args.getTag("zz") == ""',
  'context.time > 5 || context.args.getTag("zz") == ""',
  'if context.approved then context.args.getTag("zz") == "" else true',
  'if context.time then true else false',
  'context.read like "x"',
  'context.args has repo',
  'Gatehouse::Args::"other".hasTag("x")',
  'Gatehouse::Args::"other".getTag("x") == ""',
  'Gatehouse::User::"nobody".issuer == ""',
  'Gatehouse::User::"nobody" has issuer',
  'principal has user.nope.deeper',
  'principal has user.issuer',
  'context has nope',
  'context.grant has x',
  '-9007199254740991 * 1048576 < 0',
  '-(context.numbers.getTag("n") * 1024) > 0',
  'context.numbers.getTag("n") * context.numbers.getTag("n") > 0',
  'context.numbers.getTag("n") + 9007199254740991 * 1024 > 0',
  'context.numbers.getTag("n") - 9007199254740991 * 1024 < 0',
  '{a: 1}.b == 1',
  'context.args.getTag("n") == 42',
  'principal.scopes.containsAll(context.read)',
  'context.read.containsAny(principal.actors)',
  'context.read.containsAll(1)',
  '"x".isEmpty()',
  'resource.server.trusted',
  'resource.server == Gatehouse::Server::"github"',
  'action in [Gatehouse::Action::"call_tool", Gatehouse::Action::"list_tools"]',
  'action.foo',
  'action has foo',
  'context == context',
  'context == {}',
  '[principal, resource].contains(principal)',
  'principal is Gatehouse::User',
  'context.time is Gatehouse::User',
  'principal is Gatehouse::Agent in Gatehouse::Role::"ops"',
  'principal is Gatehouse::Agent in context.time',
  '"é🔑" like "é*" && "" like "" && "" like "*" && "abc" like "a*c*" && !("abc" like "a*b")',
  'context.args.getTag("q") like "*\\**"',
  '!context.args',
  '-context.args.getTag("n") == "x"',
  'context.time + true == 1',
  '[context.read, principal.scopes].contains(context.read)',
  '{a: context.read} == {a: context.read, b: 1}',
  'context.numbers.getTag(context.args.getTag("q")) > 0',
  'context.args.hasTag(context.args.getTag("q"))',
  'principal.user in Gatehouse::Tenant::"acme"',
  'principal.user.issuer like "https*"',
  '(context.approved && 1) == 1',
  '(context.time > 0 || "x") == "x"',
  '(true && context.read) == context.read',
  'context.read == ["public", "pii"]',
  '["secret"] == context.read',
  'principal.scopes == ["mcp", "read"]',
  '{a: context.read} == {a: ["public"]}',
  'context.args.getTag("q") like "*A*"',
  'context.args.getTag("repo") like "Acme/*"',
].map((body, i) => `@id("raw-${i}") permit(principal, action, resource) when { ${body} };`);

/** Tag names and string values the random rules and requests share, so rules actually fire. */
const KEYS = ['repo', 'path', 'amount', 'n', 'q', 'x', 'token', 'force', '', 'ключ', '🔑', '__proto__', 'ip'];
const STRINGS = [
  'acme/widgets',
  'Acme/widgets',
  'ACME/WIDGETS',
  'acme/secret',
  'org/shared',
  '/srv/app/a.txt',
  '/srv/app/',
  '/etc/passwd',
  '',
  'x',
  '1',
  '42',
  'true',
  'safe',
  'é',
  'é🔑',
  'é*🔑',
  'ab',
  'AB',
  'aB',
  'a*b',
  '*',
  'high',
  'low',
  'ключ 🔑',
  '\u0000',
  ' ',
];
const LONGS = [
  0,
  1,
  -1,
  5,
  -5,
  10,
  11,
  100,
  101,
  999,
  1000,
  1001,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  -(2 ** 53 - 1),
];
const LABELS = ['secret', 'public', 'pii', '', 'é'];

/** A Cedar string literal: Cedar escapes are \\, \", and \u{hex}, not JSON's \uXXXX. */
const cedarString = (s: string) =>
  `"${Array.from(s, (c) => (c === '"' || c === '\\' ? `\\${c}` : c < ' ' ? `\\u{${c.codePointAt(0)?.toString(16)}}` : c)).join('')}"`;

/** Arguments at the edges every rule is also tried with (boundaries, overflow, patterns, empty, unicode). */
const EDGE_ARGS: readonly unknown[] = [
  {},
  { n: 2 ** 53 - 1, amount: 2 ** 53 - 1 },
  { n: -(2 ** 53 - 1), amount: -(2 ** 53 - 1) },
  { n: 2 ** 32, amount: 1000 },
  { n: 5, amount: 999 },
  { n: 42, amount: 101, token: 't' },
  { repo: 'acme/secret', path: '/srv/app/x', q: 'ab', x: '1' },
  { repo: 'acme/widgets', path: '/srv/app', q: 'ba', x: '0', force: false },
  { repo: 'Acme/widgets', path: '/SRV/app/x', q: 'AB', x: '1' },
  { '🔑': 'é*🔑', ключ: 'ключ 🔑', '': '', __proto__: 'p' },
  { '🔑': 'é🔑', ключ: '', ip: '127.0.0.1', n: '42' },
];

/** Random well-typed (strict-validation) expressions: every getTag is guarded by a hasTag of the same key. */
function randomRule(rng: Rng, n: number): string {
  const key = () => cedarString(pick(rng, KEYS));
  const long = (d: number): string => {
    const r = rng();
    if (d <= 0 || r < 0.3) return chance(rng, 0.5) ? String(pick(rng, LONGS)) : 'context.time';
    if (r < 0.45) return `(${long(d - 1)} ${pick(rng, ['+', '-', '*'])} ${long(d - 1)})`;
    if (r < 0.55) return `(-${long(d - 1)})`;
    if (r < 0.65) return `(if ${bool(d - 1)} then ${long(d - 1)} else ${long(d - 1)})`;
    if (r < 0.75) return `({v: ${long(d - 1)}}.v)`;
    return 'context.time';
  };
  const str = (d: number): string => {
    const r = rng();
    if (d <= 0 || r < 0.5) return cedarString(pick(rng, STRINGS));
    if (r < 0.7) return `(if ${bool(d - 1)} then ${str(d - 1)} else ${str(d - 1)})`;
    if (r < 0.85) return pick(rng, ['principal.authMethod', 'principal.issuer', 'resource.name']);
    return cedarString(pick(rng, STRINGS));
  };
  const strSet = (d: number): string => {
    const r = rng();
    if (r < 0.4) return 'context.read';
    if (r < 0.55) return 'principal.scopes';
    if (r < 0.65) return 'principal.actors';
    return `[${Array.from({ length: 1 + Math.floor(rng() * 3) }, () => str(d - 1)).join(', ')}]`;
  };
  const pattern = (): string => {
    const parts = Array.from({ length: 1 + Math.floor(rng() * 4) }, () =>
      pick(rng, [
        '*',
        'a',
        'b',
        'A',
        'B',
        '/srv/app/',
        'é',
        'É',
        '🔑',
        '\\*',
        '1',
        'acme/',
        'Acme/',
        '',
        'x',
      ]),
    );
    return `"${parts.join('')}"`;
  };
  const bool = (d: number): string => {
    const r = rng();
    if (d <= 0) return pick(rng, ['context.approved', 'true', 'false', `context.args.hasTag(${key()})`]);
    const k = key();
    if (r < 0.1) return `(${bool(d - 1)} && ${bool(d - 1)})`;
    if (r < 0.2) return `(${bool(d - 1)} || ${bool(d - 1)})`;
    if (r < 0.25) return `(!${bool(d - 1)})`;
    if (r < 0.35) return `(${long(d - 1)} ${pick(rng, ['<', '<=', '>', '>=', '==', '!='])} ${long(d - 1)})`;
    if (r < 0.45)
      return `(context.numbers.hasTag(${k}) && context.numbers.getTag(${k}) ${pick(rng, ['<', '<=', '>', '>=', '==', '!='])} ${long(d - 1)})`;
    if (r < 0.55)
      return `(context.args.hasTag(${k}) && context.args.getTag(${k}) ${pick(rng, ['==', '!='])} ${str(d - 1)})`;
    if (r < 0.62) return `(context.args.hasTag(${k}) && context.args.getTag(${k}) like ${pattern()})`;
    if (r < 0.68)
      return `(context.args.hasTag(${k}) && ${strSet(d - 1)}.contains(context.args.getTag(${k})))`;
    if (r < 0.73) return `${strSet(d - 1)}.${pick(rng, ['containsAll', 'containsAny'])}(${strSet(d - 1)})`;
    if (r < 0.76)
      return chance(rng, 0.5) ? `${strSet(d - 1)}.isEmpty()` : `${strSet(d - 1)} == ${strSet(d - 1)}`;
    if (r < 0.8) return `${strSet(d - 1)}.contains(${str(d - 1)})`;
    if (r < 0.85) return `(if ${bool(d - 1)} then ${bool(d - 1)} else ${bool(d - 1)})`;
    if (r < 0.88) return `(${str(d - 1)} like ${pattern()})`;
    if (r < 0.91)
      return pick(rng, [
        'principal in Gatehouse::Role::"ops"',
        'principal has user',
        'resource in Gatehouse::Server::"work"',
        'context.grant == Gatehouse::Grant::"g1"',
      ]);
    if (r < 0.93) return `(context.numbers.hasTag(${k}) && context.args.hasTag(${k}))`;
    if (r < 0.97)
      // Arithmetic on argument values: i64 overflow is an evaluation error.
      return `(context.numbers.hasTag(${k}) && context.numbers.getTag(${k}) ${pick(rng, ['+', '-', '*'])} ${long(d - 1)} ${pick(rng, ['<', '>='])} ${long(d - 1)})`;
    return `(${long(d - 1)} == ${long(d - 1)} || ${bool(d - 1)})`;
  };
  const effect = pick(rng, ['permit', 'permit', 'forbid']);
  const principal = pick(rng, [
    'principal',
    'principal',
    'principal == Gatehouse::Agent::"a"',
    'principal in Gatehouse::Role::"ops"',
    'principal in Gatehouse::Tenant::"acme"',
  ]);
  const action = pick(rng, [
    'action',
    'action',
    'action == Gatehouse::Action::"call_tool"',
    'action in [Gatehouse::Action::"list_tools", Gatehouse::Action::"call_tool"]',
  ]);
  const resource = pick(rng, [
    'resource',
    'resource',
    'resource in Gatehouse::Server::"work"',
    'resource in Gatehouse::Server::"github"',
    'resource is Gatehouse::Tool',
  ]);
  // Per-call context in every rule, so the rule is on the fast path.
  const when = `context.time >= ${pick(rng, [-1, 0, 500, 1000])} && ${bool(3)}`;
  const unless = chance(rng, 0.3) ? ` unless { ${bool(2)} }` : '';
  return `@id("r-${n}") ${effect}(${principal}, ${action}, ${resource}) when { ${when} }${unless};`;
}

/** Random rules that pass strict validation (the validator rejects a few shapes the generator can make). */
function randomRules(rng: Rng, count: number): string[] {
  const candidates = Array.from({ length: count * 2 }, (_, i) => randomRule(rng, i));
  const staticPolicies = Object.fromEntries(candidates.map((text, i) => [`r-${i}`, text]));
  const answer = cedar.validate({ schema: GATEHOUSE_SCHEMA, policies: { staticPolicies } });
  assert.equal(answer.type, 'success', JSON.stringify(answer).slice(0, 500));
  const rejected = new Set(answer.type === 'success' ? answer.validationErrors.map((e) => e.policyId) : []);
  return candidates.filter((_, i) => !rejected.has(`r-${i}`)).slice(0, count);
}

const AGENTS = [
  'reporter',
  'triage',
  'ops-bot',
  'demo-agent',
  'coding-agent',
  'reader',
  'dev',
  'a',
  'b',
  'x',
];
const SERVERS = ['github', 'files', 'deploy', 'docs', 'shady', 'everything', 'search', 'work', 'x'];
const TOOLS = [
  'create_issue',
  'search_code',
  'delete_repo',
  'read_file',
  'write_file',
  'wipe',
  'release',
  'lookup',
  'get-env',
  'transfer',
  'é🔑',
];
const ATTRS: (ToolAttributes | undefined)[] = [
  undefined,
  { risk: 'low', sideEffect: 'read' },
  { risk: 'medium', sideEffect: 'write' },
  { risk: 'high', sideEffect: 'destructive', serverTrusted: true },
  { risk: 'high', sideEffect: 'external' },
  { risk: 'high', sideEffect: 'destructive' },
  { serverTrusted: true, annotations: { readOnlyHint: true } },
  { annotations: { readOnlyHint: true, destructiveHint: false } },
  { risk: 'critical', sideEffect: 'none', owner: 'team' },
];

function randomPrincipal(rng: Rng): Principal {
  const user = pick(rng, [undefined, undefined, 'alice', 'bob', 'ключ']);
  return {
    agent: pick(rng, AGENTS),
    user,
    subject: user ?? 'agent',
    actors: subset(rng, ['rogue', 'helper'], 0.2),
    tenant: pick(rng, [undefined, 'acme', 'globex']),
    tokenId: undefined,
    issuer: pick(rng, ['https://issuer.test', 'https://other.test']),
    scopes: new Set(subset(rng, ['mcp', 'mcp:admin', 'read', 'write'], 0.4)),
    authMethod: pick(rng, ['jwt', 'introspection'] as const),
    expiresAt: 0,
  };
}

function randomString(rng: Rng, illFormed: number): string {
  if (chance(rng, illFormed)) return pick(rng, ['\ud800', 'a\udc00b', '🔑'.slice(0, 1)]);
  if (chance(rng, 0.8)) return pick(rng, STRINGS);
  const cps = [0x41, 0x61, 0xe9, 0x2a, 0x2f, 0x1f511, 0x430, 0x20, 0x22, 0x5c];
  return String.fromCodePoint(...Array.from({ length: Math.floor(rng() * 6) }, () => pick(rng, cps)));
}

function randomValue(rng: Rng, illFormed: number, depth = 0): unknown {
  const r = rng();
  if (r < 0.35) return randomString(rng, illFormed);
  if (r < 0.65) return pick(rng, LONGS) * (chance(rng, 0.1) ? -1 : 1);
  if (r < 0.7) return pick(rng, [1.5, -0.25, 1e300, 2 ** 60, -0]);
  if (r < 0.78) return chance(rng, 0.5);
  if (r < 0.82) return null;
  if (depth > 1) return 'x';
  if (r < 0.9) return [randomValue(rng, illFormed, depth + 1), randomValue(rng, illFormed, depth + 1)];
  return { [pick(rng, KEYS)]: randomValue(rng, illFormed, depth + 1) };
}

function randomArgs(rng: Rng, illFormed: number): unknown {
  const r = rng();
  if (r < 0.1) return undefined;
  if (r < 0.13) return pick(rng, [null, [1, 2], 'text', 42]);
  const args: Record<string, unknown> = {};
  const n = Math.floor(rng() * 5);
  for (let i = 0; i < n; i++) {
    const k = chance(rng, illFormed) ? '\udbff' : pick(rng, KEYS);
    // defineProperty: an own "__proto__" argument, as JSON.parse makes it.
    Object.defineProperty(args, k, {
      value: randomValue(rng, illFormed),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return args;
}

type RequestKey = Pick<DecisionRequest, 'principal' | 'action' | 'server' | 'tool' | 'toolAttrs'>;

interface Pools {
  /** Cache keys (principal, action, server, tool, attributes) most requests reuse. */
  readonly keys: readonly RequestKey[];
  /** Keys inside each policy's scope. */
  readonly scopeKeys: readonly RequestKey[];
  readonly principals: readonly Principal[];
  readonly servers: readonly string[];
  readonly tools: readonly string[];
  readonly roles: RoleMap;
}

/** Entity ids the policies name, by type (`Agent`, `Server`, ...), so random requests hit the rules. */
function namedEntities(policyTexts: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) for (const y of x) visit(y);
    else if (x !== null && typeof x === 'object') {
      const rec = x as Record<string, unknown>;
      if (typeof rec['type'] === 'string' && typeof rec['id'] === 'string') {
        const type = rec['type'].replace('Gatehouse::', '');
        out.set(type, (out.get(type) ?? new Set()).add(rec['id']));
      }
      for (const v of Object.values(rec)) visit(v);
    }
  };
  for (const t of policyTexts) {
    const j = cedar.policyToJson(t);
    if (j.type === 'success') visit(j.json);
  }
  return out;
}

/** Small pools (keys repeat: cache hits, per-call path) biased towards what the policies name. */
function pools(rng: Rng, policyTexts: readonly string[]): Pools {
  const named = namedEntities(policyTexts);
  const ids = (type: string) => [...(named.get(type) ?? [])];
  const agents = [...new Set([...ids('Agent'), ...ids('Agent'), ...AGENTS])];
  const toolIds = ids('Tool');
  const servers = [
    ...ids('Server'),
    ...ids('Server'),
    ...toolIds.map((t) => t.split('__')[0] ?? ''),
    ...SERVERS,
  ];
  const tools = [...toolIds.map((t) => t.split('__').slice(1).join('__')), ...TOOLS];
  const roleNames = [...new Set([...ids('Role'), 'ops', 'operators', 'admins'])];
  const table = (names: readonly string[]) =>
    Object.fromEntries(names.map((n) => [n, subset(rng, roleNames, 0.4)]));
  const roles: RoleMap = { agents: table(agents), users: table(['alice', 'bob', 'ключ']) };
  const tenants = [...ids('Tenant'), 'acme', 'globex'];
  const principal = (): Principal => {
    const p = randomPrincipal(rng);
    return {
      ...p,
      agent: chance(rng, 0.7) ? pick(rng, agents) : p.agent,
      tenant: chance(rng, 0.5) ? pick(rng, tenants) : p.tenant,
    };
  };
  const principals = Array.from({ length: 25 }, principal);
  const pools = { keys: [], scopeKeys: [], principals, servers, tools, roles };
  const keys = Array.from({ length: 60 }, () => {
    const { principal, action, server, tool, toolAttrs } = randomRequest(rng, pools);
    return { principal, action, server, tool, toolAttrs };
  });
  // And keys inside each policy's scope (its agent on its server or tool), so every rule gets exercised.
  const scopeKeys: RequestKey[] = [];
  for (const t of policyTexts) {
    const named = namedEntities([t]);
    const agent = [...(named.get('Agent') ?? [])][0];
    const server = [...(named.get('Server') ?? [])][0];
    const tool = [...(named.get('Tool') ?? [])][0];
    for (let i = 0; i < 3; i++) {
      const p = pick(rng, principals);
      scopeKeys.push({
        principal: agent === undefined ? p : { ...p, agent },
        action: pick(rng, ['call_tool', 'call_tool', 'list_tools'] as PolicyAction[]),
        server: tool?.split('__')[0] ?? server ?? pick(rng, servers),
        tool: tool?.split('__').slice(1).join('__') ?? pick(rng, tools),
        toolAttrs: pick(rng, ATTRS),
      });
    }
  }
  return { ...pools, keys: [...keys, ...scopeKeys], scopeKeys };
}

/** A random request; keys repeat (small pools) so the cache's hit and per-call paths are exercised too. */
function randomRequest(rng: Rng, pools: Pools, illFormed = 0.01): DecisionRequest {
  const r = rng();
  const key = pools.keys.length > 0 && chance(rng, 0.7) ? pick(rng, pools.keys) : undefined;
  return {
    principal: chance(rng, 0.9) ? pick(rng, pools.principals) : randomPrincipal(rng),
    action: pick(rng, [
      'call_tool',
      'call_tool',
      'call_tool',
      'list_tools',
      'read_resource',
      'get_prompt',
    ] as PolicyAction[]),
    server: pick(rng, pools.servers),
    tool: pick(rng, pools.tools),
    toolAttrs: pick(rng, ATTRS),
    ...key,
    args: randomArgs(rng, illFormed),
    grantId: chance(rng, illFormed)
      ? 'g\ud800'
      : pick(rng, ['g1', 'g2', 'g3', `g-${Math.floor(rng() * 1000)}`]),
    approved: chance(rng, 0.3),
    time:
      r < 0.02
        ? pick(rng, [Number.NaN, 1e300, 1000.5, 2 ** 60])
        : pick(rng, [
            0,
            5,
            6,
            999,
            1000,
            1001,
            1999,
            2000,
            2001,
            -5,
            1_700_000_000,
            Math.floor(rng() * 3000),
          ]),
    read: chance(rng, 0.3)
      ? undefined
      : [...subset(rng, LABELS), ...(chance(rng, illFormed) ? ['\udfff'] : [])],
  };
}

/** Policy texts with ids, from files or inline text. */
function texts(source: string): string[] {
  return splitPolicies(source).map((c) => c.text);
}

function fileTexts(files: readonly string[]): string[] {
  return loadPolicySet({ files }).policies.map((p) => p.text);
}

function tmpPolicies(name: string, policies: readonly string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gh-diff-')), name);
  writeFileSync(file, `${policies.join('\n')}\n`);
  return file;
}

type Verdict = 'satisfied' | 'not' | 'error';

/**
 * The same policy as a permit. Cedar's \`reason\` lists only the policies that determined the decision (the
 * satisfied forbids when one is), so per-policy outcomes are read off a set of permits: each satisfied one is
 * listed, each erroring one is in \`errors\`, whatever the others do.
 */
function asPermit(text: string): string {
  const m = /^((?:\s*@\w+\s*\(\s*"(?:[^"\\]|\\.)*"\s*\)\s*)*)\s*(permit|forbid)\b/.exec(text);
  assert.ok(m, `cannot find the effect of ${text}`);
  return `${m[1]} permit${text.slice(m[0].length)}`;
}

/**
 * Evaluator vs Cedar, policy by policy: one Cedar call over the whole set gives each policy's outcome
 * (reasons, errors); the JS evaluator must give the same for every policy it compiled.
 */
function evaluatorDifferential(name: string, policyTexts: readonly string[], seed: number, requests: number) {
  const rng = prng(seed);
  const compiled: CompiledPolicy[] = [];
  const staticPolicies: Record<string, string> = {};
  for (const [i, text] of policyTexts.entries()) {
    const parsed = cedar.policyToJson(text);
    assert.equal(parsed.type, 'success', text);
    if (parsed.type !== 'success') continue;
    const id = parsed.json.annotations?.['id'] ?? `p${i}`;
    staticPolicies[id] = asPermit(text);
    compiled.push(compilePolicy(id, parsed.json));
  }
  const psetId = `diff-${name}`;
  assert.equal(cedar.preparsePolicySet(psetId, { staticPolicies }).type, 'success');
  const fast = compiled.filter(
    (p) => p.action !== undefined && p.scope !== undefined && p.condition !== undefined,
  );
  const counts = { requests: 0, compared: 0, satisfied: 0, errors: 0, cedarFailures: 0, unparsable: 0 };
  const pl = pools(rng, policyTexts);
  const roles = pl.roles;
  // One scope key per policy (they come in threes) × every edge argument set.
  const edges = pl.scopeKeys
    .filter((_, i) => i % 3 === 0)
    .flatMap((key) =>
      EDGE_ARGS.map((a) => ({
        ...randomRequest(rng, pl, 0),
        ...key,
        // JSON.parse, so "__proto__" is an own argument as it is off the wire.
        args: JSON.parse(JSON.stringify(a)) as unknown,
        time: pick(rng, [0, 6, 1000, 2 ** 31]),
      })),
    );
  for (let n = 0; n < requests + edges.length; n++) {
    const req = edges[n - requests] ?? randomRequest(rng, pl, 0.02);
    const entities = requestEntities(req, roles);
    const wellFormed = callWellFormed(req);
    const store = buildStore(entities);
    if (!cedarSafe(req, roles)) {
      // Never handed to Cedar (it would throw, and leak wasm stack); the fast path must decline it too.
      counts.unparsable++;
      assert.ok(!wellFormed || store === undefined, `the fast path accepts a request Cedar cannot parse`);
      continue;
    }
    for (const approved of [false, true]) {
      counts.requests++;
      let ans: ReturnType<typeof cedar.statefulIsAuthorized> | undefined;
      try {
        ans = cedar.statefulIsAuthorized({
          ...cedarRequest(req, approved),
          preparsedPolicySetId: psetId,
          entities,
        });
      } catch {
        ans = undefined;
      }
      if (ans === undefined || ans.type === 'failure') {
        // Cedar cannot take this request: the fast path must decline it too.
        counts.cedarFailures++;
        assert.ok(!wellFormed || store === undefined, `Cedar failed on a request the fast path accepts`);
        continue;
      }
      if (!wellFormed || store === undefined) continue;
      const satisfied = new Set(ans.response.diagnostics.reason);
      const errored = new Set(ans.response.diagnostics.errors.map((e) => e.policyId));
      const time = requestTime(req);
      // Both stores the engine uses: the eager one (scope filter) and the lazy per-call one.
      const envs = [
        evalEnv(req, store, time, approved),
        evalEnv(req, new CallStore(req, roles), time, approved),
      ];
      for (const p of fast) {
        const expected: Verdict = errored.has(p.id) ? 'error' : satisfied.has(p.id) ? 'satisfied' : 'not';
        for (const env of envs) {
          let got: Verdict;
          try {
            got =
              p.action?.(req.action) === true && p.scope?.(env) === true && p.condition?.(env) === true
                ? 'satisfied'
                : 'not';
          } catch (err) {
            if (!(err instanceof EvaluationError)) throw err;
            got = 'error';
          }
          if (got !== expected) {
            assert.fail(
              `${name}: policy ${p.id} (${staticPolicies[p.id]}): JS ${got}, Cedar ${expected} for ${describe(req, approved)} (DIFF_SEED=${SEED})`,
            );
          }
          counts.compared++;
        }
        if (expected === 'satisfied') counts.satisfied++;
        if (expected === 'error') counts.errors++;
      }
    }
  }
  return { ...counts, policies: compiled.length, compiled: fast.length };
}

function describe(req: DecisionRequest, approved?: boolean): string {
  const { principal: p, ...rest } = req;
  return JSON.stringify({
    principal: { ...p, scopes: [...p.scopes] },
    ...rest,
    ...(approved === undefined ? {} : { approved }),
  });
}

const sorted = (xs: readonly string[]) => [...xs].sort();

/**
 * Engine vs Cedar: decide (fast path, cache) and decideUncached (whole set in Cedar) agree on effect,
 * deciding policies and errors; and mayAllow never hides a tool some call of which is allowed.
 */
function engineDifferential(name: string, files: readonly string[], seed: number, requests: number) {
  const rng = prng(seed);
  const pl = pools(rng, fileTexts(files));
  const engines = [
    PolicyEngine.fromFiles(files, { roles: pl.roles }),
    // A tiny cache: keys are evicted and re-classified all the time.
    PolicyEngine.fromFiles(files, { roles: pl.roles, maxCacheEntries: 16 }),
  ];
  const effects = { allow: 0, deny: 0, approval_required: 0 };
  for (let n = 0; n < requests; n++) {
    const req = randomRequest(rng, pl);
    const engine = pick(rng, engines);
    const fast = engine.decide(req);
    const whole = engine.decideUncached(req);
    const same =
      fast.effect === whole.effect &&
      JSON.stringify(sorted(fast.policies)) === JSON.stringify(sorted(whole.policies)) &&
      JSON.stringify(sorted(fast.errors)) === JSON.stringify(sorted(whole.errors));
    if (!same) {
      assert.fail(
        `${name}: decide ${JSON.stringify(fast)} but Cedar ${JSON.stringify(whole)} for ${describe(req)} (DIFF_SEED=${SEED})`,
      );
    }
    if (fast.effect !== 'deny')
      assert.ok(engine.mayAllow(req), `${name}: mayAllow false but ${fast.effect} for ${describe(req)}`);
    effects[fast.effect]++;
  }
  const stats = engines.map((e) => e.cacheStats());
  const sum = (k: 'hits' | 'dynamic' | 'misses') => stats.reduce((n, st) => n + st[k], 0);
  return { effects, hits: sum('hits'), dynamic: sum('dynamic'), misses: sum('misses') };
}

const N = Math.max(1, Math.round(1500 * SCALE));

test('the JS evaluator agrees with Cedar, policy by policy, on every example and fixture policy', () => {
  const all = fileTexts([...EXAMPLE_FILES, ...FIXTURE_FILES]);
  const r = evaluatorDifferential('examples', all, SEED, N);
  console.log(`# examples: ${JSON.stringify(r)}`);
  assert.equal(r.compiled, r.policies, 'every example policy compiles');
  assert.ok(r.satisfied > 0);
});

test('the JS evaluator agrees with Cedar on rules covering every operator', () => {
  const r = evaluatorDifferential('operators', texts(OPERATORS), SEED + 1, N);
  console.log(`# operators: ${JSON.stringify(r)}`);
  // o-ext (ip()) and o-big (a Long literal beyond 2^53) are Cedar's alone.
  assert.equal(r.compiled, r.policies - 2);
  assert.ok(r.satisfied > 0 && r.errors > 0);
});

test('the JS evaluator agrees with Cedar on evaluation errors and type errors (unvalidated rules)', () => {
  const r = evaluatorDifferential('raw', RAW, SEED + 2, N);
  console.log(`# raw: ${JSON.stringify(r)}`);
  assert.ok(r.compiled >= r.policies - 1);
  assert.ok(r.errors > 0 && r.satisfied > 0);
});

test('the JS evaluator agrees with Cedar on random argument rules', () => {
  const rules = randomRules(prng(SEED + 3), 120);
  assert.ok(rules.length >= 60, `only ${rules.length} random rules validated`);
  const r = evaluatorDifferential('random', rules, SEED + 4, N);
  console.log(`# random: ${JSON.stringify(r)}`);
  assert.ok(r.satisfied > 0);
});

test('decide agrees with decideUncached on every example and fixture file', () => {
  for (const [i, file] of [...EXAMPLE_FILES, ...FIXTURE_FILES].entries()) {
    const r = engineDifferential(file, [file], SEED + 10 + i, Math.ceil(N / 4));
    console.log(`# ${file.slice(ROOT.length)}: ${JSON.stringify(r)}`);
  }
  const r = engineDifferential('all examples', [...EXAMPLE_FILES, ...FIXTURE_FILES], SEED + 9, N);
  console.log(`# all examples: ${JSON.stringify(r)}`);
  assert.ok(r.effects.allow > 0 && r.effects.deny > 0 && r.dynamic > 0);
});

test('decide agrees with decideUncached on the operator rules and random argument rules', () => {
  const ops = engineDifferential('operators', [tmpPolicies('ops.cedar', texts(OPERATORS))], SEED + 20, N);
  console.log(`# operators: ${JSON.stringify(ops)}`);
  assert.ok(ops.effects.allow > 0 && ops.effects.deny > 0 && ops.effects.approval_required > 0);
  const rules = randomRules(prng(SEED + 21), 60);
  const random = engineDifferential(
    'random',
    [tmpPolicies('random.cedar', rules), ...EXAMPLE_FILES],
    SEED + 22,
    N,
  );
  console.log(`# random + examples: ${JSON.stringify(random)}`);
  assert.ok(random.effects.allow > 0 && random.effects.deny > 0 && random.dynamic > 0);
});
