/**
 * Client ID Metadata Documents with the real MCP SDK client: the client's
 * client_id is an HTTPS URL; the embedded authorization server fetches the
 * document (through its SSRF-guarded fetch) instead of a registration.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#client-id-metadata-documents
 *
 * The document is served over HTTPS on loopback with a throwaway self-signed
 * certificate; the gateway runs as its own process so that it can trust that
 * certificate (NODE_EXTRA_CA_CERTS) and is allowed loopback metadata URLs
 * (auth.embedded.allowInsecureMetadataUrls, a development flag).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ScriptedOAuthProvider } from '../helpers/oauth.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = ['--import', 'tsx', join(ROOT, 'src/cli/index.ts')];
const USER = { username: 'carol', password: 'fake-canary-password-carol' };
const REDIRECT = 'http://127.0.0.1:53683/callback';

let work: string;
let docServer: Server;
let docUrl: string;
let docFetches = 0;
let gateway: ChildProcess;
let mcpUrl: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'gatehouse-cimd-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(work, 'key.pem'),
      '-out',
      join(work, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  docServer = createServer(
    { key: readFileSync(join(work, 'key.pem')), cert: readFileSync(join(work, 'cert.pem')) },
    (_req, res) => {
      docFetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          client_id: docUrl,
          client_name: 'Metadata-document client',
          redirect_uris: [REDIRECT],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }),
      );
    },
  );
  await new Promise<void>((resolve) => docServer.listen(0, '127.0.0.1', () => resolve()));
  docUrl = `https://127.0.0.1:${(docServer.address() as AddressInfo).port}/oauth/client.json`;

  const dataDir = join(work, 'data');
  const add = spawnSync(process.execPath, [...CLI, 'users', 'add', USER.username, '--data-dir', dataDir], {
    input: `${USER.password}\n`,
    encoding: 'utf8',
  });
  assert.equal(add.status, 0, add.stderr);
  const everything = join(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
  writeFileSync(
    join(work, 'gatehouse.yaml'),
    [
      'auth:',
      '  mode: embedded',
      '  embedded:',
      '    clientIdMetadataDocuments: true',
      '    allowInsecureMetadataUrls: true',
      // Relative to the config file: the demo policy lets agents acting for a user use the demo server.
      `policy: { files: [${JSON.stringify(join(ROOT, 'examples/policies/demo.cedar'))}] }`,
      'pinning: { newTools: trust }',
      'upstreams:',
      '  everything:',
      '    type: stdio',
      `    command: ${JSON.stringify(process.execPath)}`,
      `    args: [${JSON.stringify(everything)}, stdio]`,
      '',
    ].join('\n'),
  );
  gateway = spawn(
    process.execPath,
    [...CLI, 'start', '--config', join(work, 'gatehouse.yaml'), '--port', '0', '--data-dir', dataDir],
    {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(work, 'cert.pem') },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  mcpUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    gateway.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /MCP endpoint:\s+(\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    gateway.once('exit', (code) => reject(new Error(`gateway exited ${code}: ${out}`)));
  });
});

after(async () => {
  gateway.kill('SIGTERM');
  docServer.close();
  rmSync(work, { recursive: true, force: true });
});

test('the MCP SDK client authorizes with a Client ID Metadata Document (no registration) and calls a tool', {
  timeout: 60_000,
}, async () => {
  const provider = new ScriptedOAuthProvider(USER, REDIRECT, docUrl);
  let client = new Client({ name: 'cimd', version: '1' });
  let transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await assert.rejects(client.connect(transport), UnauthorizedError);
  assert.ok(docFetches > 0, 'the authorization server fetched the metadata document');
  assert.equal(
    provider.authorizationUrls[0]?.searchParams.get('client_id'),
    docUrl,
    'the client_id is the document URL',
  );
  await transport.finishAuth(provider.codes.at(-1) ?? '');
  client = new Client({ name: 'cimd', version: '1' });
  transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await client.connect(transport);
  const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'cimd' } });
  assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: cimd' }]);
  const claims = JSON.parse(
    Buffer.from(provider.saved?.access_token.split('.')[1] ?? '', 'base64url').toString(),
  ) as {
    client_id: string;
    sub: string;
  };
  assert.equal(claims.client_id, docUrl);
  assert.equal(claims.sub, USER.username);
  await client.close();
});
