/**
 * The failed-login throttle on its own (src/auth/as/login-limit.ts), with a hand-driven clock:
 * backoff, forgetting after the window, refunds on success, bounded memory, address keys. THREATS T33.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AttemptLimiter,
  type AttemptVerdict,
  addressKey,
  typedUsername,
  usernameKey,
} from '../../src/auth/as/login-limit.ts';

function limiter(over: { maxKeys?: number; user?: number; address?: number } = {}) {
  const clock = { now: 1_000_000 };
  const l = new AttemptLimiter({
    rules: { user: { maxFailures: over.user ?? 3 }, address: { maxFailures: over.address ?? 10 } },
    windowMs: 60_000,
    lockoutMs: 1_000,
    maxLockoutMs: 8_000,
    maxKeys: over.maxKeys ?? 1000,
    now: () => clock.now,
  });
  const tryAs = (user: string, address = '192.0.2.1'): AttemptVerdict =>
    l.attempt([
      { dimension: 'user', value: user, resetOnSuccess: true },
      { dimension: 'address', value: address },
    ]);
  return { l, clock, tryAs };
}

test('T33 limiter: the attempt that reaches the limit locks the key; each later one doubles the lockout, capped', () => {
  const { clock, tryAs } = limiter();
  for (let i = 0; i < 3; i++) assert.equal(tryAs('alice').allowed, true, `attempt ${i + 1}`);
  const locked = tryAs('alice');
  assert.equal(locked.allowed, false);
  assert.equal(!locked.allowed && locked.retryAfterSec, 1);
  assert.equal(!locked.allowed && locked.firstRefusal, true, 'first refusal of this lockout is reported');
  const again = tryAs('alice');
  assert.equal(!again.allowed && again.firstRefusal, false, 'later refusals are only counted');
  const expected = [2, 4, 8, 8];
  for (const sec of expected) {
    clock.now += 60_000 / 100 + 8_000; // past any lockout, well within the window
    assert.equal(tryAs('alice').allowed, true, 'one attempt after the lockout ends');
    const v = tryAs('alice');
    assert.equal(!v.allowed && v.retryAfterSec, sec, `backoff ${sec}s`);
  }
  assert.equal(tryAs('bob').allowed, true, 'other users are not affected');
});

test('T33 limiter: a key is forgotten a window after its last attempt or lockout; success forgets the user', () => {
  const { clock, tryAs } = limiter();
  for (let i = 0; i < 3; i++) tryAs('alice');
  assert.equal(tryAs('alice').allowed, false);
  clock.now += 1_000 + 60_000;
  for (let i = 0; i < 3; i++) assert.equal(tryAs('alice').allowed, true, 'counting starts over');
  clock.now += 2_000;
  const ok = tryAs('alice');
  assert.ok(ok.allowed);
  ok.succeeded();
  for (let i = 0; i < 3; i++) assert.equal(tryAs('alice').allowed, true, 'the user key was reset on success');
});

test('T33 limiter: attempts are counted before the check, so a parallel burst cannot pass the limit', () => {
  const { tryAs } = limiter();
  // Five attempts "in flight" at once (none has failed yet): only three get through.
  const verdicts = Array.from({ length: 5 }, () => tryAs('alice'));
  assert.deepEqual(
    verdicts.map((v) => v.allowed),
    [true, true, true, false, false],
  );
});

test('T33 limiter: a success refunds its address attempt, failures from one address add up across users', () => {
  const { tryAs } = limiter({ user: 100, address: 3 });
  for (let i = 0; i < 10; i++) {
    const v = tryAs(`user${i % 2}`);
    assert.ok(v.allowed, 'successful logins do not count against the address');
    v.succeeded();
  }
  for (let i = 0; i < 3; i++) assert.equal(tryAs(`guess-${i}`).allowed, true);
  assert.equal(tryAs('someone-else').allowed, false, 'the address is locked for every user');
  assert.equal(tryAs('someone-else', '192.0.2.2').allowed, true, 'another address is not');
});

test('T33 limiter: memory is bounded (maxKeys per dimension)', () => {
  const { l, tryAs } = limiter({ maxKeys: 100, user: 1_000_000, address: 1_000_000 });
  for (let i = 0; i < 1000; i++) tryAs(`user-${i}`, `198.51.100.${i % 250}`);
  assert.ok(l.size('user') <= 100, `user keys ${l.size('user')}`);
  assert.ok(l.size('address') <= 100, `address keys ${l.size('address')}`);
});

test('T33 limiter: a dimension with maxFailures 0 is off', () => {
  const { tryAs } = limiter({ user: 100, address: 0 });
  for (let i = 0; i < 50; i++) assert.equal(tryAs(`u${i}`).allowed, true);
});

test('address keys: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by /64; username keys fold case and width', () => {
  assert.equal(addressKey('203.0.113.7'), '203.0.113.7');
  assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8:1:2::99'), addressKey('2001:db8:1:2:ffff::1'));
  assert.equal(addressKey(undefined), 'unknown');
  assert.equal(usernameKey('ＡLICE'), usernameKey('alice'));
  assert.equal(typedUsername(`a\u0000b${'x'.repeat(100)}`).length, 64);
  assert.equal(typedUsername('a\u0000b\u009b'), 'a?b?');
});
