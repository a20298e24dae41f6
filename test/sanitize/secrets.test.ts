/**
 * THREATS T19/T20: secret patterns (rules/secrets.json, coverage of the secretlint recommended preset).
 * The canaries are documented example values or obviously fake.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_PROFILE, SECRET_RULES, sanitizeText, scanText } from '../../src/sanitize/index.ts';
import { detectSecrets } from '../../src/sanitize/secrets.ts';

const found = (t: string): string[] => detectSecrets(t).map((f) => f.rule);

test('T20 secrets: token formats of the preset are found, with the span of the token', () => {
  const cases: [string, string][] = [
    ['AKIAIOSFODNN7EXAMPLE', 'aws-access-key-id'],
    ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws-secret-access-key'],
    [`ghp_${'a1B2'.repeat(9)}`, 'github-token'],
    [`xoxb-123456789012-1234567890123-${'A'.repeat(24)}`, 'slack-token'],
    [`sk_live_${'x'.repeat(24)}`, 'stripe-secret-key'],
    [`glpat-${'Ab1_'.repeat(5)}`, 'gitlab-token'],
    [`npm_${'a'.repeat(36)}`, 'npm-access-token'],
    ['https://deploy:s3cr3tK3y2024@files.example.net/x', 'basic-auth-url'],
    ['postgres://api:myC0mpl3xPwd@db.internal.example:5432/app', 'database-connection-string'],
    [`AIza${'B'.repeat(35)}`, 'google-api-key'],
  ];
  for (const [text, rule] of cases) {
    const f = detectSecrets(`value: ${text} end`);
    assert.deepEqual(
      f.map((x) => x.rule),
      [rule],
      text,
    );
  }
  const t = 'key AKIAIOSFODNN7EXAMPLE here';
  const [f] = detectSecrets(t);
  assert.equal(t.slice(f?.start, f?.end), 'AKIAIOSFODNN7EXAMPLE');
});

test('T20 secrets: a PEM private key (also JSON-escaped) is found; placeholders are not', () => {
  const body =
    'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDndJt7NaG8T64/qMJ9QyvAY42n1+m0aOk5DAvPgKwaAFOWzxPx';
  assert.deepEqual(found(`-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----`), ['private-key']);
  assert.deepEqual(
    found(JSON.stringify({ k: `-----BEGIN RSA PRIVATE KEY-----\n${body}\n-----END RSA PRIVATE KEY-----` })),
    ['private-key'],
  );
  assert.deepEqual(found('-----BEGIN PRIVATE KEY-----\nxxx\n-----END PRIVATE KEY-----'), []);
});

test('T20 secrets: templates and placeholders in URLs are not credentials', () => {
  for (const t of [
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell-style template variable, on purpose
    'https://${user}:${password}@api.example.com',
    'https://username:password@example.com',
    'https://YOUR_USERNAME:YOUR_PASSWORD@api.example.com',
    'mongodb://user:password@localhost:27017/db',
    'https://example.com/path',
  ])
    assert.deepEqual(found(t), [], t);
});

test('T20 secrets: a zero-width character inside a key does not hide it (detection on the cleaned text)', () => {
  const t = 'key AKIAIOSF\u200bODNN7EXAMPLE!';
  const r = scanText(t);
  const s = r.findings.find((f) => f.type === 'secret');
  assert.ok(s, 'found');
  assert.equal(t.slice(s.start, s.end), 'AKIAIOSF\u200bODNN7EXAMPLE');
  assert.equal(sanitizeText(t).text, 'key [REDACTED:aws-access-key-id]!');
});

test('T20 secrets: an allow-list entry or a disabled rule lets a value through', () => {
  const t = 'AKIAIOSFODNN7EXAMPLE';
  assert.deepEqual(scanText(t, { ...DEFAULT_PROFILE, secretAllow: ['AKIAIOSFODNN7EXAMPLE'] }).findings, []);
  assert.deepEqual(scanText(t, { ...DEFAULT_PROFILE, secretAllow: [/AKIA[A-Z0-9]+/] }).findings, []);
  assert.deepEqual(scanText(t, { ...DEFAULT_PROFILE, secretRulesOff: ['aws-access-key-id'] }).findings, []);
});

test('T20 secrets: every rule in the shipped rule set compiles and has a title', () => {
  assert.ok(SECRET_RULES.length >= 30);
  for (const r of SECRET_RULES) assert.ok(r.id && r.title);
});
