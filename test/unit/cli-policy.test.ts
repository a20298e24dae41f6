/** `gatehouse policy validate|test` through the CLI: exit codes and messages. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'policy', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
  });

test('policy test: the shipped examples pass; a deliberately wrong expectation exits 1', () => {
  const ok = run('test', 'examples/policies/tests.yaml');
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-cli-'));
  const table = readFileSync(join(ROOT, 'examples/policies/tests.yaml'), 'utf8').replace(
    /expect: deny/,
    'expect: allow',
  );
  assert.notEqual(table, readFileSync(join(ROOT, 'examples/policies/tests.yaml'), 'utf8'));
  const wrong = join(dir, 'tests.yaml');
  // Policy paths in the table are relative to it: copy the policies next to the altered table.
  for (const f of readdirSync(join(ROOT, 'examples/policies'))) {
    if (f.endsWith('.cedar')) copyFileSync(join(ROOT, 'examples/policies', f), join(dir, f));
  }
  writeFileSync(wrong, table);
  const bad = run('test', wrong);
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
});

test('policy validate: a syntax error names the file and line; exit 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-cli-'));
  const file = join(dir, 'bad.cedar');
  writeFileSync(file, 'permit(principal, action, resource)\nwhen { this is not cedar };\n');
  const r = run('validate', file);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+`));
});
