/**
 * OAuth 2.0 Token Introspection client (RFC 7662) for opaque access tokens.
 * https://www.rfc-editor.org/rfc/rfc7662
 */
import { TokenError } from '../principal.ts';
import { HTTP_TIMEOUT_MS, readJsonObject } from './http.ts';

/** Introspection endpoint and this resource server's client credentials. */
export interface IntrospectionOptions {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  /** How long an active result may be reused, seconds (default 30; never past `exp`). */
  cacheTtlSec?: number;
}

/** `application/x-www-form-urlencoded` encoding of one value. */
function formEncode(v: string): string {
  return new URLSearchParams([['', v]]).toString().slice(1);
}

/**
 * RFC 6749 §2.3.1 (https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1): for
 * HTTP Basic client authentication, "The client identifier is encoded using the
 * "application/x-www-form-urlencoded" encoding algorithm [...] and the encoded
 * value is used as the username; the client password is encoded using the same
 * algorithm and used as the password."
 */
export function basicAuth(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}

/**
 * Asks the authorization server about `token` and returns the response members.
 * Throws a TokenError: `token inactive` for `active: false`, `unavailable=true`
 * when the endpoint cannot be reached or refuses our client authentication.
 */
export async function introspect(
  token: string,
  o: IntrospectionOptions,
  authorization: string,
  fetchImpl: typeof fetch,
): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    // RFC 7662 §2.1 (https://www.rfc-editor.org/rfc/rfc7662#section-2.1): "The
    // protected resource calls the introspection endpoint using an HTTP POST
    // request with parameters sent as "application/x-www-form-urlencoded" data".
    res = await fetchImpl(o.endpoint, {
      method: 'POST',
      headers: {
        authorization,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      // Never replay our client credentials to wherever a redirect points.
      redirect: 'error',
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
  } catch {
    throw new TokenError('introspection unavailable', true);
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new TokenError(
      res.status === 401 || res.status === 403
        ? 'introspection client authentication failed'
        : 'introspection unavailable',
      true,
    );
  }
  let body: Record<string, unknown>;
  try {
    body = await readJsonObject(res);
  } catch {
    throw new TokenError('introspection response invalid', true);
  }
  // RFC 7662 §2.2 (https://www.rfc-editor.org/rfc/rfc7662#section-2.2): `active`
  // is REQUIRED; anything but boolean true is treated as inactive.
  if (body['active'] !== true) throw new TokenError('token inactive');
  return body;
}
