/**
 * The credential broker's configuration (src/config/schema.ts: `credentials`, `broker`, `{ credential }`
 * values and the cross-checks at the end of configSchema) through parseConfig (src/config/load.ts).
 * Proves that every broken reference or incomplete credential is refused with a problem whose path
 * names the offending key (and nothing else is reported), that one config using all three kinds parses
 * with its defaults, and that secretPaths() (src/secrets/resolve.ts) lists every secret the config
 * names with the key that names it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, type ConfigProblem, parseConfig } from '../../src/config/load.ts';
import type { GatehouseConfigInput } from '../../src/config/schema.ts';
import { secretPaths } from '../../src/secrets/resolve.ts';

const AS = 'https://as.example.com';
const API = 'https://api.example.com/v1';

/** A config with one http upstream `api` (whose headers are `headers`) and `credentials`. */
function withHeaders(
  headers: Record<string, unknown>,
  credentials: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): unknown {
  return {
    upstreams: { api: { type: 'http', url: 'https://mcp.example.com/mcp', headers } },
    credentials,
    ...extra,
  };
}

/** The problems parseConfig reports for `input` (which must be refused). */
function problems(input: unknown): ConfigProblem[] {
  try {
    parseConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(err.problems.length > 0);
    return err.problems;
  }
  assert.fail('the config was accepted');
}

/** Exactly one problem, at `path`, whose message matches `message`. */
function onlyProblem(input: unknown, path: string, message: RegExp): void {
  const found = problems(input);
  assert.deepEqual(
    found.map((p) => p.path),
    [path],
    `problems: ${JSON.stringify(found)}`,
  );
  assert.match(found[0]?.message ?? '', message);
}

const minted = {
  type: 'oauth',
  grant: 'client_credentials',
  tokenEndpoint: `${AS}/token`,
  clientId: 'gatehouse',
  clientSecret: { secret: 'as-client' },
};

test('a { credential } that names no entry of credentials is refused at the header that names it', () => {
  onlyProblem(
    withHeaders({ Authorization: { credential: 'nope', format: 'Bearer {}' } }, { other: minted }),
    'upstreams.api.headers.Authorization',
    /no credential `nope`/,
  );
  // The same in an sse upstream and a stdio env.
  onlyProblem(
    {
      upstreams: {
        legacy: {
          type: 'sse',
          url: 'https://mcp.example.com/sse',
          headers: { 'X-Key': { credential: 'nope' } },
        },
      },
    },
    'upstreams.legacy.headers.X-Key',
    /no credential `nope`/,
  );
  onlyProblem(
    { upstreams: { tool: { type: 'stdio', command: 'tool', env: { API_KEY: { credential: 'nope' } } } } },
    'upstreams.tool.env.API_KEY',
    /no credential `nope`/,
  );
});

test('a { credential } named like an Object.prototype member ("constructor") is refused', () => {
  // The cross-check must look up own keys only: `credentials.constructor` is Object on a plain object
  // (at cb358c6 this config was accepted and the broker then silently sent no Authorization header).
  onlyProblem(
    withHeaders({ Authorization: { credential: 'constructor' } }),
    'upstreams.api.headers.Authorization',
    /no credential `constructor`/,
  );
  onlyProblem(
    { upstreams: { tool: { type: 'stdio', command: 'tool', env: { KEY: { credential: 'constructor' } } } } },
    'upstreams.tool.env.KEY',
    /no credential `constructor`/,
  );
  // A credential really named so is found.
  parseConfig(
    withHeaders(
      { Authorization: { credential: 'constructor' } },
      { constructor: { type: 'static', secret: 'k' } },
    ),
  );
});

test('an oauth (or oauth-user) credential in a stdio env is refused: only static credentials go there', () => {
  const stdio = (cred: unknown): unknown => ({
    upstreams: { tool: { type: 'stdio', command: 'tool', env: { TOKEN: { credential: 'svc' } } } },
    credentials: { svc: cred },
  });
  onlyProblem(stdio(minted), 'upstreams.tool.env.TOKEN', /is oauth: .*only static credentials/);
  onlyProblem(
    stdio({ type: 'oauth-user', issuer: AS, clientId: 'gatehouse' }),
    'upstreams.tool.env.TOKEN',
    /is oauth-user: .*only static credentials/,
  );
  // Control: a static credential there is fine, and so is the oauth one in an http header.
  const ok = parseConfig(stdio({ type: 'static', secret: 'tool-key' }));
  assert.deepEqual(ok.upstreams['tool']?.type === 'stdio' && ok.upstreams['tool'].env['TOKEN'], {
    credential: 'svc',
    format: '{}',
  });
  parseConfig(withHeaders({ Authorization: { credential: 'svc' } }, { svc: minted }));
});

test('oauth with grant refresh_token or token_exchange needs subjectSecret', () => {
  for (const grant of ['refresh_token', 'token_exchange']) {
    onlyProblem(
      withHeaders({}, { reports: { ...minted, grant } }),
      'credentials.reports.subjectSecret',
      new RegExp(`required with grant ${grant}`),
    );
  }
  // client_credentials needs none, but it needs a client secret.
  parseConfig(withHeaders({}, { reports: minted }));
  const { clientSecret: _, ...noSecret } = minted;
  onlyProblem(
    withHeaders({}, { reports: noSecret }),
    'credentials.reports.clientSecret',
    /required with grant client_credentials/,
  );
});

test('oauth without issuer and tokenEndpoint is refused at credentials.<name>.issuer', () => {
  const { tokenEndpoint: _, ...bare } = minted;
  onlyProblem(
    withHeaders({}, { reports: bare }),
    'credentials.reports.issuer',
    /set issuer or tokenEndpoint/,
  );
  // Either one is enough.
  parseConfig(withHeaders({}, { reports: { ...bare, issuer: AS } }));
  parseConfig(withHeaders({}, { reports: minted }));
});

test('oauth-user needs auth.mode embedded: refused at credentials.<name>.type', () => {
  const user = { type: 'oauth-user', issuer: AS, clientId: 'gatehouse' };
  for (const auth of [
    { mode: 'none' },
    { mode: 'external', external: { issuer: 'https://idp.example.com' } },
  ]) {
    onlyProblem(withHeaders({}, { mine: user }, { auth }), 'credentials.mine.type', /auth\.mode embedded/);
  }
  // The default mode (embedded) is fine.
  parseConfig(withHeaders({}, { mine: user }));
});

test('credential names are lower case: an upper-case name is refused, as key and as reference', () => {
  onlyProblem(
    withHeaders({}, { Reports: { type: 'static', secret: 'k' } }),
    'credentials.Reports',
    /credential names use a-z/,
  );
  const found = problems(
    withHeaders({ Authorization: { credential: 'Reports' } }, { Reports: { type: 'static', secret: 'k' } }),
  );
  assert.deepEqual(found.map((p) => p.path).sort(), [
    'credentials.Reports',
    'upstreams.api.headers.Authorization.credential',
  ]);
  for (const p of found) assert.match(p.message, /credential names use a-z/);
  onlyProblem(
    withHeaders({}, { ['a'.repeat(33)]: { type: 'static', secret: 'k' } }),
    `credentials.${'a'.repeat(33)}`,
    /1-32 chars/,
  );
});

const FULL: GatehouseConfigInput = {
  broker: { allowLoopbackHttp: true },
  credentials: {
    // static
    'records-key': { type: 'static', secret: 'records-api-key' },
    // oauth: refresh_token, token_exchange, client_credentials
    reports: {
      type: 'oauth',
      grant: 'refresh_token',
      issuer: AS,
      clientId: 'gatehouse',
      clientSecret: { secret: 'as-client' },
      subjectSecret: { secret: 'reports-refresh' },
      scope: 'records:read',
      resource: API,
      maxLifetimeSec: 120,
    },
    exchange: {
      type: 'oauth',
      grant: 'token_exchange',
      tokenEndpoint: `${AS}/token`,
      revocationEndpoint: `${AS}/revoke`,
      clientId: 'gatehouse',
      subjectSecret: { secret: 'exchange-subject' },
    },
    robot: {
      type: 'oauth',
      grant: 'client_credentials',
      issuer: AS,
      clientId: 'robot',
      clientSecret: { secret: 'robot-client' },
    },
    // oauth-user
    records: {
      type: 'oauth-user',
      issuer: AS,
      clientId: 'gatehouse',
      clientSecret: { secret: 'as-client' },
      scope: 'records:read',
    },
  },
  upstreams: {
    reports: {
      type: 'http',
      url: 'https://mcp.example.com/reports',
      headers: {
        Authorization: { credential: 'reports', format: 'Bearer {}' },
        'X-Static': { secret: 'inline-header-key' },
        'X-Literal': 'plain',
      },
    },
    mine: {
      type: 'sse',
      url: 'https://mcp.example.com/sse',
      headers: { Authorization: { credential: 'records', format: 'Bearer {}' } },
    },
    robot: {
      type: 'http',
      url: 'https://mcp.example.com/robot',
      headers: { Authorization: { credential: 'robot' } },
    },
    tool: {
      type: 'stdio',
      command: 'tool',
      env: {
        RECORDS_API_KEY: { credential: 'records-key' },
        OTHER_KEY: { secret: 'inline-env-key', format: 'k={}' },
      },
    },
  },
};

test('one config with all three kinds parses, with the broker defaults applied', () => {
  const c = parseConfig(FULL);
  assert.equal(c.broker.allowLoopbackHttp, true);
  assert.equal(c.broker.connectLinkTtlSec, 600);
  assert.deepEqual(Object.keys(c.credentials).sort(), [
    'exchange',
    'records',
    'records-key',
    'reports',
    'robot',
  ]);
  const reports = c.credentials['reports'];
  assert.ok(reports?.type === 'oauth');
  assert.equal(reports.grant, 'refresh_token');
  assert.equal(reports.maxLifetimeSec, 120);
  assert.equal(reports.subjectTokenType, 'access_token');
  const exchange = c.credentials['exchange'];
  assert.ok(exchange?.type === 'oauth');
  assert.equal(exchange.maxLifetimeSec, 900, 'default lifetime');
  assert.equal(exchange.clientSecret, undefined);
  assert.equal(c.credentials['records']?.type, 'oauth-user');
  assert.deepEqual(c.credentials['records-key'], { type: 'static', secret: 'records-api-key' });
  const robot = c.upstreams['robot'];
  assert.ok(robot?.type === 'http');
  assert.deepEqual(robot.headers['Authorization'], { credential: 'robot', format: '{}' });

  // Without the credentials section the same references are all dangling.
  const dangling = problems({ ...FULL, credentials: {} });
  assert.deepEqual(dangling.map((p) => p.path).sort(), [
    'upstreams.mine.headers.Authorization',
    'upstreams.reports.headers.Authorization',
    'upstreams.robot.headers.Authorization',
    'upstreams.tool.env.RECORDS_API_KEY',
  ]);
});

test('secretPaths lists every secret the config names, with the key that names it', () => {
  const paths = secretPaths(parseConfig(FULL));
  assert.deepEqual(
    [...paths].sort(([a], [b]) => a.localeCompare(b)),
    [
      ['credentials.exchange.subjectSecret', 'exchange-subject'],
      ['credentials.records-key.secret', 'records-api-key'],
      ['credentials.records.clientSecret', 'as-client'],
      ['credentials.reports.clientSecret', 'as-client'],
      ['credentials.reports.subjectSecret', 'reports-refresh'],
      ['credentials.robot.clientSecret', 'robot-client'],
      ['upstreams.reports.headers.X-Static', 'inline-header-key'],
      ['upstreams.tool.env.OTHER_KEY', 'inline-env-key'],
    ],
  );
  // A config with no secrets names none.
  assert.deepEqual(secretPaths(parseConfig(withHeaders({ 'X-Literal': 'plain' }))), []);
});
