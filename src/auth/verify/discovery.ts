/**
 * Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery
 * 1.0), in the order the MCP authorization spec prescribes.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization#authorization-server-metadata-discovery
 */
import { HTTP_TIMEOUT_MS, readJsonObject, secureUrl } from './http.ts';

/** The subset of authorization server metadata the verifier uses; other members are kept as-is. */
export interface IssuerMetadata {
  readonly issuer: string;
  readonly jwks_uri?: string;
  readonly introspection_endpoint?: string;
  readonly token_endpoint?: string;
  readonly authorization_endpoint?: string;
  readonly [member: string]: unknown;
}

/**
 * The well-known URLs to try, in order.
 *
 * MCP 2025-11-25 (authorization server metadata discovery): for issuer URLs with
 * path components, clients "MUST try" the OAuth 2.0 metadata with path insertion,
 * then OpenID Connect discovery with path insertion, then OpenID Connect
 * discovery with path appending; without a path, the OAuth 2.0 metadata, then
 * OpenID Connect discovery. RFC 8414 §3.1
 * (https://www.rfc-editor.org/rfc/rfc8414#section-3.1) defines the path-inserted form.
 */
export function metadataUrls(issuer: string): string[] {
  const u = secureUrl(issuer, 'issuer');
  if (u.search || u.hash) throw new TypeError('issuer must not have a query or fragment');
  const path = u.pathname.replace(/\/+$/, '');
  if (path === '') {
    return [
      `${u.origin}/.well-known/oauth-authorization-server`,
      `${u.origin}/.well-known/openid-configuration`,
    ];
  }
  return [
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
    `${u.origin}/.well-known/openid-configuration${path}`,
    `${u.origin}${path}/.well-known/openid-configuration`,
  ];
}

/**
 * Fetches and validates the metadata of `issuer`.
 *
 * RFC 8414 §3.3 (https://www.rfc-editor.org/rfc/rfc8414#section-3.3): "The
 * "issuer" value returned MUST be identical to the authorization server's issuer
 * identifier value into which the well-known URI string was inserted to create
 * the URL used to retrieve the metadata. If these values are not identical, the
 * data contained in the response MUST NOT be used." A mismatching document is
 * rejected outright (no further fallback), since it signals a misconfigured or
 * impersonating server.
 *
 * @throws Error when no well-known URL yields metadata, or the metadata is invalid.
 */
export async function discoverIssuer(
  issuer: string,
  fetchImpl: typeof fetch = fetch,
): Promise<IssuerMetadata> {
  const failures: string[] = [];
  for (const url of metadataUrls(issuer)) {
    let res: Response;
    try {
      res = await fetchImpl(url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
    } catch {
      failures.push(`${url}: unreachable`);
      continue;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      failures.push(`${url}: http ${res.status}`);
      continue;
    }
    let doc: Record<string, unknown>;
    try {
      doc = await readJsonObject(res);
    } catch {
      failures.push(`${url}: invalid json`);
      continue;
    }
    if (doc['issuer'] !== issuer) throw new Error(`issuer mismatch in metadata at ${url}`);
    for (const member of ['jwks_uri', 'introspection_endpoint', 'token_endpoint', 'authorization_endpoint']) {
      if (doc[member] !== undefined && typeof doc[member] !== 'string') {
        throw new Error(`invalid ${member} in metadata at ${url}`);
      }
    }
    return doc as IssuerMetadata;
  }
  throw new Error(`no authorization server metadata for issuer (${failures.join('; ')})`);
}
