/**
 * MCP 2026-07-28 through Gatehouse: the conformance suite `0.2.0-alpha.12` with `--requirements
 * 2025-11-25` and `--requirements 2026-07-28`, run directly against the 2025-11-25 fixture
 * (test/fixtures/conformance-server.ts) and against the same fixture as a stdio upstream behind
 * Gatehouse with authentication on (bearer tokens of an external IdP). Prints one table per set.
 *
 * - 2025-11-25: the gateway's verdicts equal the fixture's, and every scored scenario passes.
 * - 2026-07-28: the bar is translation, not parity (the fixture alone fails the set). Every scored
 *   scenario through the gateway passes except those in conformance-2026-expected-failures.yaml, each
 *   with its failing check ids and the reason; an entry whose scenario passes or whose listed check no
 *   longer fails is stale and fails the test, like an unexpected failure.
 *
 * A scenario the CLI ran but wrote no checks.json for (it crashed) counts as failed
 * (conformance-harness.ts). Needs network access the first time (npx fetches node@22 and the CLI).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { startConformanceFixtureHttp } from '../fixtures/conformance-server.ts';
import {
  CONFORMANCE_ALPHA_PACKAGE,
  type ConformanceResult,
  runConformanceSuite,
  withFixtureGateway,
} from './conformance-harness.ts';

const EXPECTED_FILE = fileURLToPath(new URL('./conformance-2026-expected-failures.yaml', import.meta.url));
const TEST_TIMEOUT_MS = 15 * 60_000;
/** Which requirement sets to run: GATEHOUSE_CONFORMANCE_REQUIREMENTS=2026-07-28 runs one (default both). */
const SETS = (process.env.GATEHOUSE_CONFORMANCE_REQUIREMENTS ?? '2025-11-25,2026-07-28').split(',');

const ExpectedSchema = z.record(
  z.string(),
  z.array(z.object({ scenario: z.string(), checks: z.array(z.string()).min(1), reason: z.string().min(10) })),
);
type Expected = z.infer<typeof ExpectedSchema>;

function loadExpected(): Expected {
  if (!existsSync(EXPECTED_FILE)) return {};
  return ExpectedSchema.parse(parse(readFileSync(EXPECTED_FILE, 'utf8')) ?? {});
}

function run(
  url: string,
  requirements: string,
  headers?: Record<string, string>,
): Promise<ConformanceResult> {
  return runConformanceSuite(url, { package: CONFORMANCE_ALPHA_PACKAGE, requirements, headers });
}

/** The fixture over Streamable HTTP, alone. */
async function runDirect(requirements: string): Promise<ConformanceResult> {
  const fixture = await startConformanceFixtureHttp();
  try {
    return await run(fixture.url, requirements);
  } finally {
    await fixture.close();
  }
}

/** The fixture as a stdio upstream behind Gatehouse; every request carries an IdP token (auth on). */
async function runThroughGateway(requirements: string): Promise<ConformanceResult> {
  // The suite opens sessions back to back and gives initialize 5 s: a cold fixture (tsx compiles it) on a
  // loaded machine can miss that, so a few processes are kept ready.
  return withFixtureGateway({ authenticated: true, upstream: { pool: { warm: 3 } } }, (url, headers) =>
    run(url, requirements, headers ?? {}),
  );
}

interface Verdict {
  pass: boolean;
  /** Check ids with status FAILURE. */
  failing: string[];
}

function verdicts(result: ConformanceResult): Map<string, Verdict> {
  const map = new Map<string, Verdict>();
  for (const name of [...result.passed, ...result.failed]) {
    const failing = (result.details[name] ?? [])
      .filter((d) => d.startsWith('FAILURE '))
      .map((d) => d.slice('FAILURE '.length).split(':', 1)[0] ?? '');
    map.set(name, { pass: result.passed.includes(name), failing: [...new Set(failing)].sort() });
  }
  return map;
}

function scored(result: ConformanceResult): string[] {
  return [...result.passed, ...result.failed].filter((n) => !result.notScored.includes(n)).sort();
}

function score(result: ConformanceResult): string {
  const names = scored(result);
  const passed = names.filter((n) => result.passed.includes(n)).length;
  const all = result.passed.length + result.failed.length;
  return `${passed}/${names.length} scored pass (${result.passed.length}/${all} run)`;
}

/** A markdown table: one row per scenario, fixture alone beside Gatehouse. */
function table(requirements: string, direct: ConformanceResult, gateway: ConformanceResult): string {
  const d = verdicts(direct);
  const g = verdicts(gateway);
  const names = [...new Set([...d.keys(), ...g.keys()])].sort();
  const cell = (v: Verdict | undefined): string => (v === undefined ? 'absent' : v.pass ? 'pass' : 'FAIL');
  const lines = [
    `--requirements ${requirements}: fixture alone ${score(direct)}; through Gatehouse ${score(gateway)}`,
    '| scenario | scored | fixture alone | through Gatehouse |',
    '|---|---|---|---|',
  ];
  for (const n of names) {
    const isScored = !direct.notScored.includes(n) && !gateway.notScored.includes(n);
    lines.push(`| ${n} | ${isScored ? 'yes' : 'no'} | ${cell(d.get(n))} | ${cell(g.get(n))} |`);
  }
  return lines.join('\n');
}

test('mcp conformance 0.2.0-alpha.12: 2025-11-25 parity and 2026-07-28 translation', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const expected = loadExpected();

  await t.test(
    '--requirements 2025-11-25: identical verdicts, every scored scenario passes',
    {
      skip: !SETS.includes('2025-11-25'),
    },
    async () => {
      const direct = await runDirect('2025-11-25');
      const gateway = await runThroughGateway('2025-11-25');
      console.log(table('2025-11-25', direct, gateway));
      const d = verdicts(direct);
      const g = verdicts(gateway);
      const differ = [...new Set([...d.keys(), ...g.keys()])]
        .filter((n) => d.get(n)?.pass !== g.get(n)?.pass)
        .map(
          (n) => `${n}: fixture ${d.get(n)?.pass} gateway ${g.get(n)?.pass} ${g.get(n)?.failing.join(',')}`,
        );
      assert.deepEqual(differ, [], 'verdicts differ');
      const failing = scored(gateway).filter((n) => !gateway.passed.includes(n));
      assert.deepEqual(failing, [], 'scored 2025-11-25 scenarios fail');
    },
  );

  await t.test(
    '--requirements 2026-07-28: through Gatehouse, only argued expected failures',
    {
      skip: !SETS.includes('2026-07-28'),
    },
    async () => {
      const direct = await runDirect('2026-07-28');
      const gateway = await runThroughGateway('2026-07-28');
      console.log(table('2026-07-28', direct, gateway));
      const listed = expected['2026-07-28'] ?? [];
      const g = verdicts(gateway);
      const stale: string[] = [];
      for (const e of listed) {
        const v = g.get(e.scenario);
        if (!v || v.pass) stale.push(`${e.scenario} passes (or did not run)`);
        else
          for (const c of e.checks)
            if (!v.failing.includes(c)) stale.push(`${e.scenario} ${c} no longer fails`);
      }
      assert.deepEqual(stale, [], `stale entries in ${EXPECTED_FILE}`);
      const unexpected: string[] = [];
      for (const n of scored(gateway)) {
        const v = g.get(n);
        if (!v || v.pass) continue;
        const entry = listed.find((e) => e.scenario === n);
        const extra = v.failing.filter((c) => !entry?.checks.includes(c));
        if (!entry || extra.length > 0) {
          unexpected.push(
            `${n}: ${(gateway.details[n] ?? []).filter((l) => l.startsWith('FAILURE')).join(' | ')}`,
          );
        }
      }
      assert.deepEqual(unexpected, [], 'unexpected 2026-07-28 failures through Gatehouse');
    },
  );
});
