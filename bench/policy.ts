// Policy decision cost: `node --import tsx bench/policy.ts`.
// Generates 12 and 1,000 Cedar policies (per-agent permits, risk forbids, and one argument rule in ten)
// and measures, per tools/call decision, in µs:
//   raw        cedar.isAuthorized with the policy text (parsed every call: the naive integration)
//   uncached   PolicyEngine.decideUncached (pre-parsed set, stateful wasm call, entities built per call)
//   first      PolicyEngine.decide, first decision of a new grant × tool for a principal seen before
//   cold       PolicyEngine.decide on a key never seen (new principal shape: scope filter, Cedar on the
//              matching static policies, argument rule in JS)
//   cached     PolicyEngine.decide, argument-free decision already cached
//   args       PolicyEngine.decide where an argument rule applies (evaluated every call)
// and, in ms, a new grant with 50 tools decided the way the gateway does it (per tool: list_tools +
// mayAllow(call_tool) for tools/list, then the first tools/call with arguments), 100 decisions + 50 checks:
//   grant50_warm  a new grant of a principal seen before
//   grant50_cold  a new grant of a principal never seen (every decision is a cache miss)
// Writes bench/policy.json (flat keys). Env: BENCH_CACHED (100000), BENCH_UNCACHED (2000), BENCH_RAW (300),
// BENCH_RAW_LARGE (20), BENCH_GRANTS (30), BENCH_SIZES (12,1000).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Principal } from '../src/auth/principal.ts';
import { cedar, type EntityJson } from '../src/policy/cedar.ts';
import { type DecisionRequest, PolicyEngine, resourceEntityId } from '../src/policy/index.ts';

const CACHED = envInt('BENCH_CACHED', 100_000);
const UNCACHED = envInt('BENCH_UNCACHED', 2000);
const RAW = envInt('BENCH_RAW', 300);
// Raw calls at 1,000 policies re-parse the whole set each time (tens of ms here); fewer samples.
const RAW_LARGE = envInt('BENCH_RAW_LARGE', 20);
const GRANTS = envInt('BENCH_GRANTS', 30);

function envInt(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
  return v;
}

function policies(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const agent = `Gatehouse::Agent::"agent-${i}"`;
    const server = `Gatehouse::Server::"srv-${i % 20}"`;
    if (i % 10 === 0) {
      // Argument rule for agent i+2 (which has a permit on its server).
      out.push(
        `@id("args-${i}") forbid(principal == Gatehouse::Agent::"agent-${i + 2}", action == Gatehouse::Action::"call_tool", resource in Gatehouse::Server::"srv-${(i + 2) % 20}") unless { context.args.hasTag("repo") && ["org/repo-${i}", "org/shared"].contains(context.args.getTag("repo")) };`,
      );
    } else if (i % 10 === 1) {
      out.push(
        `@id("risk-${i}") forbid(principal in Gatehouse::Role::"role-${i}", action == Gatehouse::Action::"call_tool", resource is Gatehouse::Tool) when { resource.risk == "critical" };`,
      );
    } else {
      out.push(
        `@id("permit-${i}") permit(principal == ${agent}, action in [Gatehouse::Action::"list_tools", Gatehouse::Action::"call_tool"], resource in ${server}) when { resource.risk != "high" && resource.sideEffect != "destructive" };`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}

function principal(agent: string, user = 'alice'): Principal {
  return {
    agent,
    user,
    subject: user,
    actors: [],
    tenant: 'acme',
    tokenId: undefined,
    issuer: 'https://issuer.bench',
    scopes: new Set(['mcp']),
    authMethod: 'jwt',
    expiresAt: 0,
  };
}

function stats(samples: number[]): { p50: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
  return { p50: Math.round(at(0.5) * 100) / 100, p99: Math.round(at(0.99) * 100) / 100 };
}

function time(n: number, fn: (i: number) => void): { p50: number; p99: number } {
  // Warm-up on indexes past the measured ones, so a per-index key is new when it is measured.
  for (let i = 0; i < Math.min(100, n); i++) fn(n + i);
  const samples: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return stats(samples);
}

/** Whole-operation timings in ms (no warm-up: every iteration is a first time). */
function timeMs(n: number, fn: (i: number) => void): { p50: number; p99: number } {
  const samples: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn(i);
    samples[i] = performance.now() - t0;
  }
  return stats(samples);
}

const results: Record<string, number> = {};
const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-policy-'));

const SIZES = (process.env['BENCH_SIZES'] ?? '12,1000').split(',').map(Number);

for (const n of SIZES) {
  const text = policies(n);
  const file = path.join(dir, `p${n}.cedar`);
  writeFileSync(file, text);
  const t0 = performance.now();
  const engine = PolicyEngine.fromFiles([file]);
  results[`policy_${n}_load_ms`] = Math.round((performance.now() - t0) * 10) / 10;

  const free: DecisionRequest = {
    principal: principal('agent-3'),
    action: 'call_tool',
    server: 'srv-3',
    tool: 'search',
    toolAttrs: { risk: 'low', sideEffect: 'read' },
    args: { q: 'hello' },
    grantId: 'grant-1',
  };
  const argReq: DecisionRequest = {
    ...free,
    principal: principal('agent-2'),
    server: 'srv-2',
    args: { repo: 'org/shared', title: 'x' },
  };
  if (engine.decide(free).effect !== 'allow')
    throw new Error('bench setup: argument-free request not allowed');
  if (engine.decide(argReq).effect !== 'allow') throw new Error('bench setup: argument request not allowed');
  if (engine.decide({ ...argReq, args: { repo: 'org/other' } }).effect !== 'deny')
    throw new Error('bench setup');

  const staticPolicies: Record<string, string> = {};
  for (const p of engine.policySet.policies) staticPolicies[p.id] = p.text;
  const rawCall = {
    principal: { type: 'Gatehouse::Agent', id: 'agent-3' },
    action: { type: 'Gatehouse::Action', id: 'call_tool' },
    resource: { type: 'Gatehouse::Tool', id: resourceEntityId('srv-3', 'search') },
    context: {
      grant: { __entity: { type: 'Gatehouse::Grant', id: 'grant-1' } },
      args: { __entity: { type: 'Gatehouse::Args', id: 'call' } },
      approved: false,
      time: 0,
      read: [],
    },
    policies: { staticPolicies },
    entities: <EntityJson[]>[
      { uid: { type: 'Gatehouse::Agent', id: 'agent-3' }, attrs: {}, parents: [] },
      { uid: { type: 'Gatehouse::Server', id: 'srv-3' }, attrs: { trusted: false }, parents: [] },
      {
        uid: { type: 'Gatehouse::Tool', id: resourceEntityId('srv-3', 'search') },
        attrs: { risk: 'low', sideEffect: 'read' },
        parents: [{ type: 'Gatehouse::Server', id: 'srv-3' }],
      },
      { uid: { type: 'Gatehouse::Args', id: 'call' }, attrs: {}, parents: [], tags: { q: 'hello' } },
    ],
  };
  console.error(`${n}: raw`);
  const raw = time(n > 100 ? RAW_LARGE : RAW, () => {
    const a = cedar.isAuthorized(rawCall);
    if (a.type !== 'success' || a.response.decision !== 'allow') throw new Error('bench setup: raw call');
  });
  console.error(`${n}: uncached`);
  const uncached = time(UNCACHED, () => engine.decideUncached(free));
  console.error(`${n}: first`);
  const first = time(UNCACHED, (i) => engine.decide({ ...free, grantId: `fresh-${n}-${i}` }));
  console.error(`${n}: cold`);
  const cold = time(UNCACHED, (i) =>
    engine.decide({ ...argReq, principal: principal('agent-2', `cold-${n}-${i}`), grantId: `cold-${i}` }),
  );
  console.error(`${n}: cached`);
  const cached = time(CACHED, () => engine.decide(free));
  console.error(`${n}: args`);
  const args = time(UNCACHED, (i) =>
    engine.decide({ ...argReq, args: { repo: i % 2 ? 'org/shared' : 'org/x' } }),
  );
  // A new grant with 50 tools of agent-2's server, where the argument rule applies to every call.
  const tools = Array.from({ length: 50 }, (_, t) => ({
    tool: `tool-${t}`,
    toolAttrs: { risk: t % 5 === 0 ? 'medium' : 'low', sideEffect: t % 2 ? 'read' : 'write' },
  }));
  const grant = (p: Principal, grantId: string): void => {
    const base = { principal: p, server: 'srv-2', grantId } as const;
    let shown = 0;
    for (const t of tools) {
      if (
        engine.decide({ ...base, ...t, action: 'list_tools' }).effect === 'allow' &&
        engine.mayAllow({ ...base, ...t, action: 'call_tool' })
      )
        shown++;
    }
    let allowed = 0;
    for (const t of tools) {
      const d = engine.decide({ ...base, ...t, action: 'call_tool', args: { repo: 'org/shared', n: 1 } });
      if (d.effect === 'allow') allowed++;
    }
    if (shown !== 50 || allowed !== 50) throw new Error(`bench setup: grant saw ${shown}/${allowed} of 50`);
  };
  console.error(`${n}: grant50`);
  const grantCold = timeMs(GRANTS, (i) => grant(principal('agent-2', `g50-${n}-${i}`), `g50-${i}`));
  const known = principal('agent-2', `g50-${n}-known`);
  grant(known, 'g50-known');
  const grantWarm = timeMs(GRANTS, (i) => grant(known, `g50-warm-${i}`));
  const all = { raw, uncached, first, cold, cached, args };
  for (const [name, s] of Object.entries(all)) {
    results[`policy_${n}_${name}_us_p50`] = s.p50;
    results[`policy_${n}_${name}_us_p99`] = s.p99;
  }
  results[`policy_${n}_grant50_cold_ms_p50`] = grantCold.p50;
  results[`policy_${n}_grant50_cold_ms_p99`] = grantCold.p99;
  results[`policy_${n}_grant50_warm_ms_p50`] = grantWarm.p50;
  results[`policy_${n}_grant50_warm_ms_p99`] = grantWarm.p99;
  const st = engine.cacheStats();
  console.log(
    `${n} policies (load ${results[`policy_${n}_load_ms`]} ms, cache hits ${st.hits}, dynamic ${st.dynamic})`,
  );
  for (const [name, s] of Object.entries(all)) {
    console.log(
      `  ${name.padEnd(12)} p50 ${String(s.p50).padStart(9)} µs   p99 ${String(s.p99).padStart(9)} µs`,
    );
  }
  for (const [name, s] of Object.entries({ grant50_cold: grantCold, grant50_warm: grantWarm })) {
    console.log(
      `  ${name.padEnd(12)} p50 ${String(s.p50).padStart(9)} ms   p99 ${String(s.p99).padStart(9)} ms`,
    );
  }
}

const out = fileURLToPath(new URL('./policy.json', import.meta.url));
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`wrote ${out}`);
