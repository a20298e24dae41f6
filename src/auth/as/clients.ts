/**
 * Clients of the embedded authorization server: secrets from SecretRefs,
 * pre-registered clients as oidc-provider metadata, the redirect URI rule
 * shared by every registration path, and the demo agent.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ClientMetadata } from 'oidc-provider';
import type { PreRegisteredClient, SecretRef } from '../../config/schema.ts';
import { createPrivateFile, readPrivateFile } from '../../util/private-file.ts';

/** RFC 8693 token exchange grant type. */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** RFC 8693 §3 token type identifier of an access token. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** Resolves a SecretRef: a literal, `{ env: NAME }` or `{ file: PATH }` (trailing newline trimmed). */
export function resolveSecret(ref: SecretRef, what = 'secret'): string {
  if (typeof ref === 'string') return ref;
  if ('env' in ref) {
    const v = process.env[ref.env];
    if (v === undefined || v === '') throw new Error(`${what}: environment variable ${ref.env} is not set`);
    return v;
  }
  const v = readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
  if (v === '') throw new Error(`${what}: file ${ref.file} is empty`);
  return v;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Why a redirect URI is refused, or undefined when it is acceptable.
 *
 * "Authorization servers MUST [...] only allow redirect URIs that are either
 * localhost URLs or HTTPS URLs"
 * (https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#communication-security).
 * Fragments are refused ("The redirect URI MUST NOT include a fragment component",
 * https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1-13#section-2.3.1).
 */
export function redirectUriProblem(uri: unknown): string | undefined {
  if (typeof uri !== 'string') return 'redirect_uris must be strings';
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return `redirect uri ${JSON.stringify(uri)} is not an absolute url`;
  }
  if (u.hash || uri.includes('#')) return `redirect uri ${uri} must not contain a fragment`;
  if (u.username || u.password) return `redirect uri ${uri} must not contain credentials`;
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && LOOPBACK_HOSTS.has(u.hostname.toLowerCase())) return undefined;
  return `redirect uri ${uri} must use https or loopback http (127.0.0.1, [::1], localhost)`;
}

/** Converts a pre-registered client from the config to oidc-provider client metadata. */
export function toClientMetadata(c: PreRegisteredClient): ClientMetadata {
  if (c.clientSecret !== undefined && c.jwksUri !== undefined) {
    throw new Error(`auth.embedded.clients ${c.clientId}: set clientSecret or jwksUri, not both`);
  }
  for (const uri of c.redirectUris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new Error(`auth.embedded.clients ${c.clientId}: ${problem}`);
  }
  const interactive = c.grantTypes.includes('authorization_code');
  if (interactive && c.redirectUris.length === 0) {
    throw new Error(`auth.embedded.clients ${c.clientId}: authorization_code needs redirectUris`);
  }
  const meta: ClientMetadata = {
    client_id: c.clientId,
    grant_types: c.grantTypes,
    response_types: interactive ? ['code'] : [],
    redirect_uris: c.redirectUris,
    token_endpoint_auth_method:
      c.clientSecret !== undefined
        ? 'client_secret_basic'
        : c.jwksUri !== undefined
          ? 'private_key_jwt'
          : 'none',
  };
  if (c.clientName !== undefined) meta.client_name = c.clientName;
  if (c.clientSecret !== undefined) {
    meta.client_secret = resolveSecret(c.clientSecret, `auth.embedded.clients ${c.clientId} clientSecret`);
  }
  if (c.jwksUri !== undefined) meta.jwks_uri = c.jwksUri;
  if (c.scope !== undefined) meta.scope = c.scope;
  if (c.owner !== undefined) meta['owner'] = c.owner;
  return meta;
}

/** The demo agent's client id. */
export const DEMO_CLIENT_ID = 'demo-agent';

/** Path of the demo agent's secret inside a data directory. */
export function demoSecretPath(dataDir: string): string {
  return resolve(join(dataDir, 'demo-agent.secret'));
}

/**
 * The embedded demo's pre-registered headless agent: `demo-agent`, a
 * client-credentials (and token-exchange) client whose secret is generated once
 * into `<dataDir>/demo-agent.secret` (mode 0600) and referenced as `{ file }`.
 */
export function demoAuthClients(dataDir: string): PreRegisteredClient[] {
  const path = demoSecretPath(dataDir);
  // Generated once; an existing file must be private (readPrivateFile refuses it otherwise).
  if (readPrivateFile(path) === undefined)
    createPrivateFile(path, `${randomBytes(32).toString('base64url')}\n`);
  return [
    {
      clientId: DEMO_CLIENT_ID,
      clientName: 'Demo agent',
      clientSecret: { file: path },
      grantTypes: ['client_credentials', TOKEN_EXCHANGE],
      redirectUris: [],
      owner: 'gatehouse demo',
    },
  ];
}
