/** The leak guard (src/secrets/leak-guard.ts): exact-match redaction of brokered secrets, THREATS T20. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeakGuard, MIN_SECRET_LENGTH } from '../../src/secrets/leak-guard.ts';

// Contains characters that change under base64 vs base64url and under URL encoding.
const CANARY = 'canary-secret-not-real-?/+&= ü~>>';
const TOKEN = 'canary-lease-token-not-real-9d1f';

function guard(): LeakGuard {
  const g = new LeakGuard();
  assert.equal(g.register(CANARY, 'github-token'), true);
  assert.equal(g.register(TOKEN, 'lease:L1'), true);
  return g;
}

test('T20 leak guard: the raw value is redacted in text, with its label and form', () => {
  const g = guard();
  const r = g.redact(`upstream said: token=${CANARY}; again ${CANARY}.`);
  assert.equal(r.value, 'upstream said: token=[REDACTED:github-token]; again [REDACTED:github-token].');
  assert.deepEqual(r.findings, [
    { label: 'github-token', form: 'raw' },
    { label: 'github-token', form: 'raw' },
  ]);
});

test('T20 leak guard: base64, base64url, URL-encoded, form-encoded, hex and JSON-escaped forms are redacted', () => {
  const g = guard();
  const buf = Buffer.from(CANARY);
  const b64 = buf.toString('base64');
  const b64url = buf.toString('base64url');
  assert.notEqual(b64.replace(/=+$/, ''), b64url, 'the canary differs in base64 and base64url');
  const cases: Array<[string, string]> = [
    [`Basic ${b64}`, 'base64'],
    [`x=${b64url}&y=1`, 'base64url'],
    [`https://evil.example/?q=${encodeURIComponent(CANARY)}`, 'url'],
    [`body: ${new URLSearchParams({ k: CANARY }).toString()}`, 'url'],
    [`dump ${buf.toString('hex')}`, 'hex'],
    [`DUMP ${buf.toString('hex').toUpperCase()}`, 'hex'],
  ];
  for (const [text, form] of cases) {
    const r = g.redact(text);
    assert.ok(r.value.includes('[REDACTED:github-token]'), `${form}: ${r.value}`);
    assert.equal(r.findings[0]?.form, form, text);
    assert.ok(!r.value.includes(CANARY), form);
    for (const enc of [b64.replace(/=+$/, ''), b64url, encodeURIComponent(CANARY), buf.toString('hex')]) {
      assert.ok(!r.value.includes(enc), `${form}: no encoded form left`);
    }
  }
  // A value with a quote and a backslash, seen inside serialised JSON (a log line).
  g.register('canary-"quoted"\\not-real', 'quoted');
  const line = JSON.stringify({ msg: 'tool failed', detail: 'pw=canary-"quoted"\\not-real' });
  const rj = g.redact(line);
  assert.equal(rj.value, '{"msg":"tool failed","detail":"pw=[REDACTED:quoted]"}');
  assert.equal(rj.findings[0]?.form, 'json');
  // Padded base64: the padding stays, the value does not.
  assert.equal(g.redact(b64).value.startsWith('[REDACTED:github-token]'), true);
});

test('T20 leak guard: values shorter than 8 bytes are not registered (false positives, redaction oracle)', () => {
  const g = new LeakGuard();
  assert.equal(MIN_SECRET_LENGTH, 8);
  assert.equal(g.register('hunter2', 'short'), false);
  assert.equal(g.size, 0);
  assert.equal(g.redact('my password is hunter2').value, 'my password is hunter2');
  assert.equal(g.register('hunter22', 'eight'), true);
  assert.equal(g.redact('my password is hunter22').value, 'my password is [REDACTED:eight]');
});

test('T20 leak guard: counts redactions per label, never values', () => {
  const g = guard();
  g.redact(`${CANARY} ${TOKEN}`);
  g.redact(`${TOKEN}`);
  g.redactJson({ a: [TOKEN] });
  assert.deepEqual(g.counts(), { 'github-token': 1, 'lease:L1': 3 });
  assert.equal(g.total, 4);
  assert.ok(!JSON.stringify(g.counts()).includes('canary'));
});

test('T20 leak guard: redactJson walks strings and keys, copies only what changed', () => {
  const g = guard();
  const untouched = { content: [{ type: 'text', text: 'nothing here' }] };
  const r0 = g.redactJson(untouched);
  assert.equal(r0.value, untouched, 'same object when nothing matched');
  const input = {
    content: [{ type: 'text', text: `env: API_KEY=${CANARY}` }, untouched],
    isError: false,
    n: 3,
    nested: { [TOKEN]: null, deep: [[`Bearer ${TOKEN}`]] },
  };
  const r = g.redactJson(input);
  assert.deepEqual(r.value, {
    content: [{ type: 'text', text: 'env: API_KEY=[REDACTED:github-token]' }, untouched],
    isError: false,
    n: 3,
    nested: { '[REDACTED:lease:L1]': null, deep: [['Bearer [REDACTED:lease:L1]']] },
  });
  assert.equal(r.value.content[1], untouched, 'unchanged branches are shared');
  assert.equal((input.content[0] as { text: string }).text, `env: API_KEY=${CANARY}`, 'input not mutated');
  assert.ok(!JSON.stringify(r.value).includes('canary'));
  assert.equal(r.findings.length, 3);
});

test('T20 leak guard: overlapping values (one contains another) redact the longest; unregister forgets', () => {
  const g = new LeakGuard();
  g.register('canary-inner-not-real', 'inner');
  g.register('prefix-canary-inner-not-real-suffix', 'outer');
  assert.equal(
    g.redact('a prefix-canary-inner-not-real-suffix b canary-inner-not-real c').value,
    'a [REDACTED:outer] b [REDACTED:inner] c',
  );
  // Adjacent matches, a match at the very end, and a value equal to the whole text.
  assert.equal(
    g.redact('canary-inner-not-realcanary-inner-not-real').value,
    '[REDACTED:inner][REDACTED:inner]',
  );
  g.unregister('inner');
  assert.equal(g.redact('x canary-inner-not-real').value, 'x canary-inner-not-real');
  assert.equal(g.redact('prefix-canary-inner-not-real-suffix').value, '[REDACTED:outer]');
  g.unregister('outer');
  assert.equal(g.size, 0);
});

test('T20 leak guard: binary values are found in their encoded forms; labels are validated', () => {
  const g = new LeakGuard();
  const key = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x81, 0x82, 0x83, 0x84]);
  assert.equal(g.register(key, 'signing.key'), true);
  assert.equal(g.redact(`k=${key.toString('base64')}`).value, 'k=[REDACTED:signing.key]');
  assert.equal(g.redact(`k=${key.toString('hex')}`).value, 'k=[REDACTED:signing.key]');
  assert.throws(() => g.register('canary-secret-not-real-x', 'bad label with spaces'), /invalid label/);
  assert.throws(() => g.register('canary-secret-not-real-x', ''), /invalid label/);
});

test('T20 leak guard: many secrets, random text, every planted value found (hash collisions do not hide one)', () => {
  const g = new LeakGuard();
  const values: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const v = `canary-${i.toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
    values.push(v);
    g.register(v, `s${i}`);
  }
  const picks = [0, 1, 999, 1999, 1234];
  const text = picks.map((i) => `lorem ipsum ${values[i]} dolor`).join('\n');
  const r = g.redact(text);
  assert.deepEqual(
    r.findings.map((f) => f.label),
    picks.map((i) => `s${i}`),
  );
  assert.ok(!r.value.includes('canary-'));
});
