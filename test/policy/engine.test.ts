/**
 * Decisions (allow / deny / approval_required with policy ids), the per-grant cache, atomic reload,
 * and the table-driven test runner.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Principal } from '../../src/auth/principal.ts';
import {
  PolicyEngine,
  PolicyLoadError,
  policyTestCommand,
  runPolicyTests,
  type ToolAttributes,
} from '../../src/policy/index.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/policies/', import.meta.url));
const exampleFiles = ['readonly-agent.cedar', 'one-repo.cedar', 'approval.cedar'].map((f) =>
  join(EXAMPLES, f),
);

function principal(agent: string, extra: Partial<Principal> = {}): Principal {
  return {
    agent,
    user: undefined,
    subject: agent,
    actors: [],
    tenant: undefined,
    tokenId: undefined,
    issuer: 'https://issuer.test',
    scopes: new Set(),
    authMethod: 'jwt',
    expiresAt: 0,
    ...extra,
  };
}

function tmpFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gh-policy-')), name);
  writeFileSync(file, text);
  return file;
}

const read: ToolAttributes = { risk: 'low', sideEffect: 'read' };
const write: ToolAttributes = { risk: 'medium', sideEffect: 'write' };
const highRisk: ToolAttributes = { risk: 'high', sideEffect: 'external' };

test('deny by default: no permit, no policies', () => {
  const engine = PolicyEngine.fromFiles(exampleFiles);
  const d = engine.decide({
    principal: principal('stranger'),
    action: 'call_tool',
    server: 'files',
    tool: 'read_file',
    toolAttrs: read,
    grantId: 'g',
  });
  assert.deepEqual(d, { effect: 'deny', policies: [], errors: [] });
});

test('allow carries the permitting policy ids; a forbid carries its id', () => {
  const engine = PolicyEngine.fromFiles(exampleFiles);
  const reporter = principal('reporter');
  const allow = engine.decide({
    principal: reporter,
    action: 'call_tool',
    server: 'files',
    tool: 'read_file',
    toolAttrs: read,
    grantId: 'g',
  });
  assert.deepEqual(allow, { effect: 'allow', policies: ['reporter-read-only'], errors: [] });
  const alice = principal('ops-bot', { user: 'alice', tenant: 'acme' });
  const forbid = engine.decide({
    principal: alice,
    action: 'call_tool',
    server: 'files',
    tool: 'wipe',
    toolAttrs: { risk: 'low', sideEffect: 'destructive' },
    grantId: 'g',
  });
  assert.equal(forbid.effect, 'deny');
  assert.deepEqual(forbid.policies, ['no-destructive-untrusted']);
});

test('approval_required when only @approval forbids deny, allow once approved', () => {
  const engine = PolicyEngine.fromFiles(exampleFiles);
  const alice = principal('ops-bot', { user: 'alice', tenant: 'acme' });
  const base = {
    principal: alice,
    action: 'call_tool',
    server: 'deploy',
    tool: 'release',
    toolAttrs: highRisk,
    grantId: 'g',
  } as const;
  const pending = engine.decide(base);
  assert.equal(pending.effect, 'approval_required');
  assert.deepEqual(pending.policies, ['high-risk-needs-approval', 'acme-users']);
  assert.deepEqual(engine.decide({ ...base, approved: true }), {
    effect: 'allow',
    policies: ['acme-users'],
    errors: [],
  });
  // No permit at all: approving would not help, so it is a plain deny.
  const noUser = engine.decide({ ...base, principal: principal('ops-bot', { tenant: 'acme' }) });
  assert.deepEqual(noUser.effect, 'deny');
  assert.deepEqual(noUser.policies, ['high-risk-needs-approval']);
});

test('upstream annotations are believed only for trusted servers', () => {
  const engine = PolicyEngine.fromFiles(exampleFiles);
  const reporter = principal('reporter');
  const hint = { annotations: { readOnlyHint: true } };
  const req = {
    principal: reporter,
    action: 'call_tool',
    server: 'x',
    tool: 'lookup',
    grantId: 'g',
  } as const;
  assert.equal(engine.decide({ ...req, toolAttrs: hint }).effect, 'deny');
  assert.equal(engine.decide({ ...req, toolAttrs: { ...hint, serverTrusted: true } }).effect, 'allow');
});

test('argument-free decisions are cached; argument-dependent ones are evaluated every time', () => {
  const engine = PolicyEngine.fromFiles(exampleFiles);
  const reporter = principal('reporter');
  const req = {
    principal: reporter,
    action: 'call_tool',
    server: 'files',
    tool: 'read_file',
    toolAttrs: read,
    grantId: 'g',
  } as const;
  const first = engine.decide(req);
  const second = engine.decide({ ...req, args: { path: '/etc/passwd' } });
  assert.equal(second, first, 'same frozen decision object from the cache');
  assert.ok(Object.isFrozen(first));
  assert.deepEqual(engine.cacheStats(), { hits: 1, misses: 1, dynamic: 0, size: 1, generation: 1 });

  const triage = principal('triage');
  const call = {
    principal: triage,
    action: 'call_tool',
    server: 'github',
    tool: 'create_issue',
    toolAttrs: write,
    grantId: 'g',
  } as const;
  assert.equal(engine.decide({ ...call, args: { repo: 'acme/widgets' } }).effect, 'allow');
  assert.equal(engine.decide({ ...call, args: { repo: 'acme/secret' } }).effect, 'deny');
  assert.equal(engine.decide({ ...call, args: { repo: 'acme/widgets' } }).effect, 'allow');
  const stats = engine.cacheStats();
  assert.equal(stats.dynamic, 2);
  assert.equal(stats.misses, 2);
  // list_tools for the same agent is not touched by the argument rule (it only constrains call_tool).
  engine.decide({ ...call, action: 'list_tools' });
  engine.decide({ ...call, action: 'list_tools' });
  assert.equal(engine.cacheStats().hits, 2);
});

test('the cache is per grant and per principal', () => {
  const file = tmpFile(
    'g.cedar',
    'permit(principal, action, resource) when { context.grant == Gatehouse::Grant::"g1" };\n',
  );
  const engine = PolicyEngine.fromFiles([file]);
  const req = {
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g1',
  } as const;
  assert.equal(engine.decide(req).effect, 'allow');
  assert.equal(engine.decide({ ...req, grantId: 'g2' }).effect, 'deny');
  assert.equal(engine.decide({ ...req, principal: principal('b') }).effect, 'allow');
  assert.equal(engine.cacheStats().size, 3);
});

test('time- and taint-dependent policies are not cached', () => {
  const file = tmpFile(
    't.cedar',
    [
      '@id("office-hours") permit(principal, action, resource) when { context.time < 1000 };',
      '@id("no-exfil") forbid(principal, action, resource) when { context.read.contains("secret") };',
    ].join('\n'),
  );
  const engine = PolicyEngine.fromFiles([file]);
  const req = {
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g',
  } as const;
  assert.equal(engine.decide({ ...req, time: 10 }).effect, 'allow');
  assert.equal(engine.decide({ ...req, time: 5000 }).effect, 'deny');
  const tainted = engine.decide({ ...req, time: 10, read: ['secret'] });
  assert.deepEqual([tainted.effect, tainted.policies], ['deny', ['no-exfil']]);
});

test('a forbid that errors at evaluation denies (fail closed)', () => {
  const file = tmpFile(
    'e.cedar',
    [
      '@id("all") permit(principal, action, resource);',
      '@id("overflow") forbid(principal, action, resource) when { context.time * 9223372036854775807 > 0 };',
    ].join('\n'),
  );
  const engine = PolicyEngine.fromFiles([file]);
  const d = engine.decide({
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g',
    time: 10,
  });
  assert.equal(d.effect, 'deny');
  assert.deepEqual(d.policies, ['overflow']);
  assert.equal(d.errors.length, 1);
  assert.match(d.errors[0] ?? '', /^overflow: /);
});

test('reload swaps atomically and invalidates the cache; a failed reload keeps the old policies', () => {
  const v1 = tmpFile(
    'v1.cedar',
    '@id("allow-a") permit(principal == Gatehouse::Agent::"a", action, resource);\n',
  );
  const v2 = tmpFile(
    'v2.cedar',
    '@id("allow-b") permit(principal == Gatehouse::Agent::"b", action, resource);\n',
  );
  const broken = tmpFile('broken.cedar', 'permit(principal, action, resource) when { resource.nope };\n');
  const engine = PolicyEngine.fromFiles([v1]);
  const req = {
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g',
  } as const;
  assert.equal(engine.decide(req).effect, 'allow');
  assert.throws(() => engine.reload([broken]), PolicyLoadError);
  assert.equal(engine.generation, 1);
  assert.equal(engine.decide(req).effect, 'allow');
  engine.reload([v2]);
  assert.equal(engine.generation, 2);
  assert.equal(engine.cacheStats().size, 0);
  assert.equal(engine.decide(req).effect, 'deny');
  assert.equal(engine.decide({ ...req, principal: principal('b') }).effect, 'allow');
  // Reload back onto the first slot (generations alternate pre-parsed slots).
  engine.reload([v1]);
  assert.equal(engine.decide(req).effect, 'allow');
});

test('roles, tenants, users and resource kinds become entities', () => {
  const file = tmpFile(
    'r.cedar',
    [
      '@id("ops") permit(principal in Gatehouse::Role::"ops", action == Gatehouse::Action::"read_resource", resource in Gatehouse::Server::"docs");',
      '@id("alice-prompts") permit(principal, action == Gatehouse::Action::"get_prompt", resource is Gatehouse::Prompt) when { principal has user && principal.user == Gatehouse::User::"alice" && resource.name == "summarize" };',
      '@id("delegated") forbid(principal, action, resource) when { principal.actors.contains("rogue") };',
    ].join('\n'),
  );
  const engine = PolicyEngine.fromFiles([file], { roles: { agents: { bot: ['ops'] } } });
  const bot = principal('bot');
  assert.equal(
    engine.decide({
      principal: bot,
      action: 'read_resource',
      server: 'docs',
      tool: 'file:///a',
      grantId: 'g',
    }).effect,
    'allow',
  );
  assert.equal(
    engine.decide({
      principal: principal('other'),
      action: 'read_resource',
      server: 'docs',
      tool: 'file:///a',
      grantId: 'g',
    }).effect,
    'deny',
  );
  const alice = principal('bot', { user: 'alice' });
  assert.equal(
    engine.decide({ principal: alice, action: 'get_prompt', server: 'p', tool: 'summarize', grantId: 'g' })
      .effect,
    'allow',
  );
  const rogue = principal('bot', { user: 'alice', actors: ['rogue'] });
  assert.deepEqual(
    engine.decide({ principal: rogue, action: 'get_prompt', server: 'p', tool: 'summarize', grantId: 'g' })
      .policies,
    ['delegated'],
  );
});

test('the example table passes', () => {
  const result = runPolicyTests(join(EXAMPLES, 'tests.yaml'));
  assert.deepEqual(result.failed, []);
  assert.equal(result.passed, 26);
});

test('a wrong expectation fails, with the policies that decided, and the command exits 1', () => {
  const table = tmpFile(
    'tests.yaml',
    [
      `policies: [${exampleFiles.map((f) => JSON.stringify(f)).join(', ')}]`,
      'tools: { deploy__release: { risk: high } }',
      'cases:',
      '  - { name: right, principal: { agent: reporter }, action: list_tools, server: s, tool: t, expect: allow }',
      '  - { name: wrong, principal: { agent: ops-bot, user: alice, tenant: acme }, server: deploy, tool: release, expect: allow }',
    ].join('\n'),
  );
  const result = runPolicyTests(table);
  assert.equal(result.passed, 1);
  assert.deepEqual(result.failed, [
    {
      case: 'wrong',
      expected: 'allow',
      got: 'approval_required',
      policies: ['high-risk-needs-approval', 'acme-users'],
      errors: [],
    },
  ]);
  const lines: string[] = [];
  assert.equal(
    policyTestCommand(table, (l) => lines.push(l)),
    1,
  );
  assert.match(lines[0] ?? '', /^FAIL wrong: expected allow, got approval_required/);
  assert.equal(lines.at(-1), '1 passed, 1 failed');
  assert.equal(
    policyTestCommand(join(EXAMPLES, 'tests.yaml'), () => {}),
    0,
  );
});

test('a malformed table or invalid policies exit 2', () => {
  const lines: string[] = [];
  assert.equal(
    policyTestCommand(tmpFile('t.yaml', 'cases: [{ name: x }]\n'), (l) => lines.push(l)),
    2,
  );
  assert.match(lines[0] ?? '', /^error: invalid policy test file/);
  const dir = mkdtempSync(join(tmpdir(), 'gh-policy-'));
  writeFileSync(join(dir, 'bad.cedar'), 'permit(principal, action, resource) when { resource.nope };\n');
  writeFileSync(
    join(dir, 'tests.yaml'),
    'cases: [{ name: x, principal: { agent: a }, server: s, tool: t, expect: deny }]\n',
  );
  assert.equal(
    policyTestCommand(join(dir, 'tests.yaml'), (l) => lines.push(l)),
    2,
  );
  assert.match(lines.at(-1) ?? '', /bad\.cedar:1/);
});

test('cached and split evaluation agree with whole-set evaluation', () => {
  const engine = PolicyEngine.fromFiles(exampleFiles);
  const principals = [
    principal('reporter'),
    principal('triage'),
    principal('ops-bot', { user: 'alice', tenant: 'acme' }),
    principal('ops-bot', { tenant: 'acme' }),
  ];
  const tools: [string, string, ToolAttributes][] = [
    ['github', 'create_issue', write],
    ['github', 'delete_repo', { risk: 'high', sideEffect: 'destructive', serverTrusted: true }],
    ['files', 'wipe', { risk: 'high', sideEffect: 'destructive' }],
    ['deploy', 'release', highRisk],
    ['files', 'read_file', read],
  ];
  const argsList = [undefined, { repo: 'acme/widgets' }, { repo: 'acme/secret' }, { repo: 42 }];
  let checked = 0;
  for (let round = 0; round < 2; round++) {
    for (const p of principals) {
      for (const [server, tool, toolAttrs] of tools) {
        for (const action of ['call_tool', 'list_tools'] as const) {
          for (const args of argsList) {
            for (const approved of [false, true]) {
              const req = { principal: p, action, server, tool, toolAttrs, args, approved, grantId: 'g' };
              const cached = engine.decide(req);
              const whole = engine.decideUncached(req);
              assert.deepEqual(
                { effect: cached.effect, policies: [...cached.policies].sort() },
                { effect: whole.effect, policies: [...whole.policies].sort() },
                JSON.stringify({ agent: p.agent, user: p.user, action, server, tool, args, approved }),
              );
              checked++;
            }
          }
        }
      }
    }
  }
  assert.equal(checked, 640);
  const stats = engine.cacheStats();
  assert.ok(stats.hits > 0 && stats.dynamic > 0);
});

test('principals named like Object.prototype members have no roles (and do not crash the decision)', () => {
  const file = tmpFile(
    'proto.cedar',
    '@id("ops") permit(principal in Gatehouse::Role::"ops", action == Gatehouse::Action::"read_resource", resource in Gatehouse::Server::"docs");',
  );
  const engine = PolicyEngine.fromFiles([file], {
    roles: { agents: { bot: ['ops'] }, users: { alice: ['ops'] } },
  });
  for (const [agent, user] of [
    ['constructor', undefined],
    ['__proto__', undefined],
    ['bot-x', 'toString'],
    ['bot-y', 'hasOwnProperty'],
  ] as const) {
    const p = principal(agent, user === undefined ? {} : { user });
    assert.equal(
      engine.decide({
        principal: p,
        action: 'read_resource',
        server: 'docs',
        tool: 'file:///a',
        grantId: `g-${agent}`,
      }).effect,
      'deny',
      `${agent}/${user}`,
    );
  }
});

test('a new grant reuses the decisions of its principal unless a policy reads context.grant', () => {
  const engine = PolicyEngine.fromFiles(exampleFiles);
  const req = {
    principal: principal('reporter'),
    action: 'call_tool',
    server: 'files',
    tool: 'read_file',
    toolAttrs: read,
    grantId: 'g1',
  } as const;
  const first = engine.decide(req);
  assert.equal(engine.decide({ ...req, grantId: 'g2' }), first, 'same cached decision for another grant');
  assert.deepEqual(engine.cacheStats(), { hits: 1, misses: 1, dynamic: 0, size: 1, generation: 1 });
  // A policy that reads the grant through the whole context record makes decisions per grant again.
  const file = tmpFile(
    'ctx.cedar',
    '@id("ctx") permit(principal, action, resource) when { context == context };\n',
  );
  const perGrant = PolicyEngine.fromFiles([file]);
  perGrant.decide(req);
  perGrant.decide({ ...req, grantId: 'g2' });
  assert.equal(perGrant.cacheStats().size, 2);
});

test('arguments read through a Gatehouse::Args literal are per-call context, not cached', () => {
  const file = tmpFile(
    'lit.cedar',
    [
      '@id("all") permit(principal, action, resource);',
      '@id("no-force") forbid(principal, action, resource) when { Gatehouse::Args::"call".hasTag("force") };',
    ].join('\n'),
  );
  const engine = PolicyEngine.fromFiles([file]);
  assert.deepEqual(engine.policySet.byId.get('no-force')?.dynamicFields, ['args']);
  const req = {
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g',
  } as const;
  assert.equal(engine.decide({ ...req, args: {} }).effect, 'allow');
  assert.equal(engine.decide({ ...req, args: { force: true } }).effect, 'deny');
  assert.equal(engine.decide({ ...req, args: {} }).effect, 'allow');
});

test('an argument named __proto__ is a tag like any other', () => {
  const file = tmpFile(
    'proto-arg.cedar',
    [
      '@id("all") permit(principal, action, resource);',
      '@id("no-proto") forbid(principal, action, resource) when { context.args.hasTag("__proto__") };',
    ].join('\n'),
  );
  const engine = PolicyEngine.fromFiles([file]);
  const req = {
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g',
  } as const;
  const args = JSON.parse('{"__proto__": "x"}') as unknown;
  assert.equal(engine.decide({ ...req, args }).effect, 'deny');
  assert.equal(engine.decideUncached({ ...req, args }).effect, 'deny');
  assert.equal(engine.decide({ ...req, args: { other: 'x' } }).effect, 'allow');
});

test('lone surrogates never reach Cedar: denied, and the wasm instance stays healthy', () => {
  // Each lone surrogate handed to the wasm glue throws through the wasm frames and leaks wasm stack;
  // about a thousand of them used to break every later decision ("memory access out of bounds").
  const file = tmpFile(
    'lone.cedar',
    [
      '@id("all") permit(principal, action, resource);',
      '@id("repo") forbid(principal, action, resource) when { context.args.hasTag("repo") && context.args.getTag("repo") == "x" };',
    ].join('\n'),
  );
  const engine = PolicyEngine.fromFiles([file]);
  const req = {
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g',
  } as const;
  const bad = [
    { ...req, args: { repo: 'x\ud800' } },
    { ...req, args: { '\udc00': 'x' } },
    { ...req, tool: 't\ud800' },
    { ...req, grantId: 'g\udbff' },
    { ...req, read: ['\ud800'] },
    { ...req, principal: principal('a\ud800') },
  ];
  for (let i = 0; i < 3000; i++) {
    const r = bad[i % bad.length] ?? req;
    for (const d of [engine.decide(r), engine.decideUncached(r)]) {
      assert.equal(d.effect, 'deny');
      assert.match(d.errors[0] ?? '', /lone UTF-16 surrogate/);
    }
  }
  assert.equal(engine.decideUncached({ ...req, args: { repo: 'y' } }).effect, 'allow');
  assert.equal(engine.decide({ ...req, args: { repo: 'x' } }).effect, 'deny');
  assert.equal(engine.decide({ ...req, args: { repo: 'y' } }).effect, 'allow');
  assert.equal(engine.mayAllow({ ...req, tool: 't\ud800' }), false);
});

test('an evaluation error on the fast path is Cedar’s: same error, erroring forbid denies', () => {
  const file = tmpFile(
    'overflow-args.cedar',
    [
      '@id("all") permit(principal, action, resource);',
      '@id("limit") forbid(principal, action, resource) when { context.numbers.hasTag("n") && context.numbers.getTag("n") * 1099511627776 > 5 };',
    ].join('\n'),
  );
  const engine = PolicyEngine.fromFiles([file]);
  const req = {
    principal: principal('a'),
    action: 'call_tool',
    server: 's',
    tool: 't',
    grantId: 'g',
  } as const;
  assert.equal(engine.decide({ ...req, args: { n: 0 } }).effect, 'allow');
  assert.deepEqual(engine.decide({ ...req, args: { n: 1 } }).policies, ['limit']);
  const overflow = engine.decide({ ...req, args: { n: 2 ** 40 } });
  assert.deepEqual(overflow, engine.decideUncached({ ...req, args: { n: 2 ** 40 } }));
  assert.equal(overflow.effect, 'deny');
  assert.deepEqual(overflow.policies, ['limit']);
  assert.match(overflow.errors[0] ?? '', /^limit: integer overflow/);
});

test('long client-supplied names are hashed into cache keys without mixing decisions up', () => {
  const long = (c: string) => c.repeat(5000);
  const file = tmpFile(
    'long.cedar',
    `@id("one") permit(principal, action, resource == Gatehouse::Tool::"s__${long('a')}");\n`,
  );
  const engine = PolicyEngine.fromFiles([file]);
  const req = { principal: principal('a'), action: 'call_tool', server: 's', grantId: 'g' } as const;
  assert.equal(engine.decide({ ...req, tool: long('a') }).effect, 'allow');
  assert.equal(engine.decide({ ...req, tool: long('b') }).effect, 'deny');
  assert.equal(engine.decide({ ...req, tool: long('a') }).effect, 'allow');
  assert.equal(engine.cacheStats().size, 2);
});
