/**
 * Who is calling: the delegated non-human identity behind every request.
 * Built from a verified access token (JWT or introspection), exposed to later
 * pipeline stages and to logs.
 */

/** How the token was validated. */
export type AuthMethod = 'jwt' | 'introspection' | 'none';

export interface Principal {
  /** The agent: the OAuth client the token was issued to (`client_id`, else `azp`). */
  readonly agent: string;
  /** The user the agent acts for (`sub`), absent when the token represents the client itself. */
  readonly user: string | undefined;
  /** Raw `sub` claim. */
  readonly subject: string;
  /** Delegation chain from nested `act` claims (RFC 8693 §4.1), the current actor first. */
  readonly actors: readonly string[];
  /** Tenant claim, when the issuer sets one. */
  readonly tenant: string | undefined;
  /** Token id (`jti`), for audit and revocation. */
  readonly tokenId: string | undefined;
  readonly issuer: string;
  readonly scopes: ReadonlySet<string>;
  readonly authMethod: AuthMethod;
  /** Token expiry, epoch seconds. */
  readonly expiresAt: number;
  /**
   * When the token was issued (`iat`), epoch seconds; undefined when the token has none. Revocation
   * by agent or user compares it (src/auth/revocation.ts); a token without it counts as issued before
   * every revocation.
   */
  readonly issuedAt?: number | undefined;
  /** The grant a task token is bound to (`gatehouse_grant` claim); undefined for ordinary tokens. */
  readonly grantId?: string;
  /**
   * The user's groups (the embedded AS's `groups` claim, mapped from the upstream identity provider);
   * policy sees each as a Role the user is in. Absent for tokens that carry none.
   */
  readonly groups?: readonly string[];
}

/** The JWT claim that binds a task token to its grant. */
export const GRANT_CLAIM = 'gatehouse_grant';

/** The claim the embedded AS puts a user's tenant in (and the default `auth.external.tenantClaim`). */
export const TENANT_CLAIM = 'tenant';

/** The claim the embedded AS puts a user's groups in (an array of strings). */
export const GROUPS_CLAIM = 'groups';

/** A stable key for binding sessions and caches to one principal (T10-11, T26). */
export function principalKey(p: Principal): string {
  return JSON.stringify([p.issuer, p.agent, p.user ?? null, p.tenant ?? null]);
}

/** Why a token was refused. `reason` is private (logs); clients get `invalid_token`. */
export class TokenError extends Error {
  constructor(
    readonly reason: string,
    /** True when the failure is on our side (keys or introspection unreachable): fail closed, but say so in logs. */
    readonly unavailable = false,
  ) {
    super(reason);
    this.name = 'TokenError';
  }
}

/** Validates bearer tokens. Implementations never cache a result past the token's expiry. */
export interface TokenVerifier {
  /** Resolves to the principal, or rejects with a TokenError. */
  verify(token: string): Promise<Principal>;
  /**
   * The fast path of {@link verify}, synchronous: the principal when the token is in the verified-token
   * cache and not revoked, undefined when only {@link verify} can tell (not cached, expired from the
   * cache, malformed); throws the TokenError {@link verify} would reject with (revoked).
   */
  cached?(token: string): Principal | undefined;
  close?(): Promise<void>;
}
