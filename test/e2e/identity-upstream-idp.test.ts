/**
 * Login through the company IdP (auth.embedded.upstreamIdp, issue #11): the embedded authorization
 * server delegates user login to an independent oidc-provider acting as the company's OpenID provider
 * (test/fixtures/company-idp.ts). Authorization code + PKCE + state + nonce (OIDC Core §3.1), RFC 9207
 * `iss`, ID token checks (OIDC Core §3.1.3.7), claims mapped to a Gatehouse user with tenant and groups
 * that policy sees. Negative cases are refused and audited as `authn.failure`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { browse, csrfOf, Jar, pkce, postForm } from '../auth/as-harness.ts';
import { type CompanyIdp, startCompanyIdp } from '../fixtures/company-idp.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../fixtures/recording-upstream.ts';
import {
  auditEvents,
  eventually,
  type StoredAuditEvent,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.ts';
import { ScriptedOAuthProvider, seedUser } from '../helpers/oauth.ts';

const GATEWAY_CLIENT = { client_id: 'gatehouse', client_secret: 'fake-canary-secret-gatehouse-at-idp' };
const USERS = {
  'u-1': { preferred_username: 'dana', org: 'acme', roles: ['engineering', 'staff'] },
  'u-2': { preferred_username: 'eve', org: 'acme', roles: ['staff'] },
  // Claims the name of a local user: must never become alice.
  'u-3': { preferred_username: 'alice', org: 'acme', roles: ['engineering'] },
};
const REDIRECT = 'http://127.0.0.1:53682/callback';

describe('login through the company IdP', () => {
  let idp: CompanyIdp;
  let rogue: CompanyIdp;
  let upstream: RecordingUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startRecordingUpstream();
    idp = await startCompanyIdp({ allowedResources: [], scopes: 'mcp', login: { users: USERS } });
    // A second, independent IdP that knows the gateway's client too (the mix-up attacker's AS).
    rogue = await startCompanyIdp({ allowedResources: [], scopes: 'mcp', login: { users: USERS } });
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-idp-'));
    await seedUser(dataDir, { username: 'alice', password: 'fake-canary-password-alice' });
    const policy = join(dataDir, 'engineering.cedar');
    writeFileSync(
      policy,
      `@id("acme-engineering")
permit (principal, action, resource)
when { principal has user && principal.user in Gatehouse::Role::"engineering" && principal in Gatehouse::Tenant::"acme" };
`,
    );
    gw = await startTestGateway(
      {
        auth: {
          mode: 'embedded',
          embedded: {
            // The IdP is plain http on loopback: the development flag (refused unless bound to loopback).
            allowInsecureMetadataUrls: true,
            login: { localUsers: false },
            upstreamIdp: {
              issuer: idp.issuer,
              name: 'Company SSO',
              clientId: GATEWAY_CLIENT.client_id,
              clientSecret: GATEWAY_CLIENT.client_secret,
              scopes: ['openid', 'profile', 'company'],
              claims: { username: 'preferred_username', tenant: 'org', groups: 'roles' },
            },
          },
        },
        upstreams: { up: { type: 'http', url: upstream.url } },
        policy: { files: [policy] },
      },
      { dataDir },
    );
    for (const p of [idp, rogue]) {
      await p.registerLoginClient({ ...GATEWAY_CLIENT, redirect_uris: [`${gw.origin}/oauth/idp/callback`] });
    }
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
    await idp?.close();
    await rogue?.close();
  });

  /** A browser at the gateway's login page clicks "Sign in with Company SSO": the IdP URL it is sent to. */
  async function toIdp(jar: Jar): Promise<URL> {
    const reg = await fetch(`${gw.origin}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
    });
    const { client_id } = (await reg.json()) as { client_id: string };
    const q = new URLSearchParams({
      client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp',
      state: 'client-state',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
      resource: gw.url,
    });
    const start = await browse(jar, `${gw.origin}/oauth/authorize?${q}`);
    const page = new URL(start.headers.get('location') ?? '', gw.origin).href;
    const html = await (await browse(jar, page)).text();
    assert.match(html, /Sign in with Company SSO/);
    const go = await postForm(jar, `${page}/idp`, { csrf: csrfOf(html) });
    assert.equal(go.status, 303);
    assert.ok(Jar.lines(go).some((l) => /^gatehouse_idp=.*HttpOnly; SameSite=Lax/i.test(l)));
    return new URL(go.headers.get('location') ?? '');
  }

  /** The (auto-signed-in) IdP answers: follows its redirects up to the gateway's callback URL. */
  async function atIdp(jar: Jar, url: URL): Promise<URL> {
    let current = url;
    for (let i = 0; i < 10; i++) {
      const res = await browse(jar, current.href);
      assert.ok([302, 303].includes(res.status), `IdP answered ${res.status}: ${await res.text()}`);
      const next = new URL(res.headers.get('location') ?? '', current);
      if (next.origin === gw.origin) return next;
      current = next;
    }
    throw new Error('too many redirects at the IdP');
  }

  /** Drives a whole browser flow from an authorization URL to the redirect to the MCP client. */
  async function browser(start: string): Promise<URL> {
    const jar = new Jar();
    let current = new URL(start);
    let res = await browse(jar, current.href);
    for (let i = 0; i < 20; i++) {
      if (res.status === 200) {
        const html = await res.text();
        const page = current.href.split('?')[0] ?? '';
        if (html.includes('Sign in with')) res = await postForm(jar, `${page}/idp`, { csrf: csrfOf(html) });
        else if (html.includes('/confirm"'))
          res = await postForm(jar, `${page}/confirm`, { csrf: csrfOf(html) });
        else throw new Error(`unexpected page ${current.href}: ${html}`);
        continue;
      }
      assert.ok(
        [302, 303].includes(res.status),
        `${current.href} answered ${res.status}: ${await res.text()}`,
      );
      const next = new URL(res.headers.get('location') ?? '', current);
      if (next.origin !== gw.origin && next.origin !== idp.issuer) return next;
      current = next;
      res = await browse(jar, current.href);
    }
    throw new Error('too many steps');
  }

  class IdpOAuthProvider extends ScriptedOAuthProvider {
    override async redirectToAuthorization(url: URL): Promise<void> {
      this.authorizationUrls.push(url);
      const redirect = await browser(url.href);
      const code = redirect.searchParams.get('code');
      assert.ok(code, `no code in ${redirect.href}`);
      assert.equal(redirect.searchParams.get('iss'), gw.origin, 'RFC 9207 iss from the gateway AS');
      this.codes.push(code);
    }
  }

  async function connect(): Promise<{ client: Client; provider: IdpOAuthProvider }> {
    const provider = new IdpOAuthProvider({ username: '', password: '' }, REDIRECT);
    for (let attempt = 0; attempt < 3; attempt++) {
      const transport = new StreamableHTTPClientTransport(new URL(gw.url), { authProvider: provider });
      const client = new Client({ name: 'idp-login-test', version: '1' });
      try {
        await client.connect(transport);
        return { client, provider };
      } catch (err) {
        if (!(err instanceof UnauthorizedError)) throw err;
        await transport.finishAuth(provider.codes.at(-1) ?? '');
      }
    }
    throw new Error('could not connect');
  }

  /** Waits for the login failure audited with `reason`, and returns it. */
  async function failure(reason: string): Promise<StoredAuditEvent> {
    let found: StoredAuditEvent | undefined;
    await eventually(`authn.failure ${reason} is audited`, () => {
      found = auditEvents(gw.dataDir, 'authn.failure').find(
        (e) => e.detail?.stage === 'login' && e.detail?.reason === reason,
      );
      return found !== undefined;
    });
    return found as StoredAuditEvent;
  }

  test('login page: "Sign in with Company SSO" only (local users off); a posted password is refused', async () => {
    const jar = new Jar();
    const url = await toIdp(jar);
    assert.equal(url.origin, idp.issuer);
    const reg = await fetch(`${gw.origin}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
    });
    const { client_id } = (await reg.json()) as { client_id: string };
    const j2 = new Jar();
    const start = await browse(
      j2,
      `${gw.origin}/oauth/authorize?${new URLSearchParams({
        client_id,
        redirect_uri: REDIRECT,
        response_type: 'code',
        scope: 'mcp',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      })}`,
    );
    const page = new URL(start.headers.get('location') ?? '', gw.origin).href;
    const html = await (await browse(j2, page)).text();
    assert.doesNotMatch(html, /name="password"/, 'no local password form');
    const posted = await postForm(j2, `${page}/login`, {
      csrf: csrfOf(html),
      username: 'alice',
      password: 'fake-canary-password-alice',
    });
    assert.equal(posted.status, 403, 'local sign-in is off, even for an existing local user');
  });

  test('OIDC Core §3.1: MCP client → gateway AS → company IdP (code + PKCE + nonce) → consent → token → tools/call as the IdP user, with tenant and groups', async () => {
    idp.loginAs = 'u-1';
    const { client, provider } = await connect();
    const sent = idp.authorizationRequests.at(-1);
    assert.ok(sent, 'the IdP saw an authorization request');
    assert.equal(sent.searchParams.get('response_type'), 'code');
    assert.equal(sent.searchParams.get('code_challenge_method'), 'S256', 'PKCE S256 (RFC 7636)');
    assert.ok(sent.searchParams.get('nonce'), 'nonce (OIDC Core §3.1.2.1)');
    assert.ok(sent.searchParams.get('state'));
    assert.match(sent.searchParams.get('scope') ?? '', /\bopenid\b/);
    assert.equal(sent.searchParams.get('redirect_uri'), `${gw.origin}/oauth/idp/callback`);

    const claims = decodeJwt(provider.saved?.access_token ?? '');
    assert.equal(claims.sub, 'dana', 'the Gatehouse user is the mapped username');
    assert.equal(claims.tenant, 'acme');
    assert.deepEqual(claims.groups, ['engineering', 'staff']);

    const tools = await client.listTools();
    assert.ok(
      tools.tools.some((t) => t.name === 'up__echo'),
      'policy (Role engineering in Tenant acme) allows',
    );
    const r = await client.callTool({ name: 'up__echo', arguments: { text: 'from dana' } });
    assert.notEqual(r.isError, true);
    await client.close();
    let call: StoredAuditEvent | undefined;
    await eventually('the call is audited', () => {
      call = auditEvents(gw.dataDir, 'call.attempted').at(-1);
      return call !== undefined;
    });
    const principal = call?.principal as Record<string, unknown>;
    assert.equal(principal.user, 'dana');
    assert.equal(principal.tenant, 'acme');

    const storage = new SqliteStorage(join(gw.dataDir, 'gatehouse.db'));
    try {
      const dana = await storage.users.get('dana');
      assert.equal(dana?.passwordHash, '', 'no local password');
      assert.equal(dana?.external?.issuer, idp.issuer);
      assert.equal(dana?.external?.subject, 'u-1', 'bound to the IdP subject');
    } finally {
      await storage.close();
    }
  });

  test('groups decide: an IdP user without the engineering group is refused by policy', async () => {
    idp.loginAs = 'u-2';
    const { client, provider } = await connect();
    assert.deepEqual(decodeJwt(provider.saved?.access_token ?? '').groups, ['staff']);
    await assert.rejects(
      client.callTool({ name: 'up__echo', arguments: { text: 'from eve' } }),
      /denied by policy/,
      'deny by default: eve is not in Role engineering',
    );
    await client.close();
  });

  test('T06/T09 RFC 9207 mix-up: an authorization response from another IdP (its iss) is refused and audited', async () => {
    idp.loginAs = 'u-1';
    rogue.loginAs = 'u-1';
    const jar = new Jar();
    const toHonest = await toIdp(jar);
    // The browser ends up at the other IdP with the same request: its code and iss come back.
    const atRogue = new URL(`${toHonest.pathname}${toHonest.search}`, rogue.issuer);
    const cb = await atIdp(jar, atRogue);
    assert.equal(cb.searchParams.get('iss'), rogue.issuer);
    const res = await browse(jar, cb.href);
    assert.equal(res.status, 303);
    const back = new URL(res.headers.get('location') ?? '', gw.origin);
    assert.equal(back.searchParams.get('error'), 'idp', 'back to the login page');
    const page = await (await browse(jar, back.href)).text();
    assert.match(page, /Sign-in through Company SSO failed/);
    const e = await failure('iss_mismatch');
    assert.equal(e.detail?.kind, 'idp');
  });

  test('T06 RFC 9207: a response without iss from an IdP that sends it is refused', async () => {
    const jar = new Jar();
    const cb = await atIdp(jar, await toIdp(jar));
    cb.searchParams.delete('iss');
    const res = await browse(jar, cb.href);
    assert.equal(res.status, 303);
    await failure('iss_missing');
  });

  test('T05 state: a forged state, another browser, and a replayed callback are refused and audited', async () => {
    const jar = new Jar();
    const cb = await atIdp(jar, await toIdp(jar));
    const forged = new URL(cb);
    forged.searchParams.set('state', 'forged-state');
    assert.equal((await browse(jar, forged.href)).status, 400);
    await failure('bad_state');
    // The genuine answer in another browser (login CSRF): refused, and the state is spent.
    assert.equal((await browse(new Jar(), cb.href)).status, 303);
    await failure('wrong_browser');
    assert.equal((await browse(jar, cb.href)).status, 400, 'replayed: the state is single use');
  });

  test('T06 code replay: an IdP code already redeemed, delivered again under a fresh state, is refused', async () => {
    idp.loginAs = 'u-1';
    const jar = new Jar();
    const first = await atIdp(jar, await toIdp(jar));
    const ok = await browse(jar, first.href);
    assert.equal(ok.status, 303);
    assert.match(
      ok.headers.get('location') ?? '',
      /\/oauth\/authorize\//,
      'logged in: the authorization resumes',
    );
    const jar2 = new Jar();
    const second = await atIdp(jar2, await toIdp(jar2));
    second.searchParams.set('code', first.searchParams.get('code') ?? '');
    const res = await browse(jar2, second.href);
    assert.equal(res.status, 303);
    assert.match(res.headers.get('location') ?? '', /error=idp/);
    await failure('code_exchange_failed');
  });

  test('OIDC Core §3.1.3.7: ID tokens with the wrong aud, nonce, iss or expiry are refused and audited', async () => {
    idp.loginAs = 'u-1';
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, (c: Record<string, unknown>) => Record<string, unknown>, RegExp][] = [
      ['aud', (c) => ({ ...c, aud: 'another-client' }), /aud/],
      ['nonce', (c) => ({ ...c, nonce: 'not-the-nonce' }), /nonce/],
      ['iss', (c) => ({ ...c, iss: rogue.issuer }), /iss/],
      ['exp', (c) => ({ ...c, iat: now - 7200, exp: now - 3600 }), /exp/],
      ['azp', (c) => ({ ...c, aud: ['gatehouse', 'other'], azp: 'other' }), /azp/],
    ];
    let seen = 0;
    try {
      for (const [name, tamper, check] of cases) {
        idp.tamperIdToken = tamper;
        const jar = new Jar();
        const cb = await atIdp(jar, await toIdp(jar));
        const res = await browse(jar, cb.href);
        assert.equal(res.status, 303, name);
        assert.match(res.headers.get('location') ?? '', /error=idp/, name);
        const invalid = () =>
          auditEvents(gw.dataDir, 'authn.failure').filter((e) => e.detail?.reason === 'id_token_invalid');
        await eventually(`the ${name} failure is audited`, () => invalid().length === seen + 1);
        assert.match(String(invalid().at(-1)?.detail?.check), check, name);
        seen++;
      }
    } finally {
      idp.tamperIdToken = undefined;
    }
  });

  test('account binding: an IdP user named like a local user is refused, never logged in as that user', async () => {
    idp.loginAs = 'u-3';
    try {
      const jar = new Jar();
      const cb = await atIdp(jar, await toIdp(jar));
      const res = await browse(jar, cb.href);
      assert.match(res.headers.get('location') ?? '', /error=idp/);
      const e = await failure('account_conflict');
      assert.equal(e.detail?.username, 'alice');
    } finally {
      idp.loginAs = 'u-1';
    }
  });
});
