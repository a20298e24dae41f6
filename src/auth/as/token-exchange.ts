/**
 * OAuth 2.0 Token Exchange (RFC 8693) as an oidc-provider custom grant: an agent
 * presents a user's access token issued by this server (`subject_token`) and
 * receives a token that acts for that user, with itself recorded as the actor.
 * https://datatracker.ietf.org/doc/html/rfc8693
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTPayload, jwtVerify } from 'jose';
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import {
  makeTaskGrant,
  parseTaskRequest,
  type TaskGrantDeps,
  TaskRequestError,
  TOOL_SCOPE_PREFIX,
} from '../../grants/task.ts';
import type { Storage } from '../../storage/types.ts';
import { GRANT_CLAIM, GROUPS_CLAIM, type Principal, TENANT_CLAIM, TokenError } from '../principal.ts';
import type { RevocationList } from '../revocation.ts';
import { toPrincipal } from '../verify/claims.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE } from './clients.ts';
import { SIGNING_ALG } from './keys.ts';

export { ACCESS_TOKEN_TYPE };

/** The RFC 8693 §4.1 `act` claim: the current actor, then whoever acted before it. */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

export interface TokenExchangeDeps {
  issuer: string;
  resource: string;
  /** Public signing keys of this server. */
  jwks: JSONWebKeySet;
  storage: Storage;
  /** Resource server info for `resource` (same as for every other grant). */
  resourceServerInfo: () => ResourceServer;
  /** Extra claims (`act`, `gatehouse_grant`) of a token being issued, kept until extraTokenClaims reads them. */
  extraClaims: WeakMap<object, Record<string, unknown>>;
  /** Makes task grants (token exchange with a tool list); absent: tool requests are refused. */
  taskGrants: TaskGrantDeps | undefined;
  /** The token revocation list: a revoked subject token is not exchanged. */
  revocations: RevocationList | undefined;
}

/** Parameters the grant reads (beyond grant_type and client authentication). */
export const TOKEN_EXCHANGE_PARAMS = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'audience',
  'resource',
  'scope',
  'authorization_details',
];

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/**
 * Verifies that a subject token is an access token this server issued: for one of its local users, or
 * (`self`) the authenticated client's own token, which may only be narrowed to a task.
 */
async function verifySubjectToken(
  deps: TokenExchangeDeps,
  token: string,
  clientId: string,
): Promise<{ payload: JWTPayload; self: boolean }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet(deps.jwks), {
      issuer: deps.issuer,
      audience: deps.resource,
      typ: 'at+jwt',
      algorithms: [SIGNING_ALG],
      requiredClaims: ['sub', 'exp', 'client_id'],
    }));
  } catch {
    throw new errors.InvalidGrant('subject_token is invalid or expired');
  }
  // A revoked token must not buy a fresh one: the new token would be issued after the revocation
  // and so escape it (revocation by agent or user covers tokens issued before).
  if (deps.revocations) {
    let revoked: boolean;
    try {
      const p = toPrincipal(payload, {
        issuer: deps.issuer,
        tenantClaim: 'tenant',
        authMethod: 'jwt',
        expiresAt: payload.exp ?? 0,
      });
      revoked = deps.revocations.isRevoked(p);
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      throw new errors.InvalidGrant('subject_token is invalid or expired');
    }
    if (revoked) throw new errors.InvalidGrant('subject_token was revoked');
  }
  if (payload[GRANT_CLAIM] !== undefined) {
    // A task token is already as narrow as it gets; exchanging it again would outlive its grant.
    throw new errors.InvalidGrant('subject_token is a task token');
  }
  const sub = String(payload.sub);
  // A client-credentials token has sub = client_id and no user behind it: only its own client may narrow it.
  if (sub === payload['client_id']) {
    if (sub !== clientId) throw new errors.InvalidGrant('subject_token does not represent a user');
    return { payload, self: true };
  }
  if (!(await deps.storage.users.get(sub)))
    throw new errors.InvalidGrant('subject_token does not represent a user');
  return { payload, self: false };
}

/** Registers the RFC 8693 grant on the provider. */
export function registerTokenExchange(provider: Provider, deps: TokenExchangeDeps): void {
  const handler = async (ctx: KoaContextWithOIDC): Promise<void> => {
    const params = ctx.oidc.params ?? {};
    const client = ctx.oidc.client;
    if (!client) throw new errors.InvalidClient();
    // The token endpoint already refused clients whose grant_types lack this grant
    // ("requested grant type is not allowed for this client").
    const subjectToken = str(params['subject_token']);
    if (!subjectToken) throw new errors.InvalidRequest('missing required parameter subject_token');
    // "subject_token_type REQUIRED" (RFC 8693 §2.1)
    if (params['subject_token_type'] !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    if (params['actor_token'] !== undefined || params['actor_token_type'] !== undefined) {
      // The actor is the authenticated client; separate actor tokens are not supported.
      throw new errors.InvalidRequest('actor_token is not supported: the authenticated client is the actor');
    }
    const requested = params['requested_token_type'];
    if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    // "If the authorization server is unwilling or unable to issue a token for any target
    // service indicated by the resource or audience parameters, it SHOULD reject the
    // request with invalid_target" (RFC 8693 §2.2.2).
    for (const name of ['resource', 'audience'] as const) {
      const v = params[name];
      const values = Array.isArray(v) ? v : v === undefined ? [] : [v];
      if (values.some((x) => x !== deps.resource))
        throw new errors.InvalidTarget(`${name} must be ${deps.resource}`);
    }

    const { payload: subject, self } = await verifySubjectToken(deps, subjectToken, client.clientId);
    const subjectScopes = new Set(
      String(subject['scope'] ?? '')
        .split(' ')
        .filter(Boolean),
    );
    const scopeParam = str(params['scope']);
    const requestedScopes = scopeParam ? [...new Set(scopeParam.split(' ').filter(Boolean))] : [];
    let task: ReturnType<typeof parseTaskRequest>;
    try {
      task = parseTaskRequest(requestedScopes, params['authorization_details']);
    } catch (err) {
      if (err instanceof TaskRequestError) throw new errors.InvalidRequest(err.message);
      throw err;
    }
    if (self && !task) {
      throw new errors.InvalidGrant("exchanging a client's own token needs a tool list (a task token)");
    }
    // Tool requests narrow the grant; they are not OAuth scopes of the subject token.
    const plain = requestedScopes.filter((s) => !s.startsWith(TOOL_SCOPE_PREFIX));
    const scopes = plain.length > 0 ? plain : [...subjectScopes];
    // Narrower, never wider: the exchanged token cannot carry a scope the user did not grant.
    for (const s of scopes) {
      if (!subjectScopes.has(s))
        throw new errors.InvalidScope('requested scope exceeds the subject token scope', s);
    }
    if (client.scope) {
      const allowed = new Set(client.scope.split(' '));
      for (const s of scopes) {
        if (!allowed.has(s))
          throw new errors.InvalidScope('requested scope is not allowed for this client', s);
      }
    }
    if (scopes.length === 0) throw new errors.InvalidScope('no scope to issue', '');

    const claims: Record<string, unknown> = {};
    if (!self) {
      // "act: a JSON object [...] nested act claims [...] the most recent actor" (RFC 8693 §4.1).
      const prior = subject['act'];
      const act: ActClaim = { sub: client.clientId };
      if (prior && typeof prior === 'object' && typeof (prior as ActClaim).sub === 'string') {
        act.act = prior as ActClaim;
      }
      claims['act'] = act;
      // The exchanged token acts for the same user: it carries the subject token's tenant and groups.
      for (const name of [TENANT_CLAIM, GROUPS_CLAIM]) {
        if (Object.hasOwn(subject, name)) claims[name] = subject[name];
      }
    }

    // No grantId: the exchanged token is a stateless JWT derived from another JWT; oidc-provider
    // needs a grant only for tokens it stores (opaque tokens, refresh tokens), which this is not.
    const init = {
      accountId: String(subject.sub),
      client,
      gty: 'token_exchange',
      scope: scopes.join(' '),
    } as ConstructorParameters<typeof provider.AccessToken>[0];
    const at = new provider.AccessToken(init);
    at.resourceServer = new provider.ResourceServer(deps.resource, deps.resourceServerInfo());
    let grantedTools: string[] | undefined;
    if (task) {
      if (!deps.taskGrants) throw new errors.InvalidRequest('task tokens are not available on this server');
      const principal = taskPrincipal(
        deps.issuer,
        client.clientId,
        String(subject.sub),
        self,
        claims,
        scopes,
      );
      const expiresAt =
        Date.now() + (at.expiration ?? deps.resourceServerInfo().accessTokenTTL ?? 300) * 1000;
      try {
        const made = await makeTaskGrant(
          deps.taskGrants,
          principal,
          task,
          expiresAt,
          `token-exchange:${client.clientId}`,
        );
        claims[GRANT_CLAIM] = made.grant.id;
        grantedTools = made.tools;
      } catch (err) {
        if (!(err instanceof TaskRequestError)) throw err;
        throw err.kind === 'invalid_scope'
          ? new errors.InvalidScope(err.message, task.tools.map((t) => TOOL_SCOPE_PREFIX + t).join(' '))
          : new errors.InvalidRequest(err.message);
      }
    }
    deps.extraClaims.set(at, claims);
    ctx.oidc.entity('AccessToken', at);
    const value = await at.save();
    // The issued scope names the tools actually granted (RFC 6749 §5.1: scope differs from the request).
    const issued = [...scopes, ...(grantedTools ?? []).map((t) => TOOL_SCOPE_PREFIX + t)].join(' ');
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: at.expiration,
      scope: issued,
      ...(grantedTools ? { gatehouse_grant: claims[GRANT_CLAIM] } : {}),
    };
  };
  provider.registerGrantType(TOKEN_EXCHANGE, handler, TOKEN_EXCHANGE_PARAMS, ['resource', 'audience']);
}

/** The principal the task token will carry, as the resource server will see it. */
function taskPrincipal(
  issuer: string,
  clientId: string,
  sub: string,
  self: boolean,
  claims: Record<string, unknown>,
  scopes: string[],
): Principal {
  const actors: string[] = [];
  for (let a = claims['act'] as ActClaim | undefined; a; a = a.act) actors.push(a.sub);
  const groups = claims[GROUPS_CLAIM];
  return {
    agent: clientId,
    user: self ? undefined : sub,
    subject: sub,
    actors,
    // The same tenant and groups the resource server will read from the token (principalKey binds them).
    tenant: str(claims[TENANT_CLAIM]),
    ...(Array.isArray(groups) ? { groups: groups.filter((g): g is string => typeof g === 'string') } : {}),
    tokenId: undefined,
    issuer,
    scopes: new Set(scopes),
    authMethod: 'jwt',
    expiresAt: 0,
  };
}
