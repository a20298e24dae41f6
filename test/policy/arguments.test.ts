/**
 * Argument validation against a tool's inputSchema (src/policy/authorizer.ts `checkArguments`): every
 * tools/list hands over new schema objects, so validators are shared by content and bounded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { Authorizer } from '../../src/policy/authorizer.ts';

function authorizer(): Authorizer {
  const config = parseConfig({ upstreams: { fs: { type: 'http', url: 'http://127.0.0.1/unused' } } });
  return new Authorizer(config, pino({ level: 'silent' }), { policies: [], byId: new Map(), warnings: [] });
}

const schema = () => ({
  $id: 'https://example.test/schemas/read',
  type: 'object',
  properties: { path: { type: 'string' } },
  required: ['path'],
  additionalProperties: false,
});

test('T28 a schema listed again (a new object, the same $id) still validates: no "already exists" refusal', () => {
  const a = authorizer();
  for (let i = 0; i < 3; i++) {
    const def = { inputSchema: schema() };
    assert.equal(a.checkArguments(def, { path: '/x' }), undefined, `listing ${i}`);
    assert.ok(a.checkArguments(def, { path: 1 }), `listing ${i} refuses bad arguments`);
  }
});

test('T31 validators are shared by content: 5,000 listings of one schema compile it once', () => {
  const a = authorizer();
  const first = { inputSchema: schema() };
  a.checkArguments(first, { path: '/x' });
  for (let i = 0; i < 5000; i++) a.checkArguments({ inputSchema: schema() }, { path: '/x' });
  assert.equal(a.compiledSchemas(), 1);
});
