/** Configuration: one strict schema, every problem reported with its YAML path and line. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, parseConfig, parseConfigYaml } from '../../src/config/load.ts';

const CLI = ['--import', 'tsx', new URL('../../src/cli/index.ts', import.meta.url).pathname];

function checkConfig(yaml: string): { status: number | null; stdout: string; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cfg-'));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, yaml);
  const r = spawnSync(process.execPath, [...CLI, 'check-config', file], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.replaceAll(file, 'FILE') };
}

test("check-config rejects a typo'd key and a wrong type, naming both with path and line", () => {
  const r = checkConfig(
    [
      'server:',
      '  port: "eight"',
      'upstreams:',
      '  demo:',
      '    type: stdio',
      '    comand: npx',
      '    command: npx',
      '',
    ].join('\n'),
  );
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.includes('FILE:2: server.port: expected number, got string'), r.stderr);
  assert.ok(lines.includes('FILE:6: upstreams.demo.comand: unknown key'), r.stderr);
  assert.equal(lines.length, 2, 'one problem per line, nothing else');
});

test('check-config accepts a valid file with exit 0', () => {
  const r = checkConfig('upstreams:\n  web:\n    type: http\n    url: http://127.0.0.1:9/mcp\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok/);
});

test('an unknown upstream type, a bad URL and a missing required key are each named', () => {
  try {
    parseConfigYaml(
      'upstreams:\n  a:\n    type: htp\n  b:\n    type: http\n    url: ftp://x\n  c:\n    type: stdio\n',
      'f.yaml',
    );
    assert.fail('expected ConfigError');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    const byPath = new Map(e.problems.map((p) => [p.path, p]));
    assert.match(byPath.get('upstreams.a.type')?.message ?? '', /one of "stdio", "http", "sse"/);
    assert.equal(byPath.get('upstreams.a.type')?.line, 3);
    assert.ok(byPath.has('upstreams.b.url'));
    assert.match(byPath.get('upstreams.c.command')?.message ?? '', /required key missing/);
  }
});

test('YAML syntax errors and duplicate keys are reported with a line', () => {
  assert.throws(
    () => parseConfigYaml('upstreams:\n  a: [\n'),
    (e: unknown) => e instanceof ConfigError && e.problems[0]?.line !== undefined,
  );
  assert.throws(() => parseConfigYaml('upstreams: {}\nupstreams: {}\n'), ConfigError);
});

test('upstream names are restricted so that namespaced tool names stay unambiguous', () => {
  assert.throws(
    () => parseConfig({ upstreams: { bad__name: { type: 'http', url: 'http://x/mcp' } } }),
    /letters, digits/,
  );
  assert.throws(
    () =>
      parseConfig({
        upstreams: {
          a: { type: 'http', url: 'http://x/mcp', namespace: false },
          b: { type: 'http', url: 'http://y/mcp', namespace: false },
        },
      }),
    /at most one upstream may set namespace: false/,
  );
});

test('defaults are applied: loopback bind and bounded limits', () => {
  const c = parseConfig({ upstreams: { a: { type: 'stdio', command: 'x' } } });
  assert.equal(c.server.host, '127.0.0.1');
  assert.ok(c.limits.maxRequestBytes > 0 && c.limits.callTimeoutMs > 0);
  const a = c.upstreams.a;
  assert.ok(a?.type === 'stdio' && a.pool.max === 64 && a.namespace === true);
});

test('isolation: stdio only, session by default; principal and shared share no minted or per-user credential', () => {
  const stdio = (isolation: string | undefined, env: Record<string, unknown> = {}) => ({
    type: 'stdio',
    command: 'x',
    env,
    ...(isolation ? { isolation } : {}),
  });
  const a = parseConfig({ upstreams: { a: stdio(undefined) } }).upstreams.a;
  assert.ok(a?.type === 'stdio' && a.isolation === 'session');
  assert.throws(
    () => parseConfig({ upstreams: { a: { type: 'http', url: 'http://x/mcp', isolation: 'shared' } } }),
    /isolation/,
  );
  // Static keys are the same value for every grant: sharing them gives no session more than it has.
  const credentials = {
    key: { type: 'static', secret: 'api-key' },
    minted: {
      type: 'oauth',
      grant: 'client_credentials',
      issuer: 'https://as.example',
      clientId: 'gw',
      clientSecret: { secret: 'client' },
    },
  };
  for (const mode of ['shared', 'principal']) {
    const ok = parseConfig({
      credentials,
      upstreams: { a: stdio(mode, { KEY: { credential: 'key' }, OTHER: { secret: 'other' }, PLAIN: 'x' }) },
    }).upstreams.a;
    assert.ok(ok?.type === 'stdio' && ok.isolation === mode);
    try {
      parseConfig({ credentials, upstreams: { a: stdio(mode, { TOKEN: { credential: 'minted' } }) } });
      assert.fail('expected ConfigError');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      const p = e.problems.find((x) => x.path === 'upstreams.a.isolation');
      assert.ok(p, JSON.stringify(e.problems));
      assert.match(p.message, new RegExp(`isolation ${mode} .*env\\.TOKEN .*only static credentials`));
    }
  }
});

test('check-config notes a shared or principal stdio process on stderr, one line each, and exits 0', () => {
  const r = checkConfig(
    [
      'upstreams:',
      '  fs:',
      '    type: stdio',
      '    command: npx',
      '    isolation: shared',
      '  own:',
      '    type: stdio',
      '    command: npx',
      '',
    ].join('\n'),
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok/);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0] ?? '',
    /^FILE: upstreams\.fs\.isolation: warning: shared: one process serves every session/,
  );
  assert.match(lines[0] ?? '', /sampling, elicitation and roots requests are refused/);
});
