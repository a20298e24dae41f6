/**
 * Microbenchmark of the leak guard (numbers quoted in src/secrets/leak-guard.ts):
 *   node --import tsx test/secrets/bench-leak-guard.ts
 * Compares the guard's prefix index with the two obvious alternatives: one
 * combined RegExp alternation and indexOf per form. Not a test (no .test.ts).
 */
import { randomBytes } from 'node:crypto';
import { LeakGuard } from '../../src/secrets/leak-guard.ts';

function words(bytes: number): string {
  const vocab = [
    'the',
    'result',
    'of',
    'tool',
    'call',
    'json',
    '{"id":',
    '42,',
    'path',
    '/tmp/x',
    'ok',
    'Error:',
  ];
  let s = '';
  while (s.length < bytes) s += `${vocab[Math.floor(Math.random() * vocab.length)]} `;
  return s.slice(0, bytes);
}

function time(label: string, n: number, fn: () => unknown): number {
  for (let i = 0; i < Math.min(50, n); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  console.log(`${label.padEnd(58)} ${ms.toFixed(4)} ms/op`);
  return ms;
}

for (const secrets of [10, 1000]) {
  const guard = new LeakGuard();
  const values: string[] = [];
  for (let i = 0; i < secrets; i++) {
    const v = `${randomBytes(24).toString('base64url')}`;
    values.push(v);
    guard.register(v, `s${i}`);
  }
  const clean = words(10 * 1024);
  let dirty = clean;
  for (let i = 0; i < 10; i++) {
    const at = Math.floor((clean.length * i) / 10);
    dirty = `${dirty.slice(0, at)}${values[i % values.length]}${dirty.slice(at)}`;
  }
  // Alternatives, over the same forms (raw + base64 + hex only, fewer than the guard handles).
  const forms = values.flatMap((v) => [
    v,
    Buffer.from(v).toString('base64').replace(/=+$/, ''),
    Buffer.from(v).toString('hex'),
  ]);
  const re = new RegExp(
    forms
      .sort((a, b) => b.length - a.length)
      .map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('|'),
    'g',
  );
  console.log(`\n${secrets} secrets, 10 KiB text`);
  const g1 = time('leak guard, no secret in text', 2000, () => guard.redact(clean));
  time('leak guard, 10 secrets in text', 2000, () => guard.redact(dirty));
  time('combined RegExp, no secret in text', secrets > 100 ? 50 : 2000, () => clean.replace(re, '[R]'));
  time('indexOf per form, no secret in text', secrets > 100 ? 50 : 2000, () => {
    for (const f of forms) if (clean.indexOf(f) !== -1) return true;
    return false;
  });
  console.log(`leak guard throughput: ${((10 * 1024) / 1e6 / (g1 / 1000)).toFixed(0)} MB/s`);
}
