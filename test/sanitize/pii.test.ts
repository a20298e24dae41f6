/** THREATS T19 (exfiltration, DLP): the PII detector's kinds and its checksums. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_PROFILE, sanitizeText } from '../../src/sanitize/index.ts';
import { detectPii } from '../../src/sanitize/pii.ts';

const ALL = ['email', 'phone', 'credit-card', 'us-ssn', 'iban', 'ip-address'] as const;
const kinds = (t: string): string[] => detectPii(t, ALL).map((f) => f.rule);

test('T19 pii: e-mail, phone, Luhn-valid card, SSN and mod-97-valid IBAN are found with spans', () => {
  const t =
    'Mail jane.roe@example.org, call (555) 123-4567, card 4111 1111 1111 1111, SSN 123-45-6789, IBAN DE89 3704 0044 0532 0130 00.';
  const f = detectPii(t, ALL);
  assert.deepEqual(
    f.map((x) => [x.rule, t.slice(x.start, x.end)]),
    [
      ['email', 'jane.roe@example.org'],
      ['phone', '(555) 123-4567'],
      ['credit-card', '4111 1111 1111 1111'],
      ['us-ssn', '123-45-6789'],
      ['iban', 'DE89 3704 0044 0532 0130 00'],
    ],
  );
  assert.deepEqual(kinds('Desk: +41 (0)96 471 07 95'), ['phone']);
  assert.deepEqual(kinds('host 10.1.2.3 up'), ['ip-address']);
});

test('T19 pii: checksums and rules keep look-alikes out', () => {
  assert.deepEqual(kinds('order 4111 1111 1111 1112'), []); // Luhn fails
  assert.deepEqual(kinds('SSN 000-12-3456 or 666-12-3456'), []);
  assert.deepEqual(kinds('IBAN DE89370400440532013001'), []); // mod 97 fails
  assert.deepEqual(kinds('released on 2024-05-16, build 12345'), []);
});

test('T19 pii: an optional profile, off by default; flag reports, redact replaces each value with its kind', () => {
  const t = 'Reach me at jane.roe@example.org';
  assert.equal(sanitizeText(t).action, 'none', 'PII is not looked for by default');
  const flag = { ...DEFAULT_PROFILE, actions: { ...DEFAULT_PROFILE.actions, pii: 'flag' as const } };
  assert.equal(sanitizeText(t, flag).action, 'flag');
  assert.equal(sanitizeText(t, flag).text, t);
  const redact = { ...DEFAULT_PROFILE, actions: { ...DEFAULT_PROFILE.actions, pii: 'redact' as const } };
  assert.equal(sanitizeText(t, redact).text, 'Reach me at [REDACTED:pii-email]');
});
