/**
 * The credential broker end to end, with real parts only: a fake SaaS (a second oidc-provider as its
 * authorization server, an API that checks every token by introspection, an MCP server that calls the
 * API with the Authorization header the gateway sends), server-everything over stdio, the embedded
 * authorization server, and the `gatehouse credentials` CLI as a separate process.
 *
 * Three lease kinds side by side: a minted token (refresh_token grant, narrowed scope and resource), a
 * per-user OAuth connection (URL-mode elicitation, verified login, Gatehouse's consent, code + PKCE),
 * and a static key injected into a stdio process. The last test is the canary: no credential value
 * appears in any log line, audit record or message the agent saw during the whole file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { EmbeddedAs } from '../../src/auth/as/index.ts';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { CONNECT_CLIENT_ID } from '../../src/credentials/connect.ts';
import { type RunningGateway, startGateway } from '../../src/gateway.ts';
import { openSecretStore } from '../../src/secrets/store.ts';
import { browse, csrfOf, Jar, postForm } from '../auth/as-harness.ts';
import { type FakeSaas, startFakeSaas } from '../fixtures/saas/index.ts';
import { authorizeInBrowser } from '../helpers/browser.ts';
import { allTools, eventually, processGone, refusedOnceRevoked } from '../helpers/gateway.ts';
import { seedUser } from '../helpers/oauth.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const everything = createRequire(import.meta.url).resolve(
  '@modelcontextprotocol/server-everything/dist/index.js',
);
/** Obviously fake canaries, unique per run. */
const STATIC_KEY = `fake-canary-static-key-${randomBytes(8).toString('hex')}`;
const AGENT_SECRET = `fake-canary-agent-secret-${randomBytes(8).toString('hex')}`;
const ALICE = { username: 'alice', password: 'fake-canary-password-alice' };
const BOB = { username: 'bob', password: 'fake-canary-password-bob' };

let saas: FakeSaas;
let gw: RunningGateway;
let dataDir: string;
let serviceRefreshToken: string;
const logs: string[] = [];
/** Everything the agent's client received (response bodies, SSE included). */
const seenByAgent: string[] = [];

function config(): GatehouseConfigInput {
  const allowAll = join(dataDir, 'allow-all.cedar');
  writeFileSync(allowAll, '@id("allow-all")\npermit (principal, action, resource);\n');
  return {
    server: { host: '127.0.0.1', port: 0 },
    logging: { level: 'debug' },
    auth: {
      mode: 'embedded',
      embedded: {
        clients: [{ clientId: 'agent-1', clientSecret: AGENT_SECRET, grantTypes: ['client_credentials'] }],
      },
    },
    policy: { files: [allowAll] },
    broker: { allowLoopbackHttp: true },
    credentials: {
      // Minted: the broker keeps a service account's refresh token and mints narrowed, short-lived tokens.
      reports: {
        type: 'oauth',
        grant: 'refresh_token',
        issuer: saas.issuer,
        clientId: saas.clientId,
        clientSecret: { secret: 'saas-client' },
        subjectSecret: { secret: 'saas-service-refresh' },
        scope: 'records:read',
        resource: saas.apiUrl,
        maxLifetimeSec: 120,
      },
      // The same, for a server that revokes a whole grant with one token: leave tokens to expire.
      'reports-keep': {
        type: 'oauth',
        grant: 'client_credentials',
        issuer: saas.issuer,
        clientId: saas.clientId,
        clientSecret: { secret: 'saas-client' },
        scope: 'records:read',
        resource: saas.apiUrl,
        revokeOnEnd: false,
      },
      // Per user: each user connects their own account once.
      records: {
        type: 'oauth-user',
        issuer: saas.issuer,
        clientId: saas.clientId,
        clientSecret: { secret: 'saas-client' },
        scope: 'records:read',
        resource: saas.apiUrl,
      },
      // Static: an API key that cannot be narrowed, injected per grant.
      'records-key': { type: 'static', secret: 'records-api-key' },
    },
    pinning: { newTools: 'trust' },
    upstreams: {
      reports: {
        type: 'http',
        url: saas.mcpUrl,
        headers: { Authorization: { credential: 'reports', format: 'Bearer {}' } },
      },
      keep: {
        type: 'http',
        url: saas.mcpUrl,
        headers: { Authorization: { credential: 'reports-keep', format: 'Bearer {}' } },
      },
      mine: {
        type: 'http',
        url: saas.mcpUrl,
        headers: { Authorization: { credential: 'records', format: 'Bearer {}' } },
      },
      everything: {
        type: 'stdio',
        command: process.execPath,
        args: [everything, 'stdio'],
        env: { RECORDS_API_KEY: { credential: 'records-key' } },
      },
    },
  };
}

before(async () => {
  saas = await startFakeSaas({ accessTokenRevocation: 'token', accessTokenTtlSec: 120 });
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-credentials-e2e-'));
  serviceRefreshToken = await saas.mintRefreshToken('svc-reports', 'records:read records:write');
  const { store } = openSecretStore(dataDir);
  await store.set('saas-client', saas.clientSecret, { service: 'saas' });
  await store.set('saas-service-refresh', serviceRefreshToken, { service: 'reports' });
  await store.set('records-api-key', STATIC_KEY, { service: 'records' });
  await store.close();
  await seedUser(dataDir, ALICE);
  await seedUser(dataDir, BOB);
  const logDestination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  gw = await startGateway({ config: config(), dataDir, logDestination });
  saas.setRedirectUris([`${gw.origin}/connect/callback`]);
});

after(async () => {
  if (process.env.DUMP_LOGS) process.stderr.write(logs.join(''));
  await gw?.close();
  await saas?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** An access token of agent-1 acting for `user` (or for no one). */
function agentToken(user?: string): Promise<string> {
  const as = gw.parts.authServer as unknown as EmbeddedAs;
  return as.mintAccessToken({ clientId: 'agent-1', ...(user ? { user } : {}), scope: 'mcp' });
}

/** An SDK client whose every received byte is kept for the canary scan. */
async function connect(token: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'credentials-e2e', version: '1' }, { capabilities });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gw.url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        void res
          .clone()
          .text()
          .then((t) => seenByAgent.push(t))
          .catch(() => {});
        return res;
      },
    }),
  );
  return client;
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), ...args, '--data-dir', dataDir],
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Event {
  type: string;
  server?: string;
  lease?: { id: string; credential: string };
  principal?: { agent?: string; user?: string };
  detail?: Record<string, unknown>;
}

/** Every audit event, read from the segment files (the durable log). */
function auditEvents(): Event[] {
  const dir = join(dataDir, 'audit');
  return readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .sort()
    .flatMap((name) => {
      const body = readFileSync(join(dir, name), 'utf8');
      return body
        .slice(0, body.lastIndexOf('\n') + 1)
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line.slice(65)) as { event: Event }).event);
    });
}

/** Waits until at least `n` audit events match, and returns them (best-effort records land a moment later). */
async function eventuallyEvents(match: (e: Event) => boolean, n: number): Promise<Event[]> {
  await eventually(`${n} matching audit events`, () => auditEvents().filter(match).length >= n);
  return auditEvents().filter(match);
}

function text(r: unknown): string {
  return ((r as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('\n');
}

async function rpcError(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(
    (r) => assert.fail(`expected an error, got ${JSON.stringify(r)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof McpError, String(err));
  return err;
}

test('minted lease: the upstream gets a narrowed, short-lived token; the agent never sees it; revoking the service ends it upstream', async () => {
  const client = await connect(await agentToken());
  try {
    const r = await client.callTool({ name: 'reports__list_records', arguments: {} });
    assert.notEqual(r.isError, true, text(r));
    assert.match(text(r), /svc-reports/, 'the API answered for the service account');
    const seen = saas.apiRequests.at(-1);
    assert.ok(seen?.active, 'the API accepted the minted token');
    assert.equal(seen.scope, 'records:read', 'narrowed from records:read records:write');
    assert.deepEqual([seen.aud].flat(), [saas.apiUrl], 'audience is the API (RFC 8707 resource)');
    assert.ok((seen.exp ?? 0) * 1000 <= Date.now() + 121_000, 'short-lived');
    const minted = seen.token as string;
    assert.notEqual(minted, serviceRefreshToken);

    // The upstream echoes what it received: the agent gets it redacted.
    const echo = await client.callTool({ name: 'reports__echo_auth', arguments: {} });
    assert.ok(!JSON.stringify(echo).includes(minted), 'the minted token never reaches the agent');
    assert.match(text(echo), /Bearer \[REDACTED:lease:ls_/);

    const listed = await cli('credentials', 'list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /reports\s+minted\s+saas-service-refresh/);
    assert.ok(!listed.stdout.includes(minted) && !listed.stdout.includes(serviceRefreshToken));

    const revoked = await cli('credentials', 'revoke', '--service', 'reports');
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked 1 lease/);
    // The gateway polls the store (250 ms): the next message after that is refused.
    const err = await refusedOnceRevoked(client, 'reports__list_records');
    assert.equal(err.code, -32024, err.message);
    assert.equal((err.data as { service?: string }).service, 'reports');
    await eventually(
      'the minted token is revoked at the upstream authorization server',
      async () => !(await saas.isActive(minted)),
    );
    // The service's own refresh token is untouched: a new grant gets a new lease.
    const fresh = await connect(await agentToken());
    const again = await fresh.callTool({ name: 'reports__list_records', arguments: {} });
    assert.notEqual(again.isError, true, text(again));
    assert.notEqual(saas.apiRequests.at(-1)?.token, minted, 'a new token for the new lease');
    await fresh.close();
  } finally {
    await client.close();
  }
});

test('revokeOnEnd: false leaves the token of an ended lease to expire at the service (client_credentials lease)', async () => {
  const client = await connect(await agentToken());
  try {
    const r = await client.callTool({ name: 'keep__list_records', arguments: {} });
    assert.notEqual(r.isError, true, text(r));
    const token = saas.apiRequests.at(-1)?.token as string;
    assert.equal(saas.apiRequests.at(-1)?.clientId, saas.clientId, 'a client_credentials token');
    // Every session leased it at start (earlier sessions of this file too, still open).
    const revoked = await cli('credentials', 'revoke', '--service', 'reports-keep');
    assert.match(revoked.stdout, /revoked [1-9]\d* lease/);
    assert.equal((await refusedOnceRevoked(client, 'keep__list_records')).code, -32024);
    assert.equal(await saas.isActive(token), true, 'not revoked at the service');
  } finally {
    await client.close();
  }
});

test('T26: revoking a lease cancels the call in flight that uses it, upstream too', async (t) => {
  const client = await connect(await agentToken());
  try {
    await client.callTool({ name: 'reports__list_records', arguments: {} });
    const calls = (): number => saas.mcpRequests.filter((r) => r.rpcMethods.includes('tools/call')).length;
    const before = calls();
    const slow = rpcError(client.callTool({ name: 'reports__slow_records', arguments: { ms: 60_000 } }));
    await eventually('the upstream received the slow call', () => calls() > before);
    const sid = (client.transport as StreamableHTTPClientTransport).sessionId as string;
    const grant = gw.parts.registry.get(sid)?.grant;
    assert.ok(grant);
    const started = Date.now();
    const revoked = await cli('credentials', 'revoke', '--grant', grant.id);
    assert.equal(revoked.code, 0, revoked.stderr);
    const err = await slow;
    t.diagnostic(`client error ${Date.now() - started} ms after the revoke command started`);
    assert.equal(err.code, -32024, err.message);
    await eventually('the upstream saw the cancellation', () =>
      saas.mcpToolCalls.some((c) => c.tool === 'slow_records' && c.outcome === 'aborted'),
    );
  } finally {
    await client.close();
  }
});

test('per-user connection: URL elicitation, the right user logs in, consents, and the call runs with their own token', async () => {
  const client = await connect(await agentToken('alice'), { elicitation: { url: {} } });
  try {
    const err = await rpcError(client.callTool({ name: 'mine__list_records', arguments: {} }));
    assert.equal(err.code, -32042, err.message);
    const elicitation = (err.data as { elicitations: { mode: string; url: string; elicitationId: string }[] })
      .elicitations[0];
    assert.equal(elicitation?.mode, 'url');
    const link = elicitation.url;
    assert.ok(link.startsWith(`${gw.origin}/connect/`), link);
    assert.equal(saas.apiRequests.filter((r) => r.sub === 'alice').length, 0, 'nothing reached the API yet');

    const jar = new Jar();
    const open = await browse(jar, link);
    assert.equal(open.status, 302);
    assert.match(
      Jar.lines(open).join('\n'),
      /gatehouse_connect=[^;]+; HttpOnly; SameSite=Lax; Path=\/connect/,
    );
    const login = await authorizeInBrowser(open.headers.get('location') as string, ALICE, {
      jar,
      stopAt: (u) => u.pathname === '/connect/verified',
    });
    assert.ok(login.redirect.searchParams.get('code'), login.redirect.href);
    const consentPage = await browse(jar, login.redirect.href);
    assert.equal(consentPage.status, 200);
    const html = await consentPage.text();
    assert.match(html, /agent-1/, 'the consent page names the agent');
    assert.match(html, /alice/);
    assert.match(html, /records:read/);
    const consentUrl = `${gw.origin}${new URL(link).pathname}/consent`;
    // T05: no redirect to the third party without Gatehouse's own consent, from this browser, with its CSRF token.
    assert.equal((await postForm(jar, consentUrl, { csrf: 'forged', decision: 'allow' })).status, 403);
    assert.equal(
      (await postForm(new Jar(), consentUrl, { csrf: csrfOf(html), decision: 'allow' })).status,
      403,
    );
    const consent = await postForm(jar, consentUrl, { csrf: csrfOf(html), decision: 'allow' });
    assert.equal(consent.status, 303);
    const upstreamAuth = new URL(consent.headers.get('location') as string);
    assert.equal(upstreamAuth.origin, new URL(saas.issuer).origin);
    assert.equal(upstreamAuth.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(upstreamAuth.searchParams.get('scope'), 'records:read');
    const callback = await saas.authorize(upstreamAuth.href, 'alice');
    const done = await browse(jar, callback.href);
    assert.equal(done.status, 200, await done.clone().text());
    assert.match(await done.text(), /connected/i);

    const r = await client.callTool({ name: 'mine__list_records', arguments: {} });
    assert.notEqual(r.isError, true, text(r));
    assert.match(text(r), /"user":\s*"alice"/);
    const seen = saas.apiRequests.at(-1);
    assert.equal(seen?.sub, 'alice');
    assert.equal(seen?.scope, 'records:read');

    // The link, the state and the code were single-use.
    assert.equal((await browse(new Jar(), link)).status, 404);
    assert.equal((await browse(jar, callback.href)).status, 403, 'a replayed callback is refused');
  } finally {
    await client.close();
  }
});

test('T05: a connect link opened by another user is refused and void (confused deputy)', async () => {
  const client = await connect(await agentToken('bob'), { elicitation: { url: {} } });
  try {
    const err = await rpcError(client.callTool({ name: 'mine__list_records', arguments: {} }));
    const link = (err.data as { elicitations: { url: string }[] }).elicitations[0]?.url as string;
    // Alice opens Bob's link (e.g. it was sent to her): she logs in as herself.
    const jar = new Jar();
    const open = await browse(jar, link);
    const login = await authorizeInBrowser(open.headers.get('location') as string, ALICE, {
      jar,
      stopAt: (u) => u.pathname === '/connect/verified',
    });
    const page = await browse(jar, login.redirect.href);
    assert.equal(page.status, 403);
    assert.match(await page.text(), /different user/);
    assert.equal((await browse(jar, link)).status, 404, 'the link is void');
    // A link stolen after it was opened does not work in another browser either.
    const err2 = await rpcError(client.callTool({ name: 'mine__list_records', arguments: {} }));
    const link2 = (err2.data as { elicitations: { url: string }[] }).elicitations[0]?.url as string;
    assert.equal((await browse(new Jar(), link2)).status, 302);
    assert.equal((await browse(new Jar(), link2)).status, 403);
  } finally {
    await client.close();
  }
});

test('T33: the login behind a connect link is the AS login page: guessing is throttled (the right password is then refused too) and audited', async () => {
  const client = await connect(await agentToken('bob'), { elicitation: { url: {} } });
  try {
    const err = await rpcError(client.callTool({ name: 'mine__list_records', arguments: {} }));
    const link = (err.data as { elicitations: { url: string }[] }).elicitations[0]?.url as string;
    const jar = new Jar();
    const open = await browse(jar, link);
    const authorize = await browse(jar, open.headers.get('location') as string);
    const page = new URL(authorize.headers.get('location') ?? '', gw.origin).href;
    const html = await (await browse(jar, page)).text();
    const csrf = csrfOf(html);
    // Someone who got hold of the link guesses bob's password (auth.embedded.login defaults: 5 per user).
    for (let i = 0; i < 5; i++) {
      const res = await postForm(jar, `${page}/login`, { csrf, username: 'bob', password: `guess-${i}` });
      assert.equal(res.status, 401, `guess ${i}`);
    }
    const right = await postForm(jar, `${page}/login`, { csrf, ...BOB });
    assert.equal(right.status, 429, 'locked out: even the right password is refused');
    assert.ok(Number(right.headers.get('retry-after')) > 0);
    const audited = await eventuallyEvents(
      (e) => e.type === 'authn.failure' && e.principal?.agent === CONNECT_CLIENT_ID,
      6,
    );
    assert.deepEqual(
      audited.map((e) => [e.detail?.reason, e.detail?.username]),
      [...Array.from({ length: 5 }, () => ['bad_credentials', 'bob']), ['rate_limited', 'bob']],
    );
    // The T05 refusal above (alice logged in for bob's link) was audited as a failed login too.
    assert.ok(
      (
        await eventuallyEvents((e) => e.type === 'authn.failure' && e.detail?.reason === 'wrong_user', 1)
      ).some((e) => e.detail?.username === 'alice' && e.detail?.kind === 'connect'),
    );
    const metrics = await (await fetch(`${gw.origin}/metrics`)).text();
    assert.match(metrics, /gatehouse_auth_failures_total\{reason="login_bad_credentials"\} [5-9]/);
  } finally {
    await client.close();
  }
});

test('a client without URL elicitation gets connection_required with the link in the message', async () => {
  const client = await connect(await agentToken('bob'));
  try {
    const err = await rpcError(client.callTool({ name: 'mine__list_records', arguments: {} }));
    assert.equal(err.code, -32026, err.message);
    assert.match(err.message, new RegExp(`${gw.origin}/connect/`));
    // An agent acting for no one cannot use a per-user credential at all.
    const anon = await connect(await agentToken());
    const e2 = await rpcError(anon.callTool({ name: 'mine__list_records', arguments: {} }));
    assert.equal(e2.code, -32025, e2.message);
    await anon.close();
  } finally {
    await client.close();
  }
});

test('T20: static key in a stdio environment: redacted; the kill switch stops the process and blocks new leases', async () => {
  const token = await agentToken();
  const client = await connect(token);
  try {
    const r = await client.callTool({ name: 'everything__get-env', arguments: {} });
    const out = JSON.stringify(r);
    assert.match(out, /RECORDS_API_KEY[^,]*\[REDACTED:records-api-key\]/);
    assert.ok(!out.includes(STATIC_KEY));
    assert.ok(!out.includes(token), "the agent's own token is not in the upstream's environment");
    const sid = (client.transport as StreamableHTTPClientTransport).sessionId as string;
    const pid = gw.parts.registry.get(sid)?.links.get('everything')?.transport.pid;
    assert.ok(pid);

    const killed = await cli(
      'credentials',
      'revoke',
      '--secret',
      'records-api-key',
      '--reason',
      'leaked in a ticket',
    );
    assert.equal(killed.code, 0, killed.stderr);
    assert.match(killed.stdout, /blocked/);
    await eventually('the stdio process holding the key exited', () => processGone(pid));
    const err = await rpcError(client.callTool({ name: 'everything__get-env', arguments: {} }));
    assert.equal(err.code, -32024, err.message);
    // Stopped on purpose: not a crash, so not restarted (no process without its lease).
    const link = gw.parts.registry.get(sid)?.links.get('everything');
    assert.equal(link?.alive, false);
    assert.equal(link?.restarts, 0);
    assert.equal(link?.deathReason?.code, 'credential_revoked');
    // A new session gets no lease while the secret is blocked (its stdio upstream cannot start).
    const other = await connect(await agentToken());
    const tools = await other.listTools();
    assert.ok(
      !tools.tools.some((t) => t.name.startsWith('everything__')),
      'the blocked upstream is not offered',
    );
    await other.close();

    const lifted = await cli('credentials', 'unblock', '--secret', 'records-api-key');
    assert.equal(lifted.code, 0, lifted.stderr);
    await new Promise((r) => setTimeout(r, 400));
    const third = await connect(await agentToken());
    assert.ok((await allTools(third)).includes('everything__get-env'), 'offered again');
    const ok = await third.callTool({ name: 'everything__get-env', arguments: {} });
    assert.match(JSON.stringify(ok), /\[REDACTED:records-api-key\]/);
    await third.close();
  } finally {
    await client.close();
  }
});

test('T20: blocking a client secret ends the leases minted with it, in the running gateway', async () => {
  const client = await connect(await agentToken());
  try {
    const ok = await client.callTool({ name: 'reports__list_records', arguments: {} });
    assert.notEqual(ok.isError, true, text(ok));
    // The lease's credential is the subject token; the block names the client secret it is minted with.
    const blocked = await cli('credentials', 'revoke', '--secret', 'saas-client');
    assert.equal(blocked.code, 0, blocked.stderr);
    const err = await refusedOnceRevoked(client, 'reports__list_records');
    assert.equal(err.code, -32024, err.message);
  } finally {
    await client.close();
    assert.equal((await cli('credentials', 'unblock', '--secret', 'saas-client')).code, 0);
  }
});

test('leases and redactions are audit events, with names and never values', async () => {
  await new Promise((r) => setTimeout(r, 300));
  const audit = auditEvents();
  const types = new Set(audit.map((e) => e.type));
  for (const t of ['lease.issued', 'lease.revoked', 'sanitiser.finding', 'admin.action'])
    assert.ok(types.has(t), `audit has ${t}`);
  const attempted = audit.find((e) => e.type === 'call.attempted' && e.server === 'reports');
  assert.ok(attempted?.lease?.id.startsWith('ls_'), 'a call records the lease it used');
  assert.match(attempted?.lease?.credential ?? '', /^reports\//);
  const metrics = await (await fetch(`${gw.origin}/metrics`)).text();
  assert.match(metrics, /gatehouse_revocations_total\{kind="lease"\} [1-9]/);
  assert.match(metrics, /gatehouse_sanitizer_findings_total\{kind="secret_redacted"\} [1-9]/);
});

test('T20 canary: no credential value in any log line, audit record or agent-visible message of this file', async () => {
  await new Promise((r) => setTimeout(r, 300));
  const minted = [
    ...new Set(saas.mcpToolCalls.map((c) => c.authorization?.replace(/^Bearer /, '')).filter(Boolean)),
  ] as string[];
  assert.ok(minted.length >= 3, 'tokens were minted and used');
  const canaries: [string, string][] = [
    ['static key', STATIC_KEY],
    ['saas client secret', saas.clientSecret],
    ['service refresh token', serviceRefreshToken],
    ['agent client secret', AGENT_SECRET],
    ...minted.map((m, i) => [`minted token ${i}`, m] as [string, string]),
  ];
  const auditDir = join(dataDir, 'audit');
  const auditText = readdirSync(auditDir)
    .map((f) => readFileSync(join(auditDir, f)).toString('utf8'))
    .join('\n');
  const corpora: [string, string][] = [
    ['gateway logs', logs.join('')],
    ['audit segments', auditText],
    ['agent-visible messages', seenByAgent.join('\n')],
  ];
  assert.ok(
    logs.length > 50 && auditText.length > 1000 && seenByAgent.length > 20,
    'the corpora are not empty',
  );
  const hits: string[] = [];
  for (const [what, value] of canaries)
    for (const [where, corpus] of corpora) {
      for (const form of [value, Buffer.from(value).toString('base64'), encodeURIComponent(value)])
        if (form.length >= 8 && corpus.includes(form)) hits.push(`${what} in ${where}`);
    }
  assert.deepEqual(hits, []);
});
