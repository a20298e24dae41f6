import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  CanonicalError,
  canonicalDigest,
  canonicalJson,
  MAX_CANONICAL_DEPTH,
  toAuditValue,
} from '../../src/audit/canonical.ts';

test('canonical json: sorted keys, no whitespace, nested', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }),
    '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}',
  );
  assert.equal(canonicalJson([]), '[]');
  assert.equal(canonicalJson({}), '{}');
  assert.equal(canonicalJson('x'), '"x"');
  assert.equal(canonicalJson(true), 'true');
});

test('canonical json: keys sorted by utf-16 code units (rfc 8785 §3.2.3 example)', () => {
  const obj = {
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  };
  // The order RFC 8785 gives: the emoji (surrogates 0xd83d...) sorts before U+FB33.
  const keys = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'];
  const expected = `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(obj[k as keyof typeof obj])}`).join(',')}}`;
  assert.equal(canonicalJson(obj), expected);
  assert.ok(expected.startsWith('{"\\r":"Carriage Return","1":"One"'));
});

test('canonical json: numbers in ecmascript shortest form (rfc 8785 appendix b)', () => {
  const vectors: [number, string][] = [
    [0, '0'],
    [-0, '0'],
    [1, '1'],
    [-1.5, '-1.5'],
    [1e21, '1e+21'],
    [1e-7, '1e-7'],
    [123456789012345680000, '123456789012345680000'],
    [0.000001, '0.000001'],
    [9007199254740991, '9007199254740991'],
    [333333333.3333333, '333333333.3333333'],
    [5e-324, '5e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
  ];
  for (const [n, s] of vectors) assert.equal(canonicalJson(n), s, String(n));
});

test('canonical json: string escapes as json', () => {
  assert.equal(canonicalJson('a"b\\c\n\t\u0001'), '"a\\"b\\\\c\\n\\t\\u0001"');
  assert.equal(canonicalJson('\u20ac'), '"\u20ac"', 'non-ascii stays literal');
});

test('canonical json: undefined members are omitted, undefined array slots are null', () => {
  assert.equal(canonicalJson({ a: undefined, b: 1 }), '{"b":1}');
  assert.equal(canonicalJson([undefined, 1]), '[null,1]');
});

test('canonical json: values without one meaning are refused', () => {
  assert.throws(() => canonicalJson(Number.NaN), CanonicalError);
  assert.throws(() => canonicalJson({ x: Number.POSITIVE_INFINITY }), CanonicalError);
  assert.throws(() => canonicalJson(1n), CanonicalError);
  assert.throws(() => canonicalJson({ f: () => 1 }), CanonicalError);
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  assert.throws(() => canonicalJson(cyclic), /cyclic/);
  assert.throws(() => canonicalJson(undefined), CanonicalError);
});

test('T32 canonical json: nesting is bounded by a fixed depth, not by the call stack', () => {
  const nest = (d: number): unknown => JSON.parse(`${'['.repeat(d)}1${']'.repeat(d)}`);
  assert.equal(canonicalJson(nest(MAX_CANONICAL_DEPTH)).length, 2 * MAX_CANONICAL_DEPTH + 1);
  assert.throws(() => canonicalJson(nest(MAX_CANONICAL_DEPTH + 1)), /nested deeper than 256 levels/);
  // 3000 levels used to overflow the stack (a RangeError, depending on how deep the caller was).
  assert.throws(() => canonicalJson(nest(3000)), CanonicalError);
});

test('T32 audit form: total and deterministic for values json cannot carry', () => {
  const v = toAuditValue({ a: Number.NaN, b: [Number.NEGATIVE_INFINITY, 1n], c: 'x\ud800', d: nestObj(70) });
  assert.equal(v.normalised, true);
  const json = canonicalJson(v.value);
  assert.equal(
    json,
    canonicalJson(
      toAuditValue({ a: Number.NaN, b: [Number.NEGATIVE_INFINITY, 1n], c: 'x\ud800', d: nestObj(70) }).value,
    ),
  );
  assert.ok(json.startsWith('{"a":"NaN","b":["-Infinity","1"],"c":"x\\ud800","d":{"k":'));
  assert.match(json, /"\[nested deeper than 64 levels\]"/);
  const plain = { x: [1, 'two', { y: null }] };
  const same = toAuditValue(plain);
  assert.equal(same.normalised, false);
  assert.equal(canonicalJson(same.value), canonicalJson(plain));
  const proto = toAuditValue(JSON.parse('{"__proto__":{"a":1}}'));
  assert.equal(canonicalJson(proto.value), '{"__proto__":{"a":1}}');
});

function nestObj(d: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < d; i++) v = { k: v };
  return v;
}

test('canonical json: toJSON is honoured (dates) and shared references are not cycles', () => {
  assert.equal(canonicalJson({ t: new Date(0) }), '{"t":"1970-01-01T00:00:00.000Z"}');
  const shared = { x: 1 };
  assert.equal(canonicalJson([shared, shared]), '[{"x":1},{"x":1}]');
});

test('argument digest is sha-256 of the canonical form, independent of key order', () => {
  const a = canonicalDigest({ path: '/etc/passwd', mode: 'r' });
  const b = canonicalDigest({ mode: 'r', path: '/etc/passwd' });
  assert.equal(a, b);
  assert.equal(a, createHash('sha256').update('{"mode":"r","path":"/etc/passwd"}').digest('hex'));
});
