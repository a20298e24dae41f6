/**
 * Policy loading: splitting, ids, dynamic-field detection, and problems that name file, line and policy id.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { GATEHOUSE_SCHEMA, loadPolicySet, PolicyLoadError, splitPolicies } from '../../src/policy/index.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/policies/', import.meta.url));
const exampleFiles = ['readonly-agent.cedar', 'one-repo.cedar', 'approval.cedar'].map((f) =>
  join(EXAMPLES, f),
);

function write(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-policy-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function problemsOf(files: string[]): PolicyLoadError['problems'] {
  try {
    loadPolicySet({ files });
  } catch (err) {
    assert.ok(err instanceof PolicyLoadError, String(err));
    return err.problems;
  }
  assert.fail('expected a PolicyLoadError');
}

test('schema.cedarschema is the schema the engine uses', () => {
  const file = fileURLToPath(new URL('../../src/policy/schema.cedarschema', import.meta.url));
  assert.equal(readFileSync(file, 'utf8'), GATEHOUSE_SCHEMA);
});

test('splitPolicies ignores ; in strings and comments and keeps positions', () => {
  const src =
    '// a; comment\npermit(principal, action, resource) when { "a;b" == "a;b" };\n\n  forbid(principal, action, resource);\n// tail;\n';
  const chunks = splitPolicies(src);
  assert.equal(chunks.length, 2);
  assert.ok(chunks[0]?.text.startsWith('permit'));
  assert.ok(chunks[0]?.text.endsWith(';'));
  assert.equal(src.slice(chunks[1]?.start ?? 0, (chunks[1]?.start ?? 0) + 6), 'forbid');
});

test('examples load with @id ids and per-policy dynamic fields', () => {
  const set = loadPolicySet({ files: exampleFiles });
  assert.deepEqual(
    set.policies.map((p) => p.id),
    [
      'reporter-list',
      'reporter-read-only',
      'triage-github',
      'triage-one-repo',
      'acme-users',
      'high-risk-needs-approval',
      'no-destructive-untrusted',
    ],
  );
  assert.deepEqual(set.byId.get('triage-one-repo')?.dynamicFields, ['args']);
  assert.deepEqual(set.byId.get('high-risk-needs-approval')?.dynamicFields, []);
  assert.equal(set.byId.get('high-risk-needs-approval')?.approval, true);
  assert.equal(set.byId.get('triage-github')?.line, 2);
  assert.equal(set.byId.get('triage-github')?.effect, 'permit');
});

test('policies without @id get <file>#<n>', () => {
  const file = write(
    'p.cedar',
    'permit(principal, action, resource);\nforbid(principal, action, resource) when { context.time > 5 };\n',
  );
  const set = loadPolicySet({ files: [file] });
  assert.deepEqual(
    set.policies.map((p) => [p.id, p.line, p.dynamicFields]),
    [
      ['p.cedar#1', 1, []],
      ['p.cedar#2', 2, ['time']],
    ],
  );
});

test('a parse error names the file and line', () => {
  const file = write(
    'bad.cedar',
    'permit(principal, action, resource);\n\npermit(principal, action, resource)\n  when { context.approved &&  };\n',
  );
  const problems = problemsOf([file]);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]?.file, file);
  assert.equal(problems[0]?.line, 4);
  assert.match(problems[0]?.message ?? '', /parse/);
});

test('a validation error names file, line and policy id', () => {
  const file = write(
    'v.cedar',
    'permit(principal, action, resource);\n@id("typo")\npermit(principal, action, resource)\nwhen {\n  resource.riks == "low"\n};\n',
  );
  const problems = problemsOf([file]);
  assert.ok(problems.length >= 1);
  assert.equal(problems[0]?.policyId, 'typo');
  assert.equal(problems[0]?.file, file);
  assert.equal(problems[0]?.line, 5);
  assert.match(problems[0]?.message ?? '', /riks/);
});

test('unknown entity types and actions are rejected by the schema', () => {
  const file = write(
    'u.cedar',
    'permit(principal == Gatehouse::Robot::"x", action == Gatehouse::Action::"delete", resource);\n',
  );
  assert.ok(problemsOf([file]).length >= 1);
});

test('duplicate ids, @approval misuse and unreadable files are problems', () => {
  const a = write('a.cedar', '@id("x") permit(principal, action, resource);\n');
  const b = write(
    'b.cedar',
    [
      '@id("x") permit(principal, action, resource);',
      '@id("p") @approval("required") permit(principal, action, resource) unless { context.approved };',
      '@id("q") @approval("required") forbid(principal, action, resource);',
      '@id("r") @approval("maybe") forbid(principal, action, resource) unless { context.approved };',
    ].join('\n'),
  );
  const problems = problemsOf([a, b, '/nonexistent/x.cedar']);
  const byId = (id: string) => problems.find((p) => p.policyId === id)?.message ?? '';
  assert.match(byId('x'), /duplicate policy id/);
  assert.match(byId('p'), /only allowed on forbid/);
  assert.match(byId('q'), /must test context\.approved/);
  assert.match(byId('r'), /must be "required"/);
  assert.ok(problems.some((p) => p.file === '/nonexistent/x.cedar' && /cannot read file/.test(p.message)));
  assert.equal(problems.find((p) => p.policyId === 'q')?.line, 3);
});

test('no files is an error', () => {
  assert.throws(() => loadPolicySet({ files: [] }), PolicyLoadError);
});
