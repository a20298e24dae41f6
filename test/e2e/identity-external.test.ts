/**
 * auth.mode: external. Gatehouse trusts "the company IdP", an independent
 * oidc-provider instance started here, and is an OAuth 2.1 resource server:
 * MCP authorization 2025-11-25, RFC 9728, RFC 6750, RFC 8707.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { type CompanyIdp, startCompanyIdp } from '../fixtures/company-idp.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../fixtures/recording-upstream.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

async function client(url: string, token: string): Promise<Client> {
  const c = new Client({ name: 'identity-test', version: '1' });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return c;
}

describe('external issuer mode', () => {
  let idp: CompanyIdp;
  let upstream: RecordingUpstream;
  let gw: TestGateway;
  const OTHER = 'https://other-api.example/mcp';

  before(async () => {
    upstream = await startRecordingUpstream();
    // The IdP must know the gateway's resource URL; reserve it by starting the IdP lazily.
    const resources: string[] = [OTHER];
    idp = await startCompanyIdp({ allowedResources: resources, scopes: 'mcp mcp:admin' });
    gw = await startTestGateway({
      auth: {
        mode: 'external',
        external: { issuer: idp.issuer, jwksCooldownSec: 0.5 },
        toolScopes: { 'up__admin-*': 'mcp:admin', up__echo: 'mcp' },
        methodScopes: { 'resources/read': 'mcp:admin' },
      },
      upstreams: { up: { type: 'http', url: upstream.url } },
    });
    resources.push(gw.url);
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await idp.close();
  });

  test('RFC 9728 §3.1: protected resource metadata at the path-inserted and root well-known URLs', async () => {
    for (const path of [
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource',
    ]) {
      const res = await fetch(`${gw.origin}${path}`);
      assert.equal(res.status, 200, path);
      const md = (await res.json()) as Record<string, unknown>;
      assert.equal(md.resource, gw.url, 'resource is the exact URL of /mcp');
      assert.deepEqual(md.authorization_servers, [idp.issuer]);
      assert.deepEqual(md.scopes_supported, ['mcp', 'mcp:admin']);
    }
  });

  test('T01 RFC 6750 §3.1: no token → 401 with resource_metadata and scope, no error code, no upstream call', async () => {
    const before = upstream.requests.length;
    const res = await fetch(gw.url, { method: 'POST', headers: HEADERS, body: JSON.stringify(INIT) });
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer /);
    assert.match(
      challenge,
      new RegExp(`resource_metadata="${gw.origin}/.well-known/oauth-protected-resource/mcp"`),
    );
    assert.match(challenge, /scope="mcp"/);
    assert.doesNotMatch(challenge, /error=/);
    assert.equal(upstream.requests.length, before, 'the upstream was never contacted');
  });

  test('T02-03 RFC 6750 §3.1: a malformed Authorization header → 401 invalid_token', async () => {
    for (const authorization of [
      'Basic YWxhZGRpbjpvcGVuc2VzYW1l',
      'Bearer',
      'Bearer a b',
      'Bearer not-a-jwt',
    ]) {
      const res = await fetch(gw.url, {
        method: 'POST',
        headers: { ...HEADERS, authorization },
        body: JSON.stringify(INIT),
      });
      assert.equal(res.status, 401, authorization);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
  });

  test('T02-03 RFC 8707 §2: a valid token issued for another resource is refused (no token passthrough)', async () => {
    const token = await idp.token({ resource: OTHER, scope: 'mcp' });
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { ...HEADERS, authorization: `Bearer ${token}` },
      body: JSON.stringify(INIT),
    });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  test('T02-03: a client-credentials agent calls a tool; the upstream never sees the client token', async () => {
    const token = await idp.token({ resource: gw.url, scope: 'mcp' });
    const c = await client(gw.url, token);
    const r = await c.callTool({ name: 'up__echo', arguments: { text: 'hello' } });
    assert.deepEqual(r.content, [{ type: 'text', text: 'hello' }]);
    await c.close();
    assert.ok(upstream.requests.length > 0);
    for (const h of upstream.requests) {
      assert.equal(h.authorization, undefined, 'no Authorization header upstream');
      assert.ok(!JSON.stringify(h).includes(token), 'the token appears in no upstream header');
    }
  });

  test('T04 MCP authorization §scope challenge: insufficient scope for a tool → HTTP 403 with the scopes needed', async () => {
    const token = await idp.token({ resource: gw.url, scope: 'mcp' });
    const init = await fetch(gw.url, {
      method: 'POST',
      headers: { ...HEADERS, authorization: `Bearer ${token}` },
      body: JSON.stringify(INIT),
    });
    const sid = init.headers.get('mcp-session-id') ?? '';
    await init.json();
    const h = {
      ...HEADERS,
      authorization: `Bearer ${token}`,
      'mcp-session-id': sid,
      'mcp-protocol-version': '2025-11-25',
    };
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: h,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'up__admin-reset', arguments: {} },
      }),
    });
    assert.equal(res.status, 403);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /error="insufficient_scope"/);
    assert.match(challenge, /scope="mcp mcp:admin"/);
    assert.match(challenge, /resource_metadata="/);
    // Per JSON-RPC method too: resources/read needs mcp:admin here.
    const read = await fetch(gw.url, {
      method: 'POST',
      headers: h,
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'resources/read', params: { uri: 'file:///x' } }),
    });
    assert.equal(read.status, 403);
    assert.match(read.headers.get('www-authenticate') ?? '', /scope="mcp mcp:admin"/);
    // With the wider scope, the same call gets past the scope check (the upstream then answers).
    const wide = await idp.token({ resource: gw.url, scope: 'mcp mcp:admin' });
    const c = await client(gw.url, wide);
    const r = await c.callTool({ name: 'up__echo', arguments: { text: 'stepped up' } });
    assert.deepEqual(r.content, [{ type: 'text', text: 'stepped up' }]);
    await c.close();
  });

  test("T10-11: a session id presented with another principal's token → 404; sessions never authenticate", async () => {
    const a = await idp.token({ resource: gw.url, scope: 'mcp', clientId: 'agent-a' });
    const b = await idp.token({ resource: gw.url, scope: 'mcp', clientId: 'agent-b' });
    const init = await fetch(gw.url, {
      method: 'POST',
      headers: { ...HEADERS, authorization: `Bearer ${a}` },
      body: JSON.stringify(INIT),
    });
    const sid = init.headers.get('mcp-session-id') ?? '';
    await init.json();
    assert.ok(sid.length >= 22);
    const ping = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' });
    const hijack = await fetch(gw.url, {
      method: 'POST',
      headers: {
        ...HEADERS,
        authorization: `Bearer ${b}`,
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-11-25',
      },
      body: ping,
    });
    assert.equal(hijack.status, 404);
    const bare = await fetch(gw.url, {
      method: 'POST',
      headers: { ...HEADERS, 'mcp-session-id': sid },
      body: ping,
    });
    assert.equal(bare.status, 401, 'a session id without a token authenticates nothing');
    const getStream = await fetch(gw.url, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${b}`, 'mcp-session-id': sid },
    });
    assert.equal(getStream.status, 404, 'nor can another principal attach to its stream');
    const own = await fetch(gw.url, {
      method: 'POST',
      headers: {
        ...HEADERS,
        authorization: `Bearer ${a}`,
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-11-25',
      },
      body: ping,
    });
    assert.equal(own.status, 200);
  });

  test('T12: a foreign Origin is refused (403) even with a valid token', async () => {
    const token = await idp.token({ resource: gw.url, scope: 'mcp' });
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { ...HEADERS, authorization: `Bearer ${token}`, origin: 'https://evil.example' },
      body: JSON.stringify(INIT),
    });
    assert.equal(res.status, 403);
  });

  test('key rotation at the IdP: a token signed with the new key is accepted (JWKS refetch on unknown kid)', async () => {
    await idp.rotateKey();
    await new Promise((r) => setTimeout(r, 600)); // past the JWKS refetch rate limit
    const token = await idp.token({ resource: gw.url, scope: 'mcp' });
    const c = await client(gw.url, token);
    assert.ok((await c.listTools()).tools.length > 0);
    await c.close();
  });

  test('fail closed: when the IdP keys cannot be fetched, an unseen token is refused with 503', async () => {
    await idp.rotateKey();
    const token = await idp.token({ resource: gw.url, scope: 'mcp' });
    await idp.close();
    await new Promise((r) => setTimeout(r, 600));
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { ...HEADERS, authorization: `Bearer ${token}` },
      body: JSON.stringify(INIT),
    });
    assert.equal(res.status, 503);
    assert.equal(
      ((await res.json()) as { error: { data: { gatehouse: string } } }).error.data.gatehouse,
      'auth_unavailable',
    );
  });
});
