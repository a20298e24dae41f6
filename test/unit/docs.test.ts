/** docs/config.md and docs/errors.md are generated; these tests fail when they drift (run `npm run docs`). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configDoc, errorsDoc } from '../../scripts/gen-docs.ts';
import { ERRORS } from '../../src/errors.ts';

test('docs/config.md matches the config schema', () => {
  assert.equal(
    readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8'),
    configDoc(),
    'run `npm run docs`',
  );
});

test('docs/errors.md matches the error table', () => {
  assert.equal(
    readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8'),
    errorsDoc(),
    'run `npm run docs`',
  );
});

test('every error code maps to a distinct meaning and a valid HTTP status and JSON-RPC code', () => {
  for (const [code, e] of Object.entries(ERRORS)) {
    assert.ok(e.http >= 200 && e.http < 600, code);
    assert.ok(Number.isInteger(e.jsonrpc) && e.jsonrpc < 0, code);
    // Cedar/jose style: lower-case messages without a final period.
    assert.ok(e.description.length > 0 && /^[a-z]/.test(e.description) && !e.description.endsWith('.'), code);
  }
});
