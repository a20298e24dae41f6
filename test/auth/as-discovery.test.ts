/**
 * Embedded AS: discovery metadata, keys on disk, and start-up refusals.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEmbeddedAs } from '../../src/auth/as/index.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { embeddedConfig, silentLog, startAs } from './as-harness.ts';

test('RFC 8414 §3: metadata is served at /.well-known/oauth-authorization-server with S256, iss and CIMD support', async () => {
  const t = await startAs();
  try {
    const res = await fetch(t.url('/.well-known/oauth-authorization-server'));
    assert.equal(res.status, 200);
    const meta = (await res.json()) as Record<string, unknown>;
    assert.equal(
      meta['issuer'],
      t.issuer,
      'RFC 8414 §3.3: issuer identical to the one used to build the URL',
    );
    assert.deepEqual(meta['code_challenge_methods_supported'], ['S256']);
    assert.equal(meta['authorization_response_iss_parameter_supported'], true);
    assert.equal(meta['client_id_metadata_document_supported'], true);
    for (const [k, path] of [
      ['authorization_endpoint', '/oauth/authorize'],
      ['token_endpoint', '/oauth/token'],
      ['registration_endpoint', '/oauth/register'],
      ['jwks_uri', '/oauth/jwks'],
      ['introspection_endpoint', '/oauth/introspect'],
      ['revocation_endpoint', '/oauth/revoke'],
    ]) {
      assert.equal(meta[k as string], t.url(path as string), `${k} lives under /oauth/`);
    }
    assert.ok(
      (meta['grant_types_supported'] as string[]).includes('urn:ietf:params:oauth:grant-type:token-exchange'),
    );
    assert.deepEqual(meta['response_types_supported'], ['code']);
    const oidc = (await (await fetch(t.url('/.well-known/openid-configuration'))).json()) as Record<
      string,
      unknown
    >;
    assert.deepEqual(oidc, meta, 'the OpenID configuration is the same document');
    const jwks = (await (await fetch(t.url('/oauth/jwks'))).json()) as { keys: Record<string, unknown>[] };
    assert.deepEqual(
      jwks.keys.map((k) => k['kid']),
      t.as.jwks().keys.map((k) => k.kid),
    );
    assert.ok(
      jwks.keys.every((k) => k['d'] === undefined),
      'no private parts published',
    );
    const other = await fetch(t.url('/mcp'));
    assert.equal(other.status, 404, 'paths outside the AS are left alone');
  } finally {
    await t.close();
  }
});

test('RFC 8414 §2: switches are reflected (no registration_endpoint without DCR, CIMD off)', async () => {
  const t = await startAs({ config: { dynamicRegistration: false, clientIdMetadataDocuments: false } });
  try {
    const meta = (await (await fetch(t.url('/.well-known/oauth-authorization-server'))).json()) as Record<
      string,
      unknown
    >;
    assert.equal(meta['registration_endpoint'], undefined);
    assert.equal(meta['client_id_metadata_document_supported'], false);
    const reg = await fetch(t.url('/oauth/register'), {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    assert.notEqual(reg.status, 201);
  } finally {
    await t.close();
  }
});

test('keys: the signing key is generated once into oauth-keys.json (0600) and reused', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
  const a = await startAs({ dataDir });
  const kid = a.as.jwks().keys[0]?.kid;
  await a.close();
  const path = join(dataDir, 'oauth-keys.json');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const b = await startAs({ dataDir });
  assert.equal(b.as.jwks().keys[0]?.kid, kid, 'same key after a restart');
  assert.equal(b.as.jwks().keys[0]?.alg, 'ES256');
  await b.close();
  assert.ok(JSON.parse(readFileSync(path, 'utf8')).cookies.length > 0, 'cookie keys are kept too');
});

test('keys: a key file readable by group or others is refused at start', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
  const a = await startAs({ dataDir });
  await a.close();
  chmodSync(join(dataDir, 'oauth-keys.json'), 0o644);
  await assert.rejects(startAs({ dataDir }), /readable by group or others/);
});

function baseOptions(over: Partial<Parameters<typeof createEmbeddedAs>[0]>) {
  return {
    issuer: 'http://127.0.0.1:1',
    resource: 'http://127.0.0.1:1/mcp',
    scopes: ['mcp'],
    config: embeddedConfig(),
    storage: new SqliteStorage(':memory:'),
    dataDir: mkdtempSync(join(tmpdir(), 'gatehouse-as-')),
    log: silentLog,
    loopbackOnly: true,
    ...over,
  };
}

test('dev flags: devAutoConsent is refused when the gateway is not bound to loopback', async () => {
  await assert.rejects(
    createEmbeddedAs(baseOptions({ config: embeddedConfig({ devAutoConsent: true }), loopbackOnly: false })),
    /devAutoConsent is refused: the gateway is not bound to loopback/,
  );
});

test('dev flags: allowInsecureMetadataUrls is refused when the gateway is not bound to loopback', async () => {
  await assert.rejects(
    createEmbeddedAs(
      baseOptions({ config: embeddedConfig({ allowInsecureMetadataUrls: true }), loopbackOnly: false }),
    ),
    /allowInsecureMetadataUrls is refused/,
  );
});

test('dev flags: devAutoConsent on loopback starts with a warning on every start', async () => {
  const lines: string[] = [];
  const log = silentLog.child({});
  const warn = (obj: unknown, msg?: string) => void lines.push(String(msg ?? obj));
  const spy = Object.assign(Object.create(log), { warn });
  const as = await createEmbeddedAs(
    baseOptions({ config: embeddedConfig({ devAutoConsent: true }), log: spy }),
  );
  await as.close();
  assert.ok(lines.some((l) => l.includes('devAutoConsent is ON')));
});

test('upstream IdP: refused without a way to log in, or over http without the development flag', async () => {
  await assert.rejects(
    createEmbeddedAs(baseOptions({ config: embeddedConfig({ login: { localUsers: false } }) })),
    /nobody could log in/,
  );
  await assert.rejects(
    createEmbeddedAs(
      baseOptions({
        config: embeddedConfig({ upstreamIdp: { issuer: 'http://127.0.0.1:9/', clientId: 'gatehouse' } }),
      }),
    ),
    /upstreamIdp\.issuer must be https/,
  );
});
