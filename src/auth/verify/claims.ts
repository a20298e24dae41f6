/**
 * Maps validated token claims (a JWT claims set, or an RFC 7662 introspection
 * response) to a {@link Principal}.
 */

import { getOwn } from '../../util/own.ts';
import { type AuthMethod, GRANT_CLAIM, type Principal, TokenError } from '../principal.ts';

/** Deepest `act` nesting we accept; deeper chains are refused rather than truncated. */
const MAX_ACTOR_DEPTH = 16;

/** Claims that are not the issuer's business to vary per token type. */
export interface MappingOptions {
  readonly issuer: string;
  readonly tenantClaim: string;
  /** Claim holding the user's groups; none are read when undefined. */
  readonly groupsClaim?: string | undefined;
  readonly authMethod: AuthMethod;
  readonly expiresAt: number;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * Scopes from `scope` (RFC 9068 §2.2.3 / RFC 7662 §2.2: a space-delimited
 * string), else `scp` (Okta: array of strings; Microsoft Entra: space-delimited
 * string).
 */
export function scopesOf(claims: Record<string, unknown>): Set<string> {
  const scope = claims['scope'] ?? claims['scp'];
  if (scope === undefined) return new Set();
  if (typeof scope === 'string') return new Set(scope.split(' ').filter((s) => s !== ''));
  if (Array.isArray(scope) && scope.every((s): s is string => typeof s === 'string')) {
    return new Set(scope.filter((s) => s !== ''));
  }
  throw new TokenError('invalid scope claim');
}

/**
 * Delegation chain from nested `act` claims, the current actor first.
 * RFC 8693 §4.1 (https://www.rfc-editor.org/rfc/rfc8693#section-4.1): "the
 * outermost act claim represents the current actor while nested act claims
 * represent prior actors".
 */
export function actorsOf(claims: Record<string, unknown>): string[] {
  const actors: string[] = [];
  let act = claims['act'];
  while (act !== undefined) {
    if (typeof act !== 'object' || act === null || Array.isArray(act))
      throw new TokenError('invalid act claim');
    const rec = act as Record<string, unknown>;
    const sub = str(rec['sub']);
    if (sub === undefined) throw new TokenError('invalid act claim');
    if (actors.length === MAX_ACTOR_DEPTH) throw new TokenError('act chain too deep');
    actors.push(sub);
    act = rec['act'];
  }
  return actors;
}

/** Most groups a token may carry; more is refused rather than cut (a cut list could change a decision). */
const MAX_GROUPS = 256;

/** The groups claim: an array of non-empty strings (own property only; a missing claim is no groups). */
export function groupsOf(claims: Record<string, unknown>, claim: string | undefined): string[] | undefined {
  if (claim === undefined || !Object.hasOwn(claims, claim)) return undefined;
  const v = claims[claim];
  if (
    !Array.isArray(v) ||
    v.length > MAX_GROUPS ||
    !v.every((g): g is string => typeof g === 'string' && g !== '')
  )
    throw new TokenError('invalid groups claim');
  return v;
}

/** Builds the principal; throws a TokenError when an identity claim is missing. */
export function toPrincipal(claims: Record<string, unknown>, o: MappingOptions): Principal {
  const subject = str(claims['sub']);
  if (subject === undefined) throw new TokenError('missing sub claim');
  // RFC 9068 §2.2 (https://www.rfc-editor.org/rfc/rfc9068#section-2.2): client_id
  // is REQUIRED; `azp` is the OpenID Connect spelling some issuers use instead.
  const agent = str(claims['client_id']) ?? str(claims['azp']);
  if (agent === undefined) throw new TokenError('missing client_id claim');
  const groups = groupsOf(claims, o.groupsClaim);
  return Object.freeze({
    agent,
    // RFC 9068 §2.2: for client-credentials grants `sub` "SHOULD correspond to an
    // identifier the authorization server uses to indicate the client application".
    user: subject === agent ? undefined : subject,
    subject,
    actors: Object.freeze(actorsOf(claims)),
    tenant: str(getOwn(claims, o.tenantClaim)),
    tokenId: str(claims['jti']),
    issuer: o.issuer,
    scopes: scopesOf(claims),
    authMethod: o.authMethod,
    expiresAt: o.expiresAt,
    issuedAt: num(claims['iat']),
    grantId: str(claims[GRANT_CLAIM]),
    ...(groups ? { groups: Object.freeze([...groups]) } : {}),
  });
}
