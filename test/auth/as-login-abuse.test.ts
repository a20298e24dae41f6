/**
 * Login abuse at the embedded AS (THREATS T33, issue #11): failed logins are throttled per username as
 * typed and per client address with exponential backoff, reported for audit as `authn.failure`, and
 * never reveal whether a user exists. The connect flow's login is this same page (see
 * test/e2e/credentials.test.ts for it end to end); client secrets at the token endpoint are throttled
 * the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LoginFailure } from '../../src/auth/as/index.ts';
import { BAD_CREDENTIALS, TOO_MANY_ATTEMPTS } from '../../src/auth/as/interactions.ts';
import { checkLocalPassword, hashPassword } from '../../src/auth/as/passwords.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import {
  authorizeUrl,
  browse,
  csrfOf,
  Jar,
  pkce,
  postForm,
  registerPublic,
  startAs,
  type TestAs,
  tokenRequest,
} from './as-harness.ts';

const REDIRECT = 'http://127.0.0.1:9999/callback';
const ALICE = { username: 'alice', password: 'correct horse battery' };
const LOCKOUT_SEC = 30;

interface LoginForm {
  jar: Jar;
  /** The interaction page URL; the form posts to `${page}/login`. */
  page: string;
  uid: string;
  csrf: string;
}

async function openLogin(t: TestAs, clientId: string): Promise<LoginForm> {
  const jar = new Jar();
  const start = await browse(
    jar,
    authorizeUrl(t, {
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp',
      state: 's',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
    }),
  );
  const page = new URL(start.headers.get('location') ?? '', t.issuer).href;
  const res = await browse(jar, page);
  assert.equal(res.status, 200);
  const uid = page.split('/').at(-1) ?? '';
  return { jar, page, uid, csrf: csrfOf(await res.text()) };
}

function submit(f: LoginForm, username: string, password: string): Promise<Response> {
  return postForm(f.jar, `${f.page}/login`, { csrf: f.csrf, username, password });
}

/** What a client sees of an answer, with the interaction's own uid and CSRF token blanked. */
async function seen(res: Response, f: LoginForm) {
  const headers = [...res.headers].filter(([k]) => k !== 'date' && k !== 'keep-alive' && k !== 'connection');
  const body = (await res.text()).replaceAll(f.uid, '<uid>').replaceAll(f.csrf, '<csrf>');
  return { status: res.status, headers, body };
}

describe('login abuse', () => {
  let t: TestAs;
  let clientId: string;
  const clock = { offset: 0 };
  const failures: LoginFailure[] = [];

  before(async () => {
    t = await startAs({
      config: {
        login: { maxFailuresPerUser: 3, maxFailuresPerAddress: 12, lockoutSec: LOCKOUT_SEC, windowSec: 900 },
        clients: [
          {
            clientId: 'headless',
            clientSecret: 'fake-canary-secret-headless',
            grantTypes: ['client_credentials'],
          },
        ],
      },
      users: { alice: ALICE.password, bob: 'bob password 123' },
      onLoginFailure: (f) => failures.push(f),
      loginClock: () => Date.now() + clock.offset,
    });
    clientId = (await registerPublic(t)).client_id;
  });
  after(async () => t.close());

  /** Moves the throttle's clock past every lockout and window: a fresh start for the next test. */
  const forget = (): void => {
    clock.offset += 10 * 24 * 3600 * 1000;
    failures.length = 0;
  };

  test('T33 brute force: one user is locked out after maxFailuresPerUser; the right password is then refused too', async () => {
    forget();
    const f = await openLogin(t, clientId);
    for (let i = 0; i < 3; i++) {
      const res = await submit(f, 'alice', `guess-${i}`);
      assert.equal(res.status, 401, `guess ${i}`);
      assert.match(await res.text(), new RegExp(BAD_CREDENTIALS.replace('.', '\\.')));
    }
    const right = await submit(f, 'alice', ALICE.password);
    assert.equal(right.status, 429, 'locked out: the correct password does not get in');
    assert.equal(right.headers.get('retry-after'), String(LOCKOUT_SEC));
    assert.match(await right.text(), /Too many failed sign-in attempts/);
    const folded = await submit(f, 'ALICE', ALICE.password);
    assert.equal(folded.status, 429, 'the name is folded: ALICE is alice');
    assert.deepEqual(
      failures.map((x) => [x.kind, x.reason, x.username, x.client, x.repeat ?? false]),
      [
        ['password', 'bad_credentials', 'alice', clientId, false],
        ['password', 'bad_credentials', 'alice', clientId, false],
        ['password', 'bad_credentials', 'alice', clientId, false],
        ['password', 'rate_limited', 'alice', clientId, false],
        ['password', 'rate_limited', 'ALICE', clientId, true],
      ],
      'each failure reported; refusals of one lockout reported once, then only counted',
    );
    assert.ok(failures.every((x) => x.address === '127.0.0.1'));
    assert.equal((await submit(f, 'bob', 'bob password 123')).status, 303, 'another user is not locked');

    // Exponential backoff: after the lockout, one more failure locks for twice as long.
    clock.offset += LOCKOUT_SEC * 1000;
    const g = await openLogin(t, clientId);
    assert.equal((await submit(g, 'alice', 'guess-again')).status, 401);
    const backoff = await submit(g, 'alice', ALICE.password);
    assert.equal(backoff.status, 429);
    assert.equal(backoff.headers.get('retry-after'), String(2 * LOCKOUT_SEC));
    // After that lockout, the right password gets in, and the user's count starts over.
    clock.offset += 2 * LOCKOUT_SEC * 1000;
    assert.equal((await submit(g, 'alice', ALICE.password)).status, 303);
    const h = await openLogin(t, clientId);
    for (let i = 0; i < 2; i++) assert.equal((await submit(h, 'alice', `guess-${i}`)).status, 401);
    assert.equal((await submit(h, 'alice', ALICE.password)).status, 303, 'a success reset the user');
  });

  test('T33 brute force: failures are forgotten after the window', async () => {
    forget();
    const f = await openLogin(t, clientId);
    for (let i = 0; i < 3; i++) assert.equal((await submit(f, 'alice', `guess-${i}`)).status, 401);
    assert.equal((await submit(f, 'alice', ALICE.password)).status, 429);
    clock.offset += (LOCKOUT_SEC + 900) * 1000;
    for (let i = 0; i < 2; i++) assert.equal((await submit(f, 'alice', `guess-${i}`)).status, 401);
    assert.equal((await submit(f, 'alice', ALICE.password)).status, 303, 'counting started over');
  });

  test('T33 password spraying: many usernames from one address hit the per-address limit', async () => {
    forget();
    const f = await openLogin(t, clientId);
    for (let i = 0; i < 12; i++) {
      assert.equal((await submit(f, `user-${i}`, 'Winter2026!')).status, 401, `user-${i}`);
    }
    const next = await submit(f, 'user-12', 'Winter2026!');
    assert.equal(next.status, 429, 'the address is locked');
    const alice = await submit(f, 'alice', ALICE.password);
    assert.equal(alice.status, 429, 'for every user, also with the right password');
    assert.deepEqual(
      failures.slice(-2).map((x) => x.reason),
      ['rate_limited', 'rate_limited'],
    );
  });

  test('T33 user enumeration: unknown user, wrong password and a user without a local password get identical answers and audit events', async () => {
    forget();
    // A user of the upstream identity provider exists but has no password to check.
    await t.storage.users.putExternal(
      'carol',
      { issuer: 'https://idp.example', subject: 'c-1', updatedAt: 1 },
      Date.now(),
    );
    const answers = [];
    for (const username of ['alice', 'mallory', 'carol']) {
      const f = await openLogin(t, clientId);
      answers.push(await seen(await submit(f, username, 'not the password'), f));
    }
    assert.equal(answers[0]?.status, 401);
    assert.deepEqual(answers[1], answers[0], 'unknown user = wrong password');
    assert.deepEqual(answers[2], answers[0], 'user without a local password = wrong password');
    const events = failures.map(({ username: _typed, ...rest }) => rest);
    assert.equal(events.length, 3);
    assert.deepEqual(events[1], events[0], 'the audit record says nothing about existence');
    assert.deepEqual(events[2], events[0]);
    assert.ok(!('exists' in (failures[0] ?? {})));

    // Locked out: the same again, for a user that exists and one that does not.
    const locked = [];
    for (const username of ['alice', 'nobody']) {
      const f = await openLogin(t, clientId);
      for (let i = 0; i < 3; i++) await submit(f, username, `guess-${i}`);
      locked.push(await seen(await submit(f, username, 'whatever'), f));
    }
    assert.equal(locked[0]?.status, 429);
    assert.match(locked[0]?.body ?? '', new RegExp(TOO_MANY_ATTEMPTS.slice(0, 20)));
    assert.deepEqual(locked[1], locked[0], 'a lockout looks the same whether or not the user exists');
  });

  test('T33 client secrets: wrong secrets lock the client out at the token endpoint; the right one is refused until the lockout ends', async () => {
    forget();
    const creds = (secret: string) => ({ id: 'headless', secret });
    const form = { grant_type: 'client_credentials', scope: 'mcp' };
    for (let i = 0; i < 3; i++) {
      const r = await tokenRequest(t, form, creds(`wrong-${i}`));
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_client');
    }
    const locked = await tokenRequest(t, form, creds('fake-canary-secret-headless'));
    assert.equal(locked.status, 401, 'looks like a wrong secret');
    assert.equal(locked.body.error, 'invalid_client');
    assert.deepEqual(
      failures.map((f) => [f.kind, f.reason, f.client]),
      [
        ['client', 'bad_credentials', 'headless'],
        ['client', 'bad_credentials', 'headless'],
        ['client', 'bad_credentials', 'headless'],
        ['client', 'rate_limited', 'headless'],
      ],
    );
    assert.ok(
      failures.every((f) => f.address === '127.0.0.1'),
      'the address comes from the request (oidc-provider context)',
    );
    clock.offset += LOCKOUT_SEC * 1000;
    const ok = await tokenRequest(t, form, creds('fake-canary-secret-headless'));
    assert.equal(ok.status, 200, 'after the lockout the secret works again');
    for (let i = 0; i < 2; i++) assert.equal((await tokenRequest(t, form, creds(`w-${i}`))).status, 401);
    assert.equal(
      (await tokenRequest(t, form, creds('fake-canary-secret-headless'))).status,
      200,
      'a success reset the client',
    );
  });
});

test('T33 checkLocalPassword: the one password check refuses unknown users and users without a local password', async () => {
  const storage = new SqliteStorage(':memory:');
  try {
    await storage.users.add({
      username: 'dave',
      passwordHash: await hashPassword('dave password'),
      createdAt: 1,
    });
    await storage.users.putExternal('erin', { issuer: 'https://idp', subject: 'e', updatedAt: 1 }, 1);
    assert.equal((await checkLocalPassword(storage.users, 'dave', 'dave password'))?.username, 'dave');
    assert.equal(await checkLocalPassword(storage.users, 'dave', 'wrong'), undefined);
    assert.equal(await checkLocalPassword(storage.users, 'nobody', 'dave password'), undefined);
    assert.equal(await checkLocalPassword(storage.users, 'erin', ''), undefined, 'no password, no login');
    assert.equal(await checkLocalPassword(storage.users, '', ''), undefined);
  } finally {
    await storage.close();
  }
});
