/**
 * OAuth helpers for end-to-end tests: a local user seeded into a data dir, and
 * an in-memory OAuthClientProvider (the MCP SDK's client-side interface) whose
 * "browser" is the scripted one in ./browser.ts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { hashPassword } from '../../src/auth/as/passwords.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';
import { authorizeInBrowser } from './browser.ts';

export interface TestUser {
  username: string;
  password: string;
}

/** Adds a local user to the gateway database in `dataDir` (before the gateway starts). */
export async function seedUser(dataDir: string, user: TestUser): Promise<void> {
  const storage = new SqliteStorage(join(dataDir, 'gatehouse.db'));
  try {
    await storage.users.add({
      username: user.username,
      passwordHash: await hashPassword(user.password),
      createdAt: Date.now(),
    });
  } finally {
    await storage.close();
  }
}

export class ScriptedOAuthProvider implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  /** Authorization codes received at the redirect URI, in order. */
  readonly codes: string[] = [];
  readonly authorizationUrls: URL[] = [];
  consents = 0;

  constructor(
    private readonly user: TestUser,
    readonly redirectUrl: string,
    /** Set for Client ID Metadata Documents: the client_id is this HTTPS URL. */
    readonly clientMetadataUrl?: string,
  ) {}

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'SDK test client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens(): OAuthTokens | undefined {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  async redirectToAuthorization(url: URL): Promise<void> {
    this.authorizationUrls.push(url);
    const { redirect, consents } = await authorizeInBrowser(url.href, this.user);
    this.consents += consents;
    const code = redirect.searchParams.get('code');
    assert.ok(code, `no code in ${redirect.href}`);
    assert.equal(
      redirect.origin + redirect.pathname,
      this.redirectUrl,
      'the code goes only to the registered redirect URI',
    );
    assert.ok(redirect.searchParams.get('iss'), 'RFC 9207: iss in the authorization response');
    this.codes.push(code);
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    return this.verifier;
  }
}

/** A token-endpoint request authenticated with client_secret_basic; the parsed answer and its status. */
export async function tokenEndpoint(
  origin: string,
  client: { id: string; secret: string },
  params: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${origin}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams(params),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A client-credentials access token for `resource` (the test fails if the server refuses). */
export async function clientCredentialsToken(
  origin: string,
  client: { id: string; secret: string },
  resource: string,
  scope = 'mcp',
): Promise<string> {
  const { status, body } = await tokenEndpoint(origin, client, {
    grant_type: 'client_credentials',
    scope,
    resource,
  });
  assert.equal(status, 200, JSON.stringify(body));
  return String(body.access_token);
}

/** RFC 8693: the agent exchanges a token it holds (its own or a user's) for a task token. */
export function exchangeToken(
  origin: string,
  client: { id: string; secret: string },
  subjectToken: string,
  params: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return tokenEndpoint(origin, client, {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: subjectToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    ...params,
  });
}

/** A connected MCP SDK client sending `Authorization: Bearer <token>`. */
export async function connectWithBearer(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'gatehouse-test', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}
