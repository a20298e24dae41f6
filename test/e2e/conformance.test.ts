/**
 * Conformance parity: the official MCP conformance suite must give the same
 * verdicts against the fixture server directly and against the same fixture
 * behind Gatehouse (as a stdio upstream). Any scenario that passes directly
 * but fails through the gateway is something the gateway broke.
 *
 * Scenarios that cannot pass even directly are listed, one name per entry, in
 * conformance-expected-failures.yaml (absent file = none expected). An entry
 * that passes, or that names no scenario, fails the test as stale.
 *
 * The gateway runs put the fixture behind `isolation: session` (a process per session, the default).
 * `GATEHOUSE_CONFORMANCE_ISOLATION=shared` (or `principal`) runs the same comparison with one shared
 * process: the scenarios that sharing gives up (docs/architecture.md, "Upstream process model") are
 * listed in conformance-shared-gives-up.yaml; each must pass directly and fail through the gateway, and
 * every other verdict must match. `npm test` runs the default only.
 *
 * Needs network access the first time (npx fetches node@22 and the CLI).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { startConformanceFixtureHttp } from '../fixtures/conformance-server.ts';
import {
  type ConformanceResult,
  formatSummary,
  runConformanceSuite,
  withFixtureGateway,
} from './conformance-harness.ts';

const EXPECTED_FAILURES_FILE = fileURLToPath(
  new URL('./conformance-expected-failures.yaml', import.meta.url),
);
const GIVES_UP_FILE = fileURLToPath(new URL('./conformance-shared-gives-up.yaml', import.meta.url));
const ISOLATION = z
  .enum(['session', 'principal', 'shared'])
  .parse(process.env.GATEHOUSE_CONFORMANCE_ISOLATION ?? 'session');

/** Two suite runs plus gateway start-up; generous because the first npx run downloads packages. */
const TEST_TIMEOUT_MS = 20 * 60_000;

function loadList(file: string): string[] {
  if (!existsSync(file)) return [];
  const parsed: unknown = parse(readFileSync(file, 'utf8'));
  // An empty file parses to null: treat it as an empty list.
  return z.array(z.string()).parse(parsed ?? []);
}

function loadExpectedFailures(): string[] {
  return loadList(EXPECTED_FAILURES_FILE);
}

/** Scenarios a shared process gives up; none with a process per session. */
function loadGivenUp(): string[] {
  return ISOLATION === 'session' ? [] : loadList(GIVES_UP_FILE);
}

async function runDirect(): Promise<ConformanceResult> {
  const fixture = await startConformanceFixtureHttp();
  try {
    return await runConformanceSuite(fixture.url);
  } finally {
    await fixture.close();
  }
}

/**
 * The same fixture as a stdio upstream behind Gatehouse. With `authenticated`,
 * the gateway trusts a local "company IdP" and the suite's requests carry a
 * bearer token (added by a loopback forwarder: the 0.1.16 CLI cannot send
 * headers); without it, auth.mode is none.
 */
async function runThroughGateway(authenticated: boolean): Promise<ConformanceResult> {
  return withFixtureGateway({ authenticated, upstream: { isolation: ISOLATION } }, (url, headers) =>
    runConformanceSuite(url, headers ? { headers } : {}),
  );
}

/** Every scenario passes unless listed; every listed entry must be a known, still-failing scenario. */
function assertMatchesExpectations(result: ConformanceResult, expectedFailures: string[]): void {
  const known = new Set([...result.passed, ...result.failed]);
  const stale = expectedFailures.filter((name) => !known.has(name) || result.passed.includes(name));
  assert.deepEqual(stale, [], `stale expected failure(s) in ${EXPECTED_FAILURES_FILE}: ${stale.join(', ')}`);
  const unexpected = result.failed.filter((name) => !expectedFailures.includes(name));
  const explained = unexpected.map((name) => `${name}: ${(result.details[name] ?? []).join(' | ')}`);
  assert.deepEqual(unexpected, [], `unexpected conformance failures:\n${explained.join('\n')}`);
}

function verdicts(result: ConformanceResult): Record<string, 'pass' | 'fail'> {
  const map: Record<string, 'pass' | 'fail'> = {};
  for (const name of result.passed) map[name] = 'pass';
  for (const name of result.failed) map[name] = 'fail';
  return map;
}

/**
 * The verdicts the gateway must give: the direct ones, except that the scenarios a shared process
 * gives up fail. Each of those must pass directly (else the entry is stale: it says nothing).
 */
function expectedThroughGateway(direct: ConformanceResult): Record<string, 'pass' | 'fail'> {
  const expected = verdicts(direct);
  const givenUp = loadGivenUp();
  const stale = givenUp.filter((name) => expected[name] !== 'pass');
  assert.deepEqual(
    stale,
    [],
    `stale entries in ${GIVES_UP_FILE} (they do not pass directly): ${stale.join(', ')}`,
  );
  for (const name of givenUp) expected[name] = 'fail';
  return expected;
}

/** Lists each scenario whose verdict differs, with the gateway run's failure details. */
function describeDivergence(direct: ConformanceResult, gateway: ConformanceResult): string {
  const directVerdicts = verdicts(direct);
  const gatewayVerdicts = verdicts(gateway);
  const names = [...new Set([...Object.keys(directVerdicts), ...Object.keys(gatewayVerdicts)])].sort();
  return names
    .filter((name) => directVerdicts[name] !== gatewayVerdicts[name])
    .map((name) => {
      const why = (gateway.details[name] ?? []).filter((line) => line.startsWith('FAILURE')).join(' | ');
      return `${name}: direct=${directVerdicts[name] ?? 'absent'} gateway=${gatewayVerdicts[name] ?? 'absent'} ${why}`;
    })
    .join('\n');
}

test('mcp conformance verdicts are identical direct and through gatehouse', {
  timeout: TEST_TIMEOUT_MS,
}, async (t) => {
  const expectedFailures = loadExpectedFailures();
  let direct: ConformanceResult | undefined;

  await t.test('fixture over streamable http, direct', async () => {
    direct = await runDirect();
    console.log(formatSummary('direct', direct));
    assertMatchesExpectations(direct, expectedFailures);
  });

  await t.test('same fixture as a stdio upstream behind gatehouse', async () => {
    assert.ok(direct, 'direct run produced no result to compare against');
    const gateway = await runThroughGateway(false);
    console.log(formatSummary(`gatehouse (isolation ${ISOLATION})`, gateway));
    assert.deepEqual(
      verdicts(gateway),
      expectedThroughGateway(direct),
      `verdicts differ:\n${describeDivergence(direct, gateway)}`,
    );
  });

  await t.test(
    'same fixture behind gatehouse with authentication on (bearer token from an external IdP)',
    async () => {
      assert.ok(direct, 'direct run produced no result to compare against');
      const gateway = await runThroughGateway(true);
      console.log(formatSummary(`gatehouse+auth (isolation ${ISOLATION})`, gateway));
      assert.deepEqual(
        verdicts(gateway),
        expectedThroughGateway(direct),
        `verdicts differ:\n${describeDivergence(direct, gateway)}`,
      );
    },
  );
});
