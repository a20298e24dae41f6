/**
 * The embedded authorization server's side of token revocation (src/auth/revocation.ts): RFC 7009
 * revocation of access tokens at `/oauth/revoke`, refusing to mint from a credential older than a
 * revocation, revoking the access tokens of an authorization-server grant that is revoked, and
 * revoking the tokens of pre-registered clients removed from the configuration.
 * https://www.rfc-editor.org/rfc/rfc7009
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTPayload, jwtVerify } from 'jose';
import type Provider from 'oidc-provider';
import { errors, type FindAccount } from 'oidc-provider';
import type { Logger } from 'pino';
import type { GrantSelector, Storage } from '../../storage/types.ts';
import { GRANT_CLAIM } from '../principal.ts';
import type { RevocationList } from '../revocation.ts';
import { SIGNING_ALG } from './keys.ts';

/** Clock skew tolerated when verifying a token to revoke (as the resource server does, and more). */
const REVOKE_CLOCK_TOLERANCE_SEC = 60;

/** The `oauth` model row remembering the pre-registered client ids of the last start. */
const KNOWN_CLIENTS_MODEL = 'GatehouseStaticClients';
const KNOWN_CLIENTS_ID = 'ids';

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** What RFC 7009 handling needs. */
export interface TokenRevocationDeps {
  issuer: string;
  /** Public signing keys of this server. */
  jwks: JSONWebKeySet;
  revocations: RevocationList | undefined;
  /** Ends task grants (a task token's grant ends with it). */
  grants: { revoke(selector: GrantSelector, reason: string): Promise<string[]> } | undefined;
}

/** The `token` parameter's answer from oidc-provider: it refused a structured (JWT) token. */
function refusedAsJwt(body: unknown): boolean {
  return (
    typeof body === 'object' &&
    body !== null &&
    (body as { error?: unknown }).error === 'unsupported_token_type'
  );
}

/**
 * RFC 7009 revocation of this server's JWT access tokens. oidc-provider refuses to revoke structured
 * tokens (`unsupported_token_type`, raised only after it authenticated the client); Gatehouse keeps
 * the state instead: the token's `jti` goes on the revocation list (every gateway refuses it), and a
 * task token's grant ends.
 */
export function registerTokenRevocation(provider: Provider, deps: TokenRevocationDeps, path: string): void {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.method !== 'POST' || ctx.path !== path || !refusedAsJwt(ctx.body)) return;
    if (!deps.revocations && !deps.grants) return; // nothing to keep the state in: the refusal stands
    const token = str(ctx.oidc?.params?.['token']);
    const client = ctx.oidc?.client;
    if (!token || !client) return;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, createLocalJWKSet(deps.jwks), {
        issuer: deps.issuer,
        typ: 'at+jwt',
        algorithms: [SIGNING_ALG],
        clockTolerance: REVOKE_CLOCK_TOLERANCE_SEC,
      }));
    } catch {
      // RFC 7009 §2.2: "The authorization server responds with HTTP status code 200 if the token has
      // been revoked successfully or if the client submitted an invalid token." (expired, not ours)
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    // RFC 7009 §2.1: "The authorization server first validates the client credentials (in case of a
    // confidential client) and then verifies whether the token was issued to the client making the
    // revocation request. If this validation fails, the request is refused". As oidc-provider answers
    // for its own tokens: a public client learns nothing, a confidential one gets invalid_request.
    const agent = str(payload['client_id']);
    if (agent === undefined || agent !== client.clientId) {
      if (client.clientAuthMethod === 'none') {
        ctx.status = 200;
        ctx.body = '';
      } else {
        ctx.status = 400;
        ctx.body = {
          error: 'invalid_request',
          error_description: 'client is not authorized to revoke the presented token',
        };
      }
      return;
    }
    const grant = str(payload[GRANT_CLAIM]);
    if (!deps.revocations && !(grant && deps.grants)) return;
    const reason = `revoked by ${agent} (RFC 7009)`;
    try {
      if (grant && deps.grants) await deps.grants.revoke({ id: grant }, 'task token revoked (RFC 7009)');
      const jti = str(payload.jti);
      const sub = str(payload.sub);
      await deps.revocations?.revoke(
        jti
          ? { kind: 'jti', jti, expiresAt: payload.exp }
          : { kind: 'agent+user', agent, user: sub === agent ? undefined : sub },
        reason,
      );
    } catch {
      // RFC 7009 §2.2.1: 503 "indicates that the service is temporarily unavailable; the client must
      // assume the token still exists and may retry after a reasonable delay".
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'try again later' };
      return;
    }
    ctx.status = 200;
    ctx.body = '';
  });
}

/** The credential a token is about to be minted from (`findAccount`'s third argument). */
type GrantSource = Parameters<FindAccount>[2];

/**
 * Refuses to mint from a refresh token, authorization code or other grant source issued before a
 * revocation that covers its client and user (a token it minted would be issued after the
 * revocation, and so not covered by it). A rotated refresh token counts from the first one (`iiat`).
 */
export function refuseRevokedSource(
  revocations: RevocationList | undefined,
  sub: string,
  source: GrantSource,
): void {
  if (!revocations || !source?.clientId) return;
  const issuedAt =
    source.kind === 'RefreshToken' && 'iiat' in source ? (source.iiat ?? source.iat) : source.iat;
  const revoked = revocations.isRevoked({
    agent: source.clientId,
    user: sub === source.clientId ? undefined : sub,
    actors: [],
    tokenId: source.kind === 'AccessToken' ? source.jti : undefined,
    issuedAt,
  });
  if (revoked) throw new errors.InvalidGrant('the grant was revoked');
}

/**
 * Called before oidc-provider destroys one of its grants, which it does when a refresh token is
 * revoked (RFC 7009) or reused, an authorization code is replayed, or a user logs out: the access
 * tokens issued under it are revoked too. RFC 7009 §2.1: "If the particular token is a refresh token
 * and the authorization server supports the revocation of access tokens, then the authorization
 * server SHOULD also invalidate all access tokens based on the same authorization grant"; OAuth 2.1
 * §4.1.3 on a replayed code: it "SHOULD revoke all tokens previously issued based on that
 * authorization code". Access tokens do not carry the grant, so the entry is by agent and user.
 */
export function grantRevoker(
  storage: Storage,
  revocations: RevocationList | undefined,
): ((grantId: string) => Promise<void>) | undefined {
  if (!revocations) return undefined;
  return async (grantId) => {
    const grant = await storage.oauth.find('Grant', grantId);
    const agent = str(grant?.['clientId']);
    const user = str(grant?.['accountId']);
    if (!agent || !user) return;
    await revocations.revoke(
      { kind: 'agent+user', agent, user },
      'authorization grant revoked (refresh token revoked or reused, code replayed, or logout)',
    );
  };
}

/**
 * At start: tokens of pre-registered clients that were configured at the previous start and are not
 * any more are revoked (their grants end too), so removing a client from the configuration ends its
 * access at once instead of when its last token expires. Resolves to the removed client ids.
 */
export async function revokeRemovedClients(
  storage: Storage,
  revocations: RevocationList | undefined,
  grants: TokenRevocationDeps['grants'],
  clientIds: ReadonlySet<string>,
  log: Logger,
): Promise<string[]> {
  if (!revocations) return [];
  const known = await storage.oauth.find(KNOWN_CLIENTS_MODEL, KNOWN_CLIENTS_ID);
  const before = Array.isArray(known?.['ids'])
    ? (known['ids'] as unknown[]).filter((v): v is string => typeof v === 'string')
    : [];
  const removed = before.filter((id) => !clientIds.has(id));
  const reason = 'client removed from the configuration';
  for (const agent of removed) {
    await revocations.revoke({ kind: 'agent', agent }, reason);
    await grants?.revoke({ agent }, reason);
    log.info({ client: agent }, 'tokens of a removed client revoked');
  }
  await storage.oauth.upsert(
    KNOWN_CLIENTS_MODEL,
    KNOWN_CLIENTS_ID,
    { ids: [...clientIds].sort() },
    undefined,
  );
  return removed;
}
