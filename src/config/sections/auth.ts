/** `auth`: authentication at the MCP boundary (resource server, embedded or external authorization server). */
import { z } from 'zod';

export const secretRef = z
  .union([
    z.string().min(1).describe('A literal value (avoid for production secrets).'),
    z
      .object({ env: z.string().min(1).describe('Read from this environment variable at start-up.') })
      .strict(),
    z
      .object({
        file: z.string().min(1).describe('Read from this file at start-up (trailing newline trimmed).'),
      })
      .strict(),
  ])
  .describe('A secret value: a literal, { env: NAME } or { file: PATH }.');

export const preRegisteredClient = z
  .object({
    clientId: z.string().min(1).describe('The client_id.'),
    clientName: z.string().optional().describe('Shown on the consent page.'),
    clientSecret: secretRef
      .optional()
      .describe('For confidential clients (client_secret_basic / client_secret_post).'),
    jwksUri: z.url().optional().describe('For private_key_jwt client authentication.'),
    grantTypes: z
      .array(
        z.enum([
          'authorization_code',
          'refresh_token',
          'client_credentials',
          'urn:ietf:params:oauth:grant-type:token-exchange',
        ]),
      )
      .default(['authorization_code', 'refresh_token'])
      .describe('Grant types the client may use.'),
    redirectUris: z
      .array(z.string())
      .default([])
      .describe('Exact redirect URIs (loopback http or https only).'),
    scope: z
      .string()
      .optional()
      .describe('Space-separated scopes the client may request; defaults to every scope.'),
    owner: z.string().optional().describe('Person or team responsible for this agent identity.'),
  })
  .strict();

/** `auth.embedded.login`: who may log in at the embedded AS and how failed logins are throttled. */
export const loginSection = z
  .object({
    localUsers: z
      .boolean()
      .default(true)
      .describe(
        'Offer the username/password form for local users (`gatehouse users add`). Turn off when every user logs in through auth.embedded.upstreamIdp.',
      ),
    maxFailuresPerUser: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe(
        'Failed logins for one username (as typed, whether or not it exists) within windowSec before it is locked out.',
      ),
    maxFailuresPerAddress: z
      .number()
      .int()
      .min(0)
      .default(20)
      .describe(
        "Failed logins from one client address (the socket peer; IPv6 by /64) within windowSec before it is locked out; 0 turns the per-address limit off. Behind a reverse proxy every client has the proxy's address.",
      ),
    windowSec: z
      .number()
      .int()
      .min(1)
      .default(900)
      .describe(
        'Failures are forgotten after this many seconds without a new attempt (and after a lockout ends).',
      ),
    lockoutSec: z
      .number()
      .int()
      .min(1)
      .default(30)
      .describe('First lockout; every further failure after the limit doubles it (exponential backoff).'),
    maxLockoutSec: z.number().int().min(1).default(3600).describe('Longest lockout.'),
    maxTrackedKeys: z
      .number()
      .int()
      .min(100)
      .default(10_000)
      .describe(
        'Usernames and addresses tracked at most (each kept as a hash); past it, expired and then least recently used entries are evicted.',
      ),
  })
  .strict()
  .prefault({})
  .describe(
    'Logins at the embedded authorization server: local users, throttling of failed logins (also of client secrets at the token, introspection and revocation endpoints).',
  );

/** `auth.embedded.upstreamIdp`: user login delegated to the company's OpenID Connect provider. */
export const upstreamIdpSection = z
  .object({
    issuer: z
      .url()
      .describe(
        'Issuer of the OpenID Connect provider; its metadata is read from <issuer>/.well-known/openid-configuration.',
      ),
    name: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('Shown on the login page ("Sign in with <name>"); default: the issuer host.'),
    clientId: z.string().min(1).describe("The gateway's client_id at the provider."),
    clientSecret: secretRef
      .optional()
      .describe(
        "The gateway's client secret at the provider (client_secret_basic); omit for a public client (PKCE only).",
      ),
    scopes: z
      .array(z.string().min(1))
      .default(['openid', 'profile', 'email'])
      .refine((s) => s.includes('openid'), 'must include openid')
      .describe('Scopes asked for; must include openid.'),
    claims: z
      .object({
        username: z
          .string()
          .min(1)
          .default('preferred_username')
          .describe(
            "ID token claim that becomes the Gatehouse user name (the user is bound to the provider's iss and sub on first login).",
          ),
        tenant: z
          .string()
          .min(1)
          .optional()
          .describe('ID token claim that becomes the tenant (policy: Tenant).'),
        groups: z
          .string()
          .min(1)
          .optional()
          .describe("ID token claim (array of strings) whose values become the user's roles (policy: Role)."),
      })
      .strict()
      .prefault({})
      .describe('How ID token claims map to the Gatehouse user.'),
  })
  .strict()
  .optional()
  .describe(
    'Log users in through an OpenID Connect provider (authorization code + PKCE, ID token checked). Its redirect URI is <issuer of the gateway>/oauth/idp/callback. With allowInsecureMetadataUrls (loopback only) it may be http on loopback.',
  );

export const authSection = z
  .object({
    mode: z
      .enum(['embedded', 'external', 'none'])
      .default('embedded')
      .describe(
        'embedded: the built-in authorization server issues tokens; external: trust auth.external.issuer; ' +
          'none: no authentication (development only, refused unless bound to loopback).',
      ),
    requiredScopes: z
      .array(z.string().min(1))
      .default(['mcp'])
      .describe('Scopes every request needs (advertised in the 401 challenge and in scopes_supported).'),
    methodScopes: z
      .record(z.string().min(1), z.string().min(1))
      .default({})
      .describe(
        'Extra scope needed per JSON-RPC method (e.g. "resources/read": "mcp:resources"). ' +
          'A request without it gets 403 insufficient_scope (step-up).',
      ),
    toolScopes: z
      .record(z.string(), z.string().min(1))
      .default({})
      .describe(
        'Extra scope needed per tool: keys are exposed tool names or globs with "*" (e.g. "github__delete_*"), ' +
          'values a scope. A call without it gets 403 insufficient_scope (step-up).',
      ),
    embedded: z
      .object({
        accessTokenTtlSec: z
          .number()
          .int()
          .min(30)
          .max(3600)
          .default(300)
          .describe('Lifetime of access tokens (JWT).'),
        refreshTokenTtlSec: z
          .number()
          .int()
          .positive()
          .default(14 * 24 * 3600)
          .describe('Lifetime of refresh tokens (rotated on every use for public clients).'),
        dynamicRegistration: z
          .boolean()
          .default(true)
          .describe('Allow RFC 7591 dynamic client registration.'),
        clientIdMetadataDocuments: z
          .boolean()
          .default(true)
          .describe(
            'Accept HTTPS URLs as client_id (OAuth Client ID Metadata Documents), fetched with SSRF protection.',
          ),
        allowInsecureMetadataUrls: z
          .boolean()
          .default(false)
          .describe(
            'Development only: allow http:// and loopback/private addresses for client metadata documents.',
          ),
        devAutoConsent: z
          .boolean()
          .default(false)
          .describe(
            'Development only: skip the consent page. Refused unless the gateway is bound to loopback.',
          ),
        clients: z.array(preRegisteredClient).default([]).describe('Pre-registered clients.'),
        login: loginSection,
        upstreamIdp: upstreamIdpSection,
      })
      .strict()
      .prefault({})
      .describe('The embedded authorization server (auth.mode: embedded).'),
    external: z
      .object({
        issuer: z
          .url()
          .describe('Issuer URL of the external OAuth/OIDC provider; discovery is used for its metadata.'),
        audience: z
          .string()
          .optional()
          .describe('Expected token audience; defaults to the public URL of /mcp.'),
        jwksUri: z.url().optional().describe('Overrides the discovered jwks_uri.'),
        tenantClaim: z.string().default('tenant').describe('Claim that carries the tenant.'),
        jwksCooldownSec: z
          .number()
          .min(0)
          .default(30)
          .describe('Minimum seconds between JWKS refetches triggered by an unknown key id (rate limit).'),
        maxTokenLifetimeSec: z
          .number()
          .int()
          .positive()
          .default(24 * 3600)
          .describe(
            'Longest access-token lifetime accepted from the IdP (exp - iat); longer-lived tokens are refused. ' +
              'Revocations by agent or user are kept this long (docs/auth.md, "Revocation").',
          ),
        introspection: z
          .object({
            endpoint: z.url().optional().describe('Overrides the discovered introspection_endpoint.'),
            clientId: z.string().min(1).describe('Client id for introspection (RFC 7662).'),
            clientSecret: secretRef.describe('Client secret for introspection.'),
          })
          .strict()
          .optional()
          .describe('Opaque-token introspection (RFC 7662).'),
      })
      .strict()
      .optional()
      .describe('Settings for auth.mode: external.'),
  })
  .strict()
  .prefault({})
  .describe('Authentication at the MCP boundary (OAuth 2.1 resource server).');
