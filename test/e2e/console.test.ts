/**
 * The admin console in a real browser (issue #13): Debian's chromium driven by playwright-core, a real
 * gateway with the embedded authorization server (its real login and consent pages), the real MCP SDK
 * client making a call that policy holds for approval (`@approval("required")`, the bank fixture), the
 * real SQLite store and audit log. An approver logs in, sees the held call with its exact arguments,
 * approves it with a reason, and the held call completes; a denial; self-approval refused (separation
 * of duties); an agent's bearer token refused by the admin API; a state-changing request without the
 * CSRF token refused; the pages cannot be framed.
 *
 * GATEHOUSE_SCREENSHOTS=docs/img writes the console screenshots of docs/approvals.md and the README.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN_CSP } from '../../src/admin/console.ts';
import type { EmbeddedAs } from '../../src/auth/as/index.ts';
import { credentialsCommand } from '../../src/cli/credentials.ts';
import { type RunningGateway, startGateway } from '../../src/gateway.ts';
import { openSecretStore } from '../../src/secrets/store.ts';
import { type CompanyIdp, startCompanyIdp } from '../fixtures/company-idp.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { auditEvents, bankUpstream, eventually } from '../helpers/gateway.ts';
import { connectWithBearer, seedUser } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const TRANSFER = 'bank__transfer';
const PASSWORD = 'correct horse battery staple';
const SHOTS = process.env.GATEHOUSE_SCREENSHOTS;

const POLICY_FILE = join(ROOT, 'test/fixtures/policies/bank-approval.cedar');

let work: string;
let dataDir: string;
let gw: RunningGateway;
let browser: Browser;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-console-'));
  dataDir = join(work, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  // alice asks (through agent-a) and is an approver too; carol approves and administers; bob has no role.
  for (const username of ['alice', 'carol', 'bob']) await seedUser(dataDir, { username, password: PASSWORD });
  // A static API key for the bank: each grant gets a lease on it (the credentials page).
  const { store } = openSecretStore(dataDir);
  await store.set('bank-key', 'fake-canary-bank-key', { service: 'bank' });
  await store.close();
  gw = await startGateway({
    config: {
      server: { host: '127.0.0.1', port: 0 },
      auth: {
        mode: 'embedded',
        requiredScopes: ['mcp'],
        embedded: {
          clients: [
            {
              clientId: 'agent-a',
              clientName: 'Agent A',
              clientSecret: 'agent-a-secret-that-is-long-enough',
              grantTypes: ['client_credentials'],
              owner: 'payments team',
            },
          ],
        },
      },
      policy: { files: [POLICY_FILE], tools: { [TRANSFER]: { risk: 'high', sideEffect: 'external' } } },
      approvals: { approvers: ['carol', 'alice'], holdSec: 120 },
      admin: { admins: ['carol'] },
      // The bank is trusted on first use; the flipping server's new tools wait for review (definitions page).
      pinning: { newTools: 'trust', upstreams: { flipping: { newTools: 'quarantine' } } },
      upstreams: {
        flipping: {
          type: 'stdio',
          command: process.execPath,
          args: ['--import', 'tsx', join(ROOT, 'test/fixtures/flipping-server.ts')],
          cwd: ROOT,
          pool: { warm: 0 },
        },
        bank: bankUpstream(undefined, { BANK_KEY: { credential: 'bank-key' } }),
      },
      credentials: { 'bank-key': { type: 'static', secret: 'bank-key' } },
    },
    dataDir,
    logger: pino({ level: process.env.GATEHOUSE_TEST_LOG ?? 'silent' }, pino.destination(2)),
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.close();
  rmSync(work, { recursive: true, force: true });
});

function authServer(): EmbeddedAs {
  const as = gw.parts.authServer as EmbeddedAs | undefined;
  assert.ok(as, 'embedded authorization server');
  return as;
}

/** An MCP SDK client of agent-a acting for `user` (a token signed by the embedded AS). */
async function agentFor(user: string): Promise<Client> {
  const token = await authServer().mintAccessToken({ clientId: 'agent-a', user, scope: 'mcp' });
  return connectWithBearer(gw.url, token);
}

/** A browser context logged in to the console as `username`, through the real login and consent pages. */
async function logIn(username: string): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${gw.origin}/admin/`);
  // Sent to the embedded authorization server's login page.
  assert.match(page.url(), /\/oauth\/interaction\//);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // First login of this user to the console: the consent page names the console client.
  await page.waitForLoadState();
  if (await page.getByRole('button', { name: 'Allow' }).isVisible()) {
    assert.match(await page.content(), /Gatehouse admin console/);
    await page.getByRole('button', { name: 'Allow' }).click();
  }
  await page.waitForURL(`${gw.origin}/admin/`, { timeout: 10_000 }).catch(async (err: unknown) => {
    throw new Error(`login of ${username} ended at ${page.url()}: ${(await page.content()).slice(0, 2000)}`, {
      cause: err,
    });
  });
  return { ctx, page };
}

/** The pending request of `tool` with `marker` in its arguments, once it shows (reloading the page). */
async function pendingCard(page: Page, marker: string): Promise<string> {
  let id = '';
  await eventually(`a pending request with ${marker}`, async () => {
    await page.reload();
    const card = page.locator('section.card', { hasText: marker });
    if ((await card.count()) !== 1) return false;
    id = (await card.locator('dd code').first().textContent()) ?? '';
    return id.startsWith('apr_');
  });
  return id;
}

async function decideInPage(
  page: Page,
  id: string,
  decision: 'Approve' | 'Deny',
  reason: string,
): Promise<void> {
  const card = page.locator('section.card', { hasText: id });
  await card.getByLabel('Reason (recorded in the audit log)').fill(reason);
  await card.getByRole('button', { name: decision }).click();
  await page.waitForURL(`${gw.origin}/admin/`);
}

/** Runs `fn` with carol's (or `approver`'s) console page and an agent acting for alice, both closed after. */
async function withConsole(
  approver: string,
  fn: (page: Page, alice: Client) => Promise<void>,
): Promise<void> {
  const alice = await agentFor('alice');
  const { ctx, page } = await logIn(approver);
  try {
    await fn(page, alice);
  } finally {
    await ctx.close();
    await alice.close();
  }
}

/** A held transfer by `client`: resolves to the error it ends with (undefined when it succeeds). */
function refusal(client: Client, args: Record<string, unknown>): Promise<unknown> {
  return client.callTool({ name: TRANSFER, arguments: args }, undefined, { timeout: 120_000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** A fetch made by the page itself (same origin, its cookies, its CSP): status and body text. */
async function inPage(
  page: Page,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; text: string }> {
  return page.evaluate(
    async ([p, i]) => {
      const r = await fetch(p, i);
      return { status: r.status, text: await r.text() };
    },
    [path, init] as const,
  );
}

function errorOf(r: { text: string }): string {
  return (JSON.parse(r.text) as { error?: string }).error ?? 'none';
}

describe('admin console in chromium (issue #13)', () => {
  test('an approver logs in, sees a held SDK call with its exact arguments, approves it with a reason, and the call completes', async () => {
    await withConsole('carol', async (page, alice) => {
      // A zero-width space in the payee: the console shows it.
      const call = alice.callTool(
        { name: TRANSFER, arguments: { amount: 250, to: 'bob\u200b' } },
        undefined,
        {
          timeout: 120_000,
        },
      );
      const id = await pendingCard(page, 'amount');
      const card = page.locator('section.card', { hasText: id });
      const args = await card.locator('pre.args').textContent();
      assert.equal(args, '{\n  "amount": 250,\n  "to": "bob\\u{200B}"\n}');
      assert.equal(await card.locator('mark.inv').textContent(), '\\u{200B}');
      assert.match((await card.textContent()) ?? '', /agent-a for alice/);
      if (SHOTS) {
        mkdirSync(SHOTS, { recursive: true });
        await page.setViewportSize({ width: 1100, height: 900 });
        await page.screenshot({ path: join(SHOTS, 'console-approvals.png'), fullPage: true });
      }
      await decideInPage(page, id, 'Approve', 'invoice 4711, checked with bob');
      assert.match((await page.getByRole('status').textContent()) ?? '', new RegExp(`approved ${id}`));
      const result = (await call) as { content: { type: string; text: string }[] };
      // The zero-width space reached the upstream as approved; the result sanitiser strips it on the way back.
      assert.match(result.content[0]?.text ?? '', /^sent 250 to bob/);
      await eventually('approval.granted is audited', async () =>
        auditEvents(dataDir, 'approval.granted').some((e) => (e.approval as { id?: string })?.id === id),
      );
      const granted = auditEvents(dataDir, 'approval.granted').find(
        (e) => (e.approval as { id?: string })?.id === id,
      );
      assert.deepEqual(granted?.approval, {
        id,
        approver: 'carol',
        reason: 'invoice 4711, checked with bob',
      });
      assert.equal(granted?.detail?.['channel'], 'console');
      // The timeline shows request -> approver and reason -> consumption -> the call.
      await page.goto(`${gw.origin}/admin/audit?user=alice&tool=${TRANSFER}`);
      const timeline = (await page.locator('tbody').textContent()) ?? '';
      assert.match(
        timeline,
        /approval\.granted[\s\S]*approver carol; reason: invoice 4711, checked with bob/,
      );
      for (const type of ['approval.requested', 'approval.consumed', 'call.attempted', 'call.completed'])
        assert.ok(timeline.includes(type), type);
      if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-audit.png'), fullPage: true });
    });
  });

  test('a denial with a reason: the held call fails with approval_denied', async () => {
    await withConsole('carol', async (page, alice) => {
      const call = refusal(alice, { amount: 9999, to: 'mallory' });
      const id = await pendingCard(page, 'mallory');
      await decideInPage(page, id, 'Deny', 'unknown payee');
      const err = await call;
      assert.ok(err instanceof McpError, String(err));
      assert.equal(err.code, -32028);
      assert.equal((err.data as { approval?: string }).approval, id);
      await eventually('approval.denied is audited', async () =>
        auditEvents(dataDir, 'approval.denied').some(
          (e) => (e.approval as { approver?: string; reason?: string })?.reason === 'unknown payee',
        ),
      );
    });
  });

  test('separation of duties: the requester cannot approve her own call from the console', async () => {
    const alice = await agentFor('alice');
    const { ctx, page } = await logIn('alice');
    const carol = await logIn('carol');
    try {
      const call = refusal(alice, { amount: 1, to: 'self-approved' });
      const id = await pendingCard(page, 'self-approved');
      await decideInPage(page, id, 'Approve', 'looks fine to me');
      assert.match(
        (await page.getByRole('status').textContent()) ?? '',
        /not recorded: `alice` made this request and cannot decide it/,
      );
      const state = await page.evaluate(
        async (approval) =>
          (
            (await (await fetch(`/admin/api/approvals/${approval}`)).json()) as {
              approval: { state: string };
            }
          ).approval.state,
        id,
      );
      assert.equal(state, 'pending');
      // Still pending: another approver decides it.
      await pendingCard(carol.page, 'self-approved');
      await decideInPage(carol.page, id, 'Deny', 'self-approval attempt');
      const err = await call;
      assert.ok(err instanceof McpError && err.code === -32028, String(err));
    } finally {
      await ctx.close();
      await carol.ctx.close();
      await alice.close();
    }
  });

  test("an agent's bearer token never authenticates to /admin: refused before anything else, even beside a console session", async () => {
    const token = await authServer().mintAccessToken({ clientId: 'agent-a', user: 'carol', scope: 'mcp' });
    for (const path of ['/admin/api/approvals', '/admin/api/me', '/admin/', '/admin/login']) {
      const res = await fetch(`${gw.origin}${path}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401, path);
      if (path.startsWith('/admin/api/'))
        assert.equal(((await res.json()) as { error: string }).error, 'admin_bearer_refused');
      else await res.body?.cancel();
    }
    const { ctx, page } = await logIn('carol');
    try {
      const status = await page.evaluate(async (t) => {
        const r = await fetch('/admin/api/me', { headers: { authorization: `Bearer ${t}` } });
        return r.status;
      }, token);
      assert.equal(status, 401);
      // Without the header, the same browser session works.
      const me = await page.evaluate(async () => (await fetch('/admin/api/me')).json());
      assert.equal((me as { user: string }).user, 'carol');
    } finally {
      await ctx.close();
    }
    // No session at all: the API answers 401, never data.
    const anon = await fetch(`${gw.origin}/admin/api/approvals`);
    assert.equal(anon.status, 401);
    assert.equal(((await anon.json()) as { error: string }).error, 'admin_login_required');
  });

  test('CSRF: a state-changing request without the session token is refused; with it, the API decides', async () => {
    await withConsole('carol', async (page, alice) => {
      const call = alice.callTool({ name: TRANSFER, arguments: { amount: 3, to: 'csrf-check' } }, undefined, {
        timeout: 120_000,
      });
      const id = await pendingCard(page, 'csrf-check');
      const json = { 'content-type': 'application/json' };
      const api = `/admin/api/approvals/${id}/approve`;
      const tries = {
        none: await inPage(page, api, { method: 'POST', headers: json, body: '{"reason":"no token"}' }),
        wrong: await inPage(page, api, {
          method: 'POST',
          headers: { ...json, 'x-csrf-token': 'x'.repeat(43) },
          body: '{"reason":"wrong token"}',
        }),
        form: await inPage(page, `/admin/approvals/${id}/decide`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'decision=approve&reason=forged',
        }),
      };
      assert.deepEqual([tries.none.status, errorOf(tries.none)], [403, 'admin_csrf']);
      assert.deepEqual([tries.wrong.status, errorOf(tries.wrong)], [403, 'admin_csrf']);
      assert.equal(tries.form.status, 403);
      // None of them decided anything: the next request, with the token, is the decision.
      // With the session's token (from /admin/api/me) the same request is the approval.
      const ok = await page.evaluate(async (approval) => {
        const me = (await (await fetch('/admin/api/me')).json()) as { csrf: string };
        const r = await fetch(`/admin/api/approvals/${approval}/approve`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf },
          body: JSON.stringify({ reason: 'through the API' }),
        });
        return [r.status, ((await r.json()) as { approval?: { decidedBy?: string } }).approval?.decidedBy];
      }, id);
      assert.deepEqual(ok, [200, 'carol']);
      await call;
    });
  });

  test('the console cannot be framed: CSP frame-ancestors none and X-Frame-Options DENY, and chromium refuses the frame', async () => {
    for (const path of ['/admin/', '/admin/login', '/admin/api/me', '/admin/static/console.css']) {
      const res = await fetch(`${gw.origin}${path}`, { redirect: 'manual' });
      await res.body?.cancel();
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(res.headers.get('content-security-policy'), ADMIN_CSP, path);
      assert.match(ADMIN_CSP, /frame-ancestors 'none'/);
      assert.match(ADMIN_CSP, /default-src 'self'/);
      assert.doesNotMatch(ADMIN_CSP, /unsafe-inline/);
    }
    const css = await (await fetch(`${gw.origin}/admin/static/console.css`)).text();
    assert.match(css, /#fff3b0/, 'the marker the framed page would show');
    // Another origin tries to frame the console (page.goto waits for the frame's load too).
    const evil: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><iframe id="f" src="${gw.origin}/admin/static/console.css"></iframe>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', () => resolve()));
    const { ctx, page } = await logIn('carol');
    try {
      await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame);
      const text = await frame.content().catch(() => '');
      assert.doesNotMatch(text, /#fff3b0/, 'the framed console content must not render');
    } finally {
      await ctx.close();
      await new Promise<void>((resolve) => evil.close(() => resolve()));
    }
  });

  test('grants page: an admin revokes a live grant, and the agent is cut off', async () => {
    await withConsole('carol', async (page, alice) => {
      await alice.callTool({ name: 'bank__balance', arguments: {} });
      await page.goto(`${gw.origin}/admin/grants`);
      // Oldest first: this client's session opened the newest grant.
      const row = page.locator('tbody tr', { hasText: 'agent-a for alice' }).last();
      const grant = (await row.locator('td code').first().textContent()) ?? '';
      assert.match(grant, /^gr_/);
      assert.match((await row.textContent()) ?? '', /payments team/);
      if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-grants.png'), fullPage: true });
      await row.getByRole('button', { name: `Revoke grant ${grant}` }).click();
      await page.waitForURL(`${gw.origin}/admin/grants`);
      assert.match(
        (await page.getByRole('status').textContent()) ?? '',
        new RegExp(`grant ${grant} revoked`),
      );
      // The grant ended and the token that opened it is revoked: the agent's next request is refused.
      await eventually('the agent is refused', async () =>
        alice.callTool({ name: 'bank__balance', arguments: {} }).then(
          () => false,
          () => true,
        ),
      );
      await eventually('admin.action grant.revoked is audited', async () =>
        auditEvents(dataDir, 'admin.action').some(
          (e) =>
            e.detail?.['action'] === 'grant.revoked' &&
            e.detail?.['by'] === 'carol' &&
            e.detail?.['grant'] === grant,
        ),
      );
    });
  });

  test('credentials page: an admin revokes a lease and lifts a block (as gatehouse credentials)', async () => {
    await withConsole('carol', async (page, alice) => {
      // The first call of this grant leases the bank key.
      await alice.callTool({ name: 'bank__balance', arguments: {} });
      await page.goto(`${gw.origin}/admin/credentials`);
      const row = page.locator('tbody tr', { hasText: 'bank-key' }).last();
      const lease = (await row.locator('td code').first().textContent()) ?? '';
      assert.ok(lease.length > 0);
      assert.match((await row.textContent()) ?? '', /agent-a for alice/);
      await row.getByRole('button', { name: `Revoke lease ${lease}` }).click();
      await page.waitForURL(`${gw.origin}/admin/credentials`);
      assert.match(
        (await page.getByRole('status').textContent()) ?? '',
        new RegExp(`lease ${lease} revoked`),
      );
      assert.equal(await page.locator('tbody tr', { hasText: lease }).count(), 0);
      // A kill switch set by the CLI, lifted in the console.
      assert.equal(await credentialsCommand(['revoke', '--secret', 'bank-key', '--data-dir', dataDir]), 0);
      await page.goto(`${gw.origin}/admin/credentials`);
      const block = page.locator('tbody tr', { hasText: 'secret' }).filter({ hasText: 'bank-key' });
      await block.getByRole('button', { name: 'Unblock secret bank-key' }).click();
      await page.waitForURL(`${gw.origin}/admin/credentials`);
      assert.match((await page.getByRole('status').textContent()) ?? '', /secret bank-key unblocked/);
      const after = JSON.parse((await inPage(page, '/admin/api/credentials')).text) as { blocks: unknown[] };
      assert.deepEqual(after.blocks, []);
      await eventually('both actions are audited with the console user', async () => {
        const actions = auditEvents(dataDir, 'admin.action').map((e) => [
          e.detail?.['action'],
          e.detail?.['by'],
        ]);
        return (
          actions.some(([a, by]) => a === 'lease.revoked' && by === 'carol') &&
          actions.some(([a, by]) => a === 'credential.unblocked' && by === 'carol')
        );
      });
    });
  });

  test('T13-T14 definitions page: an admin sees quarantined tools with their diff, approves one and rejects another (CSRF-bound, audited); the agent can call only the approved one', async () => {
    const FACT = 'flipping__get_fact_of_the_day';
    await withConsole('carol', async (page, alice) => {
      // The agent's listing meets the flipping server's tools for the first time: quarantined, not shown.
      const listed = (await alice.listTools()).tools.map((t) => t.name);
      assert.ok(!listed.includes(FACT), listed.join(','));
      const card = page.locator('section.card', { hasText: FACT });
      await eventually(
        'the quarantined tool is listed',
        async () => {
          await page.goto(`${gw.origin}/admin/definitions`);
          return (await card.count()) === 1;
        },
        10_000,
      );
      const text = (await card.textContent()) ?? '';
      assert.match(text, /pending \(never approved\)/);
      assert.match((await card.locator('pre').textContent()) ?? '', /\+ .*Get a random fact of the day\./);
      const hash = ((await card.locator('dd code').nth(0).textContent()) ?? '').replace('sha256:', '');
      assert.match(hash, /^[0-9a-f]{64}$/);
      if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-definitions.png'), fullPage: true });

      // The same decision without the session's CSRF token is refused, and nothing changes.
      const forged = await inPage(page, '/admin/definitions/decide', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `decision=approve&server=flipping&kind=tool&name=get_fact_of_the_day&hash=${hash}`,
      });
      assert.equal(forged.status, 403);
      assert.match(forged.text, /admin_csrf/);

      await card.getByRole('button', { name: 'Approve this definition' }).click();
      await page.waitForURL(`${gw.origin}/admin/definitions`);
      assert.match(
        (await page.getByRole('status').textContent()) ?? '',
        /approved flipping__get_fact_of_the_day/,
      );
      const other = page.locator('section.card', { hasText: 'flipping__announce' });
      await other.getByRole('button', { name: 'Reject' }).click();
      await page.waitForURL(`${gw.origin}/admin/definitions`);
      assert.match((await page.getByRole('status').textContent()) ?? '', /rejected flipping__announce/);
      assert.equal(await page.locator('section.card', { hasText: FACT }).count(), 0, 'no longer waiting');

      // The running gateway reads the decisions from the store: the approved tool works, the rejected one does not.
      await eventually('the approved tool is callable', async () =>
        alice.callTool({ name: FACT, arguments: {} }).then(
          () => true,
          () => false,
        ),
      );
      const refused = await alice.callTool({ name: 'flipping__announce', arguments: {} }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(refused instanceof McpError, String(refused));
      assert.equal((refused.data as { gatehouse?: string }).gatehouse, 'tool_quarantined');
      const actions = auditEvents(dataDir, 'admin.action')
        .filter((e) => String(e.detail?.['action']).startsWith('definition.') && e.detail?.['by'] === 'carol')
        .map((e) => [e.detail?.['action'], e.detail?.['name'], e.detail?.['channel']]);
      assert.deepEqual(actions, [
        ['definition.approved', 'get_fact_of_the_day', 'console'],
        ['definition.rejected', 'announce', 'console'],
      ]);
    });
  });

  test('a login without a console role sees nothing', async () => {
    const { ctx, page } = await logIn('bob');
    try {
      assert.match((await page.locator('main').textContent()) ?? '', /no role that allows this/);
      const r = await page.evaluate(async () => {
        const res = await fetch('/admin/api/grants');
        return [res.status, ((await res.json()) as { error: string }).error];
      });
      assert.deepEqual(r, [403, 'admin_forbidden']);
    } finally {
      await ctx.close();
    }
  });
});

describe('admin console login with auth.mode external (admin.external, the company IdP)', () => {
  const CONSOLE_CLIENT = { client_id: 'gatehouse-console', client_secret: 'fake-canary-secret-console' };
  let idp: CompanyIdp;
  let ext: RunningGateway;

  before(async () => {
    idp = await startCompanyIdp({
      allowedResources: [],
      scopes: 'mcp',
      login: { users: { 'u-ops': { roles: ['ops'] }, 'u-dev': { roles: ['dev'] } } },
    });
    const extData = join(work, 'external');
    mkdirSync(extData, { mode: 0o700 });
    ext = await startGateway({
      config: {
        server: { host: '127.0.0.1', port: 0 },
        auth: { mode: 'external', external: { issuer: idp.issuer } },
        admin: {
          admins: ['group:ops'],
          external: {
            clientId: CONSOLE_CLIENT.client_id,
            clientSecret: CONSOLE_CLIENT.client_secret,
            scope: 'openid company',
            groupsClaim: 'roles',
            allowInsecureHttp: true,
          },
        },
        pinning: { newTools: 'trust' },
        upstreams: { bank: bankUpstream() },
      },
      dataDir: extData,
      logger: pino({ level: process.env.GATEHOUSE_TEST_LOG ?? 'silent' }, pino.destination(2)),
    });
    await idp.registerLoginClient({ ...CONSOLE_CLIENT, redirect_uris: [`${ext.origin}/admin/callback`] });
  });

  after(async () => {
    await ext?.close();
    await idp?.close();
  });

  test('an admin by the IdP groups claim logs in (code + PKCE at the external issuer); the ID token is verified', async () => {
    idp.loginAs = 'u-ops';
    const ctx = await browser.newContext();
    try {
      const page = await ctx.newPage();
      await page.goto(`${ext.origin}/admin/grants`);
      await page.waitForURL(`${ext.origin}/admin/`);
      assert.match((await page.locator('header').textContent()) ?? '', /Signed in as u-ops \(admin\)/);
      const auth = idp.authorizationRequests.at(-1);
      assert.equal(auth?.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(auth?.searchParams.get('client_id'), CONSOLE_CLIENT.client_id);
      assert.ok(auth?.searchParams.get('nonce'));
      await page.goto(`${ext.origin}/admin/grants`);
      assert.match((await page.locator('h1').textContent()) ?? '', /Live grants/);
    } finally {
      await ctx.close();
    }
  });

  test('an ID token with the wrong nonce does not log in; a login without a role sees nothing', async () => {
    let ctx = await browser.newContext();
    try {
      let page = await ctx.newPage();
      idp.loginAs = 'u-ops';
      idp.tamperIdToken = (claims) => ({ ...claims, nonce: 'replayed' });
      await page.goto(`${ext.origin}/admin/login`);
      await page.waitForURL(/\/admin\/callback/);
      assert.match((await page.locator('h1').textContent()) ?? '', /Sign-in failed/);
      idp.tamperIdToken = undefined;
      idp.loginAs = 'u-dev';
      // A new browser: the IdP would otherwise remember u-ops's session.
      await ctx.close();
      ctx = await browser.newContext();
      page = await ctx.newPage();
      await page.goto(`${ext.origin}/admin/`);
      // Through the IdP and back; the signed-in page moves on to /admin/, which refuses this login.
      await page.getByRole('heading', { name: 'Not allowed' }).waitFor();
      assert.match((await page.locator('main').textContent()) ?? '', /no role that allows this/);
    } finally {
      idp.tamperIdToken = undefined;
      await ctx.close();
    }
  });
});
