/**
 * Mints access tokens directly with the authorization server's signing key, in
 * the same shape as the tokens the token endpoint issues (RFC 9068 JWT access
 * tokens). Used by `gatehouse token --user` (a local user's subject token for
 * token exchange) and by tests; never reachable over HTTP.
 */
import { randomUUID } from 'node:crypto';
import { importJWK, type JWK, SignJWT } from 'jose';
import { SIGNING_ALG } from './keys.ts';

export interface MintOptions {
  /** Private signing key (the first key of oauth-keys.json). */
  key: JWK;
  issuer: string;
  /** Audience: the MCP resource URL. */
  resource: string;
  clientId: string;
  /** The user; defaults to the client (a client-credentials token). */
  sub?: string;
  scope: string;
  ttlSec: number;
  act?: Record<string, unknown>;
}

/** Signs an RFC 9068 access token (`typ: at+jwt`) with iss, sub, aud, client_id, scope, jti, iat, exp. */
export async function mintAccessToken(o: MintOptions): Promise<string> {
  const key = await importJWK(o.key, SIGNING_ALG);
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { client_id: o.clientId, scope: o.scope };
  if (o.act) claims['act'] = o.act;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: SIGNING_ALG, typ: 'at+jwt', kid: o.key.kid })
    .setIssuer(o.issuer)
    .setSubject(o.sub ?? o.clientId)
    .setAudience(o.resource)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + o.ttlSec)
    .sign(key);
}
