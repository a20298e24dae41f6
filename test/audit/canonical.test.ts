import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  CanonicalError,
  canonicalDigest,
  canonicalJson,
  MAX_CANONICAL_DEPTH,
  RawJson,
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

/**
 * The reference: RFC 8785-style canonical JSON written the obvious way (sort every object's keys,
 * then JSON.stringify), for the values both accept. canonicalJson takes a native fast path for values
 * whose keys are already sorted and a hand-written one for the rest; both must give this text.
 */
function reference(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : reference(x)));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = reference(x);
    }
    return out;
  }
  return v;
}

test('canonical json: the fast path and the hand-written path agree with the reference on random values', () => {
  let seed = 42;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const keys = ['a', 'b', 'B', '10', '2', 'é', '\u{1F600}', '__proto__x', 'aa', ''];
  const strings = ['', 'x', '"q"', '\\', '\n', '\ud800', 'é', '\u{1F600}', '\u2028'];
  const gen = (depth: number): unknown => {
    const k = rnd(depth > 4 ? 5 : 8);
    switch (k) {
      case 0:
        return strings[rnd(strings.length)];
      case 1:
        return [0, -0, 1.5, 1e21, 5e-324, -7][rnd(6)];
      case 2:
        return rnd(2) === 0;
      case 3:
        return null;
      case 4:
        return undefined;
      case 5:
        return Array.from({ length: rnd(4) }, () => gen(depth + 1));
      default: {
        // Half of the objects are built with sorted keys (the fast path), half in random order.
        const picked = Array.from({ length: rnd(5) }, () => keys[rnd(keys.length)] as string);
        if (rnd(2) === 0) picked.sort();
        const o: Record<string, unknown> = rnd(3) === 0 ? Object.create(null) : {};
        for (const key of picked) o[key] = gen(depth + 1);
        return o;
      }
    }
  };
  for (let i = 0; i < 5000; i++) {
    const v = gen(0);
    if (v === undefined) continue;
    assert.equal(canonicalJson(v), JSON.stringify(reference(v)), `value #${i}`);
  }
  // A RawJson inside a sorted object is embedded as is; the members around it keep their canonical form.
  assert.equal(
    canonicalJson({ b: { y: 1, x: [2, { d: 1, c: 2 }] }, a: new RawJson('{"k":1}') }),
    '{"a":{"k":1},"b":{"x":[2,{"c":2,"d":1}],"y":1}}',
  );
  // A non-finite number inside an otherwise sorted object is still refused.
  assert.throws(() => canonicalJson({ a: 1, b: { c: Number.NaN } }), CanonicalError);
  assert.throws(() => canonicalJson({ a: [1, 2n] }), CanonicalError);
});
