/**
 * T20: the gateway's logger passes every line through the leak guard, so a registered secret that
 * reaches a log line (an upstream's error text, a detail field) is written redacted, in any encoding.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { LeakGuard } from '../../src/secrets/leak-guard.ts';

const SECRET = 'fake-canary-log-secret-2f9d1c';

test('T20: a registered secret is redacted from log lines, raw and encoded', async () => {
  const guard = new LeakGuard();
  guard.register(SECRET, 'upstream-key');
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const log = createLogger('info', { destination, redact: (line) => guard.redact(line).value });
  log.warn({ detail: `upstream said: bad key ${SECRET}` }, 'upstream error');
  log.info({ b64: Buffer.from(SECRET).toString('base64') }, `url ${encodeURIComponent(SECRET)}`);
  await new Promise((r) => setImmediate(r));
  const out = lines.join('');
  assert.equal(lines.length, 2);
  assert.ok(!out.includes(SECRET), out);
  assert.ok(!out.includes(Buffer.from(SECRET).toString('base64')), out);
  assert.match(out, /\[REDACTED:upstream-key\]/);
  // Each line is still one valid JSON object.
  for (const l of lines) JSON.parse(l);
});

test('without a redact hook, lines are written as they are (the hook is what protects them)', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  createLogger('info', { destination }).info({ v: SECRET }, 'x');
  await new Promise((r) => setImmediate(r));
  assert.match(lines.join(''), new RegExp(SECRET));
});
