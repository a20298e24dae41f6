/**
 * Test harness for the embedded authorization server: the AS on a real
 * node:http server on 127.0.0.1 (handle() or 404), in-memory SQLite, a temp
 * data dir, and a hand-rolled cookie jar to drive browser flows with fetch.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, type JWTPayload, jwtVerify } from 'jose';
import pino from 'pino';
import {
  createEmbeddedAs,
  type EmbeddedAs,
  type EmbeddedAsOptions,
  hashPassword,
} from '../../src/auth/as/index.ts';
import { RevocationList } from '../../src/auth/revocation.ts';
import { configSchema, type GatehouseConfigInput } from '../../src/config/schema.ts';
import { SqliteStorage } from '../../src/storage/sqlite/index.ts';

type EmbeddedInput = NonNullable<NonNullable<GatehouseConfigInput['auth']>['embedded']>;

/** Parses an `auth.embedded` section with every default applied. */
export function embeddedConfig(input: EmbeddedInput = {}): EmbeddedAsOptions['config'] {
  return configSchema.parse({
    upstreams: { x: { type: 'http', url: 'http://127.0.0.1:1/mcp' } },
    auth: { embedded: input },
  }).auth.embedded;
}

export const silentLog = pino({ level: 'silent' });

export interface TestAs {
  as: EmbeddedAs;
  issuer: string;
  resource: string;
  storage: SqliteStorage;
  dataDir: string;
  url(path: string): string;
  /** The token revocation list the AS writes to and checks (with `revocations: true`). */
  revocations: RevocationList | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  config?: EmbeddedInput;
  scopes?: string[];
  /** auth.requiredScopes as the gateway passes them (default ['mcp']). */
  defaultScopes?: string[];
  loopbackOnly?: boolean;
  fetchOptions?: EmbeddedAsOptions['fetchOptions'];
  dataDir?: string;
  users?: Record<string, string>;
  onLoginFailure?: EmbeddedAsOptions['onLoginFailure'];
  loginClock?: EmbeddedAsOptions['loginClock'];
  /** Give the AS a token revocation list on its store (as the gateway does). */
  revocations?: boolean;
}

/** Starts the AS on 127.0.0.1 with an ephemeral port. */
export async function startAs(o: StartOptions = {}): Promise<TestAs> {
  let as: EmbeddedAs | undefined;
  const server = http.createServer((req, res) => {
    if (!as?.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const resource = `${issuer}/mcp`;
  const storage = new SqliteStorage(':memory:');
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-as-'));
  for (const [username, password] of Object.entries(o.users ?? { alice: 'correct horse battery' })) {
    await storage.users.add({ username, passwordHash: await hashPassword(password), createdAt: Date.now() });
  }
  const revocations = o.revocations
    ? new RevocationList(storage, {
        lifetimes: { tokenLifetimeSec: 300, retentionSec: 14 * 86_400 },
        log: silentLog,
      })
    : undefined;
  await revocations?.start();
  const stop = async (): Promise<void> => {
    revocations?.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await storage.close();
  };
  try {
    as = await createEmbeddedAs({
      issuer,
      resource,
      scopes: o.scopes ?? ['mcp', 'tools:write', 'offline_access'],
      defaultScopes: o.defaultScopes ?? ['mcp'],
      config: embeddedConfig(o.config),
      storage,
      dataDir,
      log: silentLog,
      loopbackOnly: o.loopbackOnly ?? true,
      fetchOptions: o.fetchOptions,
      ...(o.onLoginFailure ? { onLoginFailure: o.onLoginFailure } : {}),
      ...(o.loginClock ? { loginClock: o.loginClock } : {}),
      ...(revocations ? { revocations } : {}),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const started = as;
  return {
    as: started,
    issuer,
    resource,
    storage,
    dataDir,
    url: (path) => `${issuer}${path}`,
    revocations,
    async close() {
      await started.close();
      await stop();
    },
  };
}

/** A minimal cookie jar: name → value, every cookie sent on every request (tests only). */
export class Jar {
  readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  /** Raw Set-Cookie lines of a response (for attribute checks). */
  static lines(res: Response): string[] {
    return res.headers.getSetCookie();
  }
}

/** fetch with manual redirects and the jar. */
export async function browse(jar: Jar, url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (jar.cookies.size) headers.set('cookie', jar.header());
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.take(res);
  return res;
}

export function postForm(
  jar: Jar,
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return browse(jar, url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

export function csrfOf(html: string): string {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  assert.ok(m?.[1], 'page has a csrf token');
  return m[1];
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface DcrClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
}

/** Dynamic client registration of a public client. */
export async function register(t: TestAs, meta: Record<string, unknown> = {}): Promise<Response> {
  return fetch(t.url('/oauth/register'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      redirect_uris: ['http://127.0.0.1:9999/callback'],
      token_endpoint_auth_method: 'none',
      client_name: 'Test MCP client',
      ...meta,
    }),
  });
}

export async function registerPublic(t: TestAs, meta: Record<string, unknown> = {}): Promise<DcrClient> {
  const res = await register(t, meta);
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as DcrClient;
}

export function authorizeUrl(t: TestAs, params: Record<string, string | undefined>): string {
  const u = new URL(t.url('/oauth/authorize'));
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

function location(res: Response, base: string): string {
  const loc = res.headers.get('location');
  assert.ok(loc, `expected a redirect, got ${res.status}`);
  return new URL(loc, base).href;
}

export interface CodeFlowResult {
  /** The final redirect to the client. */
  redirect: URL;
  jar: Jar;
  verifier: string;
  /** The consent form (action URL and csrf) as it was submitted, for replay tests. */
  consent?: { action: string; csrf: string };
  login?: { action: string; csrf: string };
  /** The last resume URL followed before the client redirect. */
  resume: string;
}

/**
 * Drives the browser part of the authorization code flow: authorize → login
 * form → consent form → redirect to the client. Cookies by hand.
 */
export async function codeFlow(
  t: TestAs,
  client: { client_id: string; redirect_uri: string },
  o: { scope?: string; resource?: string; user?: string; password?: string; jar?: Jar; state?: string } = {},
): Promise<CodeFlowResult> {
  const jar = o.jar ?? new Jar();
  const { verifier, challenge } = pkce();
  let res = await browse(
    jar,
    authorizeUrl(t, {
      client_id: client.client_id,
      redirect_uri: client.redirect_uri,
      response_type: 'code',
      scope: o.scope ?? 'mcp',
      state: o.state ?? 'st-123',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      resource: o.resource,
      // offline_access (a refresh token) is only granted with prompt=consent (OIDC Core §11).
      prompt: (o.scope ?? 'mcp').split(' ').includes('offline_access') ? 'consent' : undefined,
    }),
  );
  const out: Partial<CodeFlowResult> = { jar, verifier };
  let resume = '';
  for (let i = 0; i < 8; i++) {
    assert.ok(
      [302, 303].includes(res.status),
      `expected a redirect, got ${res.status}: ${await res.clone().text()}`,
    );
    const next = location(res, t.issuer);
    if (!next.startsWith(t.issuer)) {
      return { ...(out as CodeFlowResult), redirect: new URL(next), resume };
    }
    if (next.includes('/oauth/authorize/')) resume = next;
    res = await browse(jar, next);
    if (res.status === 200 && next.includes('/oauth/interaction/')) {
      const html = await res.text();
      const csrf = csrfOf(html);
      if (html.includes('name="password"')) {
        out.login = { action: `${next}/login`, csrf };
        res = await postForm(jar, `${next}/login`, {
          csrf,
          username: o.user ?? 'alice',
          password: o.password ?? 'correct horse battery',
        });
      } else {
        out.consent = { action: `${next}/confirm`, csrf };
        res = await postForm(jar, `${next}/confirm`, { csrf });
      }
    }
  }
  throw new Error('too many redirects');
}

export async function tokenRequest(
  t: TestAs,
  form: Record<string, string | undefined>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) {
    headers['authorization'] =
      `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString('base64')}`;
  }
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) body.set(k, v);
  const res = await fetch(t.url('/oauth/token'), { method: 'POST', headers, body: body.toString() });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Verifies an access token against the AS's jwks() the way the resource server will. */
export async function verifyAccessToken(t: TestAs, token: string): Promise<JWTPayload> {
  const header = decodeProtectedHeader(token);
  assert.equal(header.typ, 'at+jwt', 'RFC 9068 §2.1: typ at+jwt');
  const { payload } = await jwtVerify(token, createLocalJWKSet(t.as.jwks()), {
    issuer: t.issuer,
    audience: t.resource,
    typ: 'at+jwt',
  });
  return payload;
}
