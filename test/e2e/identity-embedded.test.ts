/**
 * The embedded authorization server with real clients, headless:
 * the MCP SDK client with an OAuthClientProvider goes through discovery →
 * dynamic registration → PKCE → token → tools/list → step-up on a tool that
 * needs a wider scope → success. MCP authorization 2025-11-25.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { demoConfig } from '../../src/cli/demo.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { ScriptedOAuthProvider, seedUser } from '../helpers/oauth.ts';

const USER = { username: 'alice', password: 'fake-canary-password-alice' };
const REDIRECT = 'http://127.0.0.1:53682/callback';

/** Connects, completing OAuth (and any step-up) the way an SDK-based app does: finishAuth, then retry. */
async function connectWithOAuth(
  url: string,
  provider: ScriptedOAuthProvider,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    const client = new Client({ name: 'sdk-oauth-test', version: '1' });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      const code = provider.codes.at(-1);
      assert.ok(code, 'redirectToAuthorization produced a code');
      await transport.finishAuth(code);
    }
  }
  throw new Error('could not connect');
}

describe('embedded authorization server with the MCP SDK OAuth client', () => {
  let gw: TestGateway;

  before(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-idp-embedded-'));
    await seedUser(dataDir, USER);
    const demo = demoConfig(dataDir);
    gw = await startTestGateway({ ...demo, auth: { ...demo.auth, mode: 'embedded' } }, { dataDir });
  });
  after(async () => gw.close());

  test('discovery → DCR → PKCE → token → tools/list → step-up (403 insufficient_scope) → call succeeds', async () => {
    const provider = new ScriptedOAuthProvider(USER, REDIRECT);
    const { client, transport } = await connectWithOAuth(gw.url, provider);
    assert.ok(provider.info?.client_id, 'the client registered dynamically (RFC 7591)');
    assert.equal(provider.consents, 1, 'the user saw the consent page once');
    const first = provider.authorizationUrls[0];
    assert.equal(first?.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(
      first?.searchParams.get('resource'),
      gw.url,
      'RFC 8707: the client names the gateway as resource',
    );
    assert.ok(provider.saved?.access_token);

    const tools = await client.listTools();
    assert.ok(tools.tools.some((t) => t.name === 'everything__echo'));
    const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'as alice' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'Echo: as alice' }]);

    // everything__get-env needs mcp:admin: the gateway answers 403 insufficient_scope, the SDK
    // re-authorizes with the wider scope (redirectToAuthorization), the app finishes and retries.
    const before = provider.codes.length;
    await assert.rejects(client.callTool({ name: 'everything__get-env', arguments: {} }), UnauthorizedError);
    assert.equal(provider.codes.length, before + 1, 'a second authorization happened');
    const stepUp = provider.authorizationUrls.at(-1);
    assert.match(stepUp?.searchParams.get('scope') ?? '', /mcp:admin/);
    await transport.finishAuth(provider.codes.at(-1) ?? '');
    assert.match(provider.saved?.scope ?? '', /mcp:admin/);
    await client.close();

    const again = await connectWithOAuth(gw.url, provider);
    const env = await again.client.callTool({ name: 'everything__get-env', arguments: {} });
    assert.notEqual(env.isError, true);
    await again.client.close();
  });

  test('a client-credentials agent (demo-agent) calls a tool with a token from the token endpoint', async () => {
    const { readFileSync } = await import('node:fs');
    const secret = readFileSync(join(gw.dataDir, 'demo-agent.secret'), 'utf8').trim();
    const res = await fetch(`${gw.origin}/oauth/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`demo-agent:${secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'mcp', resource: gw.url }),
    });
    const { access_token } = (await res.json()) as { access_token: string };
    const client = new Client({ name: 'agent', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(gw.url), {
        requestInit: { headers: { authorization: `Bearer ${access_token}` } },
      }),
    );
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'headless' } });
    assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: headless' }]);
    await client.close();
  });
});
