/**
 * The official MCP conformance suite's authorization-server scenarios against the embedded AS:
 * `conformance authorization --url ISSUER --client-id ID --resource URL` (pinned CLI), with the
 * login and consent completed by the scripted browser (test/helpers/browser.ts) when the suite
 * prints its authorization URL. Fails on any FAILURE check and on any WARNING not listed in
 * EXPECTED_WARNINGS (none today), and when a scenario wrote no checks.json.
 *
 * It runs twice: against the AS alone (test/auth/as-harness.ts) and through a running gateway (the
 * HTTP server's adapter in front of it, as deployed).
 *
 * Scenarios (alpha.12): `authorization-server-metadata-endpoint` (RFC 8414 metadata: issuer,
 * endpoints, response types, S256, client_id_metadata_document_supported) and
 * `authorization-code-grant` (code + PKCE + resource, `iss` (RFC 9207), token response headers).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import { authorizeInBrowser } from '../helpers/browser.ts';
import { bankUpstream, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { seedUser } from '../helpers/oauth.ts';
import { startAs, type TestAs } from './as-harness.ts';

/** Pinned: the release issue #21 measures with. */
const CONFORMANCE_PACKAGE = '@modelcontextprotocol/conformance@0.2.0-alpha.12';
/** The CLI needs Node >= 22; npx supplies it without touching the host Node. */
const NODE_PACKAGE = 'node@22';
const CLIENT_ID = 'conformance-client';
const USER = { username: 'alice', password: 'correct horse battery' };
/** Bound for the whole run: the first npx download can take a minute or two. */
const TIMEOUT_MS = 6 * 60_000;
const SCENARIOS = ['authorization-server-metadata-endpoint', 'authorization-code-grant'];
/** Checks argued impossible to pass (id → reason). None: every check passes. */
const EXPECTED_FAILURES: Record<string, string> = {};

const CheckSchema = z.looseObject({
  id: z.string(),
  status: z.string(),
  errorMessage: z.string().optional(),
});
type Check = z.infer<typeof CheckSchema>;

let t: TestAs;
let gw: TestGateway;
let callbackPort: number;
const work = await mkdtemp(join(tmpdir(), 'gatehouse-as-conformance-'));

/** A free loopback port for the suite's callback server (it takes a fixed --port). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

before(async () => {
  callbackPort = await freePort();
  // A public client (PKCE, token_endpoint_auth_method none), as an MCP client is.
  const client = {
    clientId: CLIENT_ID,
    clientName: 'MCP conformance suite',
    redirectUris: [`http://127.0.0.1:${callbackPort}/callback`],
    grantTypes: ['authorization_code' as const, 'refresh_token' as const],
  };
  t = await startAs({ config: { clients: [client] } });
  const dataDir = join(work, 'gateway');
  await mkdir(dataDir);
  await seedUser(dataDir, USER);
  gw = await startTestGateway(
    { upstreams: { bank: bankUpstream() }, auth: { mode: 'embedded', embedded: { clients: [client] } } },
    { dataDir },
  );
});
after(async () => {
  await t?.close();
  await gw?.close();
  await rm(work, { recursive: true, force: true });
});

interface Run {
  code: string;
  stdout: string;
  stderr: string;
  browserError?: unknown;
}

/** Runs the CLI; when it prints the authorization URL, the scripted browser logs in and consents. */
function runSuite(issuer: string, resource: string, resultsDir: string): Promise<Run> {
  const args = ['-y', '-p', NODE_PACKAGE, '-p', CONFORMANCE_PACKAGE, '--', 'conformance', 'authorization'];
  args.push('--url', issuer, '--client-id', CLIENT_ID, '--resource', resource);
  args.push('--port', String(callbackPort), '--output-dir', resultsDir);
  return new Promise((resolve, reject) => {
    const child = spawn('npx', args, {
      cwd: work,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    const run: Run = { code: '', stdout: '', stderr: '' };
    let browsing = false;
    child.stdout.on('data', (chunk: Buffer) => {
      run.stdout += chunk.toString('utf8');
      const url = run.stdout
        .split('\n')
        .map((l) => l.trim())
        .find((l) => l.startsWith(`${issuer}/oauth/authorize?`));
      if (url === undefined || browsing) return;
      browsing = true;
      void (async () => {
        try {
          const { redirect } = await authorizeInBrowser(url, USER);
          // The browser follows the redirect to the suite's callback server.
          await (await fetch(redirect)).text();
        } catch (err) {
          run.browserError = err;
          // Without the callback the suite would wait 5 minutes.
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        }
      })();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      run.stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      reject(new Error(`conformance cli timed out:\n${run.stdout}\n${run.stderr}`));
    }, TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      run.code = signal ?? String(code);
      resolve(run);
    });
  });
}

/** Every `<results>/<dir>/checks.json`, by the scenario named in the directory. */
async function readChecks(resultsDir: string): Promise<Map<string, Check[]>> {
  const out = new Map<string, Check[]>();
  for (const entry of await readdir(resultsDir).catch(() => [] as string[])) {
    const scenario = SCENARIOS.find((s) => entry.includes(s));
    if (scenario === undefined) continue;
    const raw: unknown = JSON.parse(await readFile(join(resultsDir, entry, 'checks.json'), 'utf8'));
    out.set(scenario, z.array(CheckSchema).parse(raw));
  }
  return out;
}

async function passes(issuer: string, resource: string, name: string): Promise<void> {
  const resultsDir = join(work, `results-${name}`);
  const run = await runSuite(issuer, resource, resultsDir);
  assert.equal(run.browserError, undefined, `scripted browser: ${String(run.browserError)}`);
  const checks = await readChecks(resultsDir);
  const problems: string[] = [];
  for (const scenario of SCENARIOS) {
    const list = checks.get(scenario);
    if (!list || list.length === 0) {
      problems.push(`${scenario}: no checks.json written`);
      continue;
    }
    for (const c of list) {
      if (c.status === 'SUCCESS' || c.status === 'INFO') continue;
      if (EXPECTED_FAILURES[c.id] !== undefined) continue;
      problems.push(`${scenario}: ${c.status} ${c.id}: ${c.errorMessage ?? ''}`);
    }
  }
  for (const id of Object.keys(EXPECTED_FAILURES)) {
    const seen = [...checks.values()].flat().find((c) => c.id === id);
    if (seen?.status === 'SUCCESS') problems.push(`stale expected failure: ${id} passes now`);
  }
  assert.deepEqual(problems, [], `exit ${run.code}\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-2000)}`);
  const grant = checks.get('authorization-code-grant')?.find((c) => c.id === 'authorization-code-grant');
  assert.equal(grant?.status, 'SUCCESS');
  // The suite checks `iss` only when present: make sure it was (RFC 9207).
  const details = z
    .looseObject({ authorizationResponseUrl: z.string() })
    .parse((grant as Record<string, unknown>)['details']);
  assert.equal(new URL(details.authorizationResponseUrl).searchParams.get('iss'), issuer);
  assert.equal(run.code, '0');
}

test('conformance alpha.12 authorization-server scenarios pass against the embedded AS (login by the scripted browser)', async () => {
  await passes(t.issuer, t.resource, 'as');
});

test('conformance alpha.12 authorization-server scenarios pass through a running gateway', async () => {
  await passes(gw.origin, gw.url, 'gateway');
});
