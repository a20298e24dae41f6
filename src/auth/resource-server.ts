/**
 * The gateway as an OAuth 2.1 resource server (MCP authorization, 2025-11-25):
 * Protected Resource Metadata (RFC 9728), bearer challenges (RFC 6750 §3),
 * and the scope each request needs.
 * https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization
 */
import { GatehouseError } from '../errors.ts';
import type { Principal, TokenVerifier } from './principal.ts';
import { TokenError } from './principal.ts';

export interface ResourceServerOptions {
  mode: 'embedded' | 'external' | 'none';
  /** The exact public URL of /mcp: the `resource` and the expected token audience. */
  resource: string;
  /** Authorization server issuer(s) advertised in the metadata. */
  authorizationServers: string[];
  requiredScopes: string[];
  methodScopes: Record<string, string>;
  toolScopes: Record<string, string>;
  verifier: TokenVerifier | undefined;
}

/** The principal of every request when auth.mode is none (development only). */
export const ANONYMOUS: Principal = Object.freeze({
  agent: 'anonymous',
  user: undefined,
  subject: 'anonymous',
  actors: [],
  tenant: undefined,
  tokenId: undefined,
  issuer: 'none',
  scopes: new Set<string>(),
  authMethod: 'none',
  expiresAt: Number.POSITIVE_INFINITY,
});

/** Quotes a value for an auth-param (RFC 7235 §2.1 quoted-string). */
function q(v: string): string {
  return `"${v.replace(/["\\]/g, '\\$&')}"`;
}

export class ResourceServer {
  readonly mode: ResourceServerOptions['mode'];
  readonly resource: string;
  /** RFC 9728 §3.1: metadata URL with the resource path inserted after the well-known prefix. */
  readonly metadataUrl: string;
  private readonly toolRules: { test: RegExp; scope: string }[];

  constructor(private readonly opts: ResourceServerOptions) {
    this.mode = opts.mode;
    this.resource = opts.resource;
    const u = new URL(opts.resource);
    this.metadataUrl = `${u.origin}/.well-known/oauth-protected-resource${u.pathname === '/' ? '' : u.pathname}`;
    this.toolRules = Object.entries(opts.toolScopes).map(([pattern, scope]) => ({
      test: new RegExp(
        `^${pattern
          .split('*')
          .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      ),
      scope,
    }));
  }

  /** Protected Resource Metadata (RFC 9728 §2). */
  metadata(): Record<string, unknown> {
    return {
      resource: this.resource,
      authorization_servers: this.opts.authorizationServers,
      // Only scopes a client can usefully ask for (not every scope the AS knows).
      scopes_supported: this.scopesSupported(),
      bearer_methods_supported: ['header'],
      resource_name: 'Gatehouse MCP gateway',
    };
  }

  scopesSupported(): string[] {
    return [
      ...new Set([
        ...this.opts.requiredScopes,
        ...Object.values(this.opts.methodScopes),
        ...Object.values(this.opts.toolScopes),
      ]),
    ];
  }

  /**
   * RFC 6750 §3: "If the request lacks any authentication information, the
   * resource server SHOULD NOT include an error code". MCP 2025-11-25: the
   * challenge carries `resource_metadata` and SHOULD carry `scope`.
   */
  challenge(error?: 'invalid_token' | 'insufficient_scope', scopes?: string[], description?: string): string {
    const parts: string[] = [];
    if (error) parts.push(`error=${q(error)}`);
    parts.push(`scope=${q((scopes ?? this.opts.requiredScopes).join(' '))}`);
    parts.push(`resource_metadata=${q(this.metadataUrl)}`);
    if (description) parts.push(`error_description=${q(description)}`);
    return `Bearer ${parts.join(', ')}`;
  }

  /**
   * Validates the Authorization header. Every request, never cached past the token's expiry. A token in
   * the verified-token cache is answered synchronously (revocation checked all the same); anything
   * else is a promise. Throws (or rejects with) a GatehouseError.
   */
  authenticate(header: string | undefined): Principal | Promise<Principal> {
    if (this.mode === 'none') return ANONYMOUS;
    if (!header) {
      throw new GatehouseError('unauthorized', undefined, {
        headers: { 'www-authenticate': this.challenge() },
      });
    }
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (!m?.[1]) {
      throw new GatehouseError('invalid_token', 'the Authorization header is not a bearer token', {
        headers: {
          'www-authenticate': this.challenge('invalid_token', undefined, 'malformed authorization header'),
        },
      });
    }
    const verifier = this.opts.verifier;
    if (!verifier) throw new GatehouseError('auth_unavailable', undefined, { detail: 'no token verifier' });
    const token = m[1];
    try {
      const hit = verifier.cached?.(token);
      if (hit !== undefined) return hit;
    } catch (err) {
      throw this.refusal(err);
    }
    return verifier.verify(token).catch((err: unknown) => {
      throw this.refusal(err);
    });
  }

  /** The GatehouseError for a verifier's failure. */
  private refusal(err: unknown): GatehouseError {
    if (err instanceof TokenError && err.unavailable) {
      return new GatehouseError('auth_unavailable', undefined, { detail: err.reason });
    }
    const reason = err instanceof TokenError ? err.reason : 'token rejected';
    return new GatehouseError('invalid_token', undefined, {
      detail: reason,
      headers: { 'www-authenticate': this.challenge('invalid_token', undefined, reason) },
    });
  }

  /** Scopes a request needs: the required scopes, the method's, and the tool's for tools/call. */
  scopesFor(method: string, params: Record<string, unknown> | undefined): string[] {
    const needed = [...this.opts.requiredScopes];
    const forMethod = Object.hasOwn(this.opts.methodScopes, method)
      ? this.opts.methodScopes[method]
      : undefined;
    if (forMethod && !needed.includes(forMethod)) needed.push(forMethod);
    if (method === 'tools/call' && typeof params?.name === 'string') {
      const name = params.name;
      for (const rule of this.toolRules)
        if (rule.test.test(name) && !needed.includes(rule.scope)) needed.push(rule.scope);
    }
    return needed;
  }

  /** Throws insufficient_scope (HTTP 403, step-up) when the principal lacks a needed scope. */
  checkScopes(principal: Principal, method: string, params: Record<string, unknown> | undefined): void {
    if (this.mode === 'none') return;
    const needed = this.scopesFor(method, params);
    if (needed.every((s) => principal.scopes.has(s))) return;
    // Ask for what the client has plus what is missing, so the new token keeps working for everything else.
    const wanted = [...new Set([...principal.scopes, ...needed])].filter(
      (s) => this.scopesSupported().includes(s) || needed.includes(s),
    );
    throw new GatehouseError('insufficient_scope', undefined, {
      detail: `needs ${needed.join(' ')}`,
      headers: { 'www-authenticate': this.challenge('insufficient_scope', wanted) },
    });
  }
}
