/**
 * requestState (src/rev2026/state.ts, mrtr.ts): AES-256-GCM, bound to principal, grant, request and
 * expiry. The e2e half (replay, another principal, tampering through the gateway) is in
 * test/e2e/rev2026.test.ts; expiry is checked here, where the clock is a parameter.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stateMismatch } from '../../src/rev2026/mrtr.ts';
import { principalDigest, RequestStateCodec, type StatePayload } from '../../src/rev2026/state.ts';

const NOW = 1_800_000_000_000;
const payload: StatePayload = {
  s: 'held-1',
  p: principalDigest('issuer\0alice'),
  g: 'grant-1',
  m: 'tools/call',
  n: 'conf__ask',
  a: 'args-digest',
  e: NOW + 60_000,
};
const expect = {
  principalKey: 'issuer\0alice',
  grant: 'grant-1',
  method: 'tools/call',
  name: 'conf__ask',
  digest: 'args-digest',
  now: NOW,
};

test('a sealed state opens with its key only, and not once altered', () => {
  const codec = new RequestStateCodec();
  const state = codec.seal(payload);
  assert.deepEqual(codec.open(state), payload);
  assert.equal(new RequestStateCodec().open(state), undefined, 'another key (another gateway process)');
  const raw = Buffer.from(state, 'base64url');
  for (const at of [0, 14, raw.length - 1]) {
    const altered = Buffer.from(raw);
    altered[at] = (altered[at] ?? 0) ^ 0x80;
    assert.equal(codec.open(altered.toString('base64url')), undefined, `byte ${at}`);
  }
  for (const junk of ['', 'x', 42, null, 'a'.repeat(5000)]) assert.equal(codec.open(junk), undefined);
  assert.ok(!Buffer.from(state, 'base64url').toString('latin1').includes('grant-1'), 'nothing in clear');
});

test('T10-11: a state resumes only its own principal, grant and request, before it expires', () => {
  assert.equal(stateMismatch(payload, expect), undefined);
  assert.equal(
    stateMismatch(payload, { ...expect, principalKey: 'issuer\0bob' }),
    'issued to another principal',
  );
  assert.equal(stateMismatch(payload, { ...expect, grant: 'grant-2' }), 'issued under another grant');
  assert.equal(stateMismatch(payload, { ...expect, name: 'conf__other' }), 'issued for another request');
  assert.equal(stateMismatch(payload, { ...expect, method: 'prompts/get' }), 'issued for another request');
  assert.equal(stateMismatch(payload, { ...expect, digest: 'other' }), 'issued for other arguments');
  assert.equal(stateMismatch(payload, { ...expect, now: NOW + 60_000 }), 'expired');
});
