/** `gatehouse policy validate|test` through the CLI: exit codes and messages. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), 'policy', ...args], {
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

test('policy explain: the decision and the deciding policies, with file and line', () => {
  const deny = run('explain', '--agent', 'demo-agent', '--tool', 'everything__get-env');
  assert.equal(deny.status, 0, deny.stderr);
  assert.match(deny.stdout, /^decision: deny$/m);
  assert.match(deny.stdout, /get-env-needs-admin: forbid at .*demo\.cedar:\d+/);
  const allow = run(
    'explain',
    '--agent',
    'demo-agent',
    '--tool',
    'everything__get-env',
    '--scope',
    'mcp:admin',
    '--json',
  );
  assert.equal(allow.status, 0, allow.stderr);
  assert.deepEqual(JSON.parse(allow.stdout).policies, ['demo-agent-everything']);
  const nobody = run('explain', '--agent', 'stranger', '--tool', 'everything__echo');
  assert.match(nobody.stdout, /deny by default/);
  const unknown = run('explain', '--agent', 'a', '--tool', 'nosuch__thing');
  assert.equal(unknown.status, 2);
  const badArgs = run('explain', '--agent', 'a', '--tool', 'everything__echo', '--args', '{nope');
  assert.equal(badArgs.status, 2);
});

test('policy explain with a config: roles, tool attributes and argument rules', () => {
  const triage = (args: string) =>
    run(
      'explain',
      '--config',
      join(ROOT, 'examples/least-privilege.yaml'),
      '--agent',
      'triage',
      '--tool',
      'github__create_issue',
      '--args',
      args,
    );
  const on = triage('{"repo":"acme/widgets"}');
  assert.match(on.stdout, /^decision: allow$/m);
  assert.match(on.stdout, /risk medium, sideEffect write/);
  const off = triage('{"repo":"acme/secret"}');
  assert.match(off.stdout, /^decision: deny$/m);
  assert.match(off.stdout, /triage-one-repo/);
});

test('check-config validates the policies a config names (file, line, policy id)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-check-'));
  writeFileSync(
    join(dir, 'p.cedar'),
    '@id("typo")\npermit (principal, action, resource) when { resource.nosuch == 1 };\n',
  );
  writeFileSync(
    join(dir, 'g.yaml'),
    'policy: { files: [p.cedar] }\nupstreams: { a: { type: http, url: "http://127.0.0.1:1/mcp" } }\n',
  );
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src/cli/index.ts'), 'check-config', join(dir, 'g.yaml')],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /p\.cedar:2: typo: /);
});
