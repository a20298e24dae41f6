/**
 * The `scope` and `resource` of an authorization request, in every variant a client may send.
 *
 * RFC 6749 §3.3: "If the client omits the scope parameter when requesting authorization, the
 * authorization server MUST either process the request using a pre-defined default value or fail
 * the request indicating an invalid scope." MCP 2026-07-28 ("Scope Selection Strategy") has clients
 * omit `scope` when the protected resource metadata lists no `scopes_supported`, and the conformance
 * suite's `authorization-code-grant` sends none: so an omitted scope means the resource's default
 * (`auth.requiredScopes`, the scopes of the 401 challenge), never "nothing" (which oidc-provider
 * would answer with `access_denied` after the user logged in).
 *
 * oidc-provider has already refused, before this runs: a repeated `scope` parameter
 * (`invalid_request`, RFC 6749 §3.1 "MUST NOT be included more than once"), a scope that breaks the
 * RFC 6749 §3.3 grammar (control characters, `"`, `\`, doubled or edge spaces: `invalid_scope`), and
 * a scope outside a pre-registered client's `scope` (`invalid_scope`). It has also dropped duplicate
 * tokens and `offline_access` without `prompt=consent` (OIDC Core §11).
 */

const OFFLINE = 'offline_access';

export interface ScopeRules {
  /** Every scope this server issues (OIDC scopes and the resource's). */
  known: ReadonlySet<string>;
  /** The resource's default scopes, used when the request names none (auth.requiredScopes). */
  defaults: readonly string[];
}

/** The scope to process the request with, or `invalid_scope` with the description and the scope refused. */
export type ScopeDecision = { scope: string } | { error: string; refused: string };

/**
 * The scope to process the request with, or why it is `invalid_scope`.
 * - absent or empty: the defaults;
 * - only `offline_access`: the defaults plus `offline_access` (a refresh token is not a resource scope);
 * - unknown scopes next to known ones are dropped (RFC 6749 §3.3 "MAY fully or partially ignore";
 *   the token response's `scope` says what was issued);
 * - only unknown scopes: `invalid_scope` ("The requested scope is invalid, unknown, or malformed",
 *   RFC 6749 §4.1.2.1), rather than silently widening the request to the defaults;
 * - no defaults apply (none configured, or outside the client's registered `scope`): `invalid_scope`.
 */
export function decideScope(
  requested: string | undefined,
  rules: ScopeRules,
  clientScope?: string,
): ScopeDecision {
  const tokens = [...new Set((requested ?? '').split(' ').filter((s) => s !== ''))];
  const known = tokens.filter((s) => rules.known.has(s));
  if (tokens.length > 0 && known.length === 0) {
    return { error: `unknown scope ${tokens.join(' ')}`, refused: tokens.join(' ') };
  }
  if (known.some((s) => s !== OFFLINE)) return { scope: known.join(' ') };
  const allowed = clientScope === undefined ? undefined : new Set(clientScope.split(' '));
  const defaults = rules.defaults.filter((s) => allowed === undefined || allowed.has(s));
  if (defaults.length === 0) {
    return {
      error: 'no scope requested and no default scope applies to this client; name a scope',
      refused: rules.defaults.join(' '),
    };
  }
  return { scope: [...defaults, ...known].join(' ') };
}

/**
 * Whether a resource indicator names our resource. MCP 2026-07-28 ("Canonical Server URI"): "While the
 * canonical form uses lowercase scheme and host components, implementations SHOULD accept uppercase
 * scheme and host components". So both are compared after WHATWG URL parsing (which lowercases scheme
 * and host and drops a default port); path, query and trailing slash must match exactly.
 */
export function isOurResource(indicator: string, resource: string): boolean {
  if (indicator === resource) return true;
  const a = URL.parse(indicator);
  const b = URL.parse(resource);
  // Only the scheme and authority may be spelled differently: the rest must be ours byte for byte
  // (no dot segments, percent-encoding variants, fragment or trailing slash).
  const rest = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*(.*)$/s.exec(indicator)?.[1];
  if (!a || !b || rest === undefined || a.username !== '' || a.password !== '') return false;
  return a.origin === b.origin && rest === `${b.pathname}${b.search}`;
}
