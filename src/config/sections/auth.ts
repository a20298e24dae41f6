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
        federation: z
          .object({
            issuer: z.url().describe('Upstream OIDC provider for user login.'),
            clientId: z.string().min(1).describe("The gateway's client_id at that provider."),
            clientSecret: secretRef.optional().describe("The gateway's client secret at that provider."),
          })
          .strict()
          .optional()
          .describe('Log users in through an upstream OIDC provider (in addition to local users).'),
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
