/**
 * The one configuration schema. Every key is documented here with
 * `.describe()`; `docs/config.md` is generated from this file
 * (`npm run docs`) and a test fails when it drifts. Objects are strict:
 * unknown keys are errors, so a typo never silently falls back to a default.
 */
import { z } from 'zod';

/** Upstream server names become tool-name prefixes (`<name>__<tool>`), so they use a narrow charset. */
export const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;

const namespaceKey = z
  .boolean()
  .default(true)
  .describe(
    'Prefix the names of this server\'s tools, prompts, resources and resource templates with "<name>__". ' +
      'At most one upstream may set false; its names are exposed unchanged.',
  );

const timeoutKey = z
  .number()
  .int()
  .positive()
  .optional()
  .describe('Per-call timeout for this upstream in milliseconds; defaults to limits.callTimeoutMs.');

const trustedKey = z
  .boolean()
  .default(false)
  .describe(
    "Believe this server's tool annotations (readOnlyHint, destructiveHint) in policy decisions. " +
      'Untrusted servers get the pessimistic MCP defaults whatever they claim.',
  );

const secretValue = z
  .object({
    secret: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'secret names use a-z, 0-9, ".", "_" and "-"')
      .describe('Name of a secret in the store (`gatehouse secrets set NAME`).'),
    format: z
      .string()
      .regex(/\{\}/, 'format must contain {} where the secret goes')
      .default('{}')
      .describe('How the value is built, e.g. "Bearer {}".'),
  })
  .strict()
  .describe(
    'A value taken from the secret store when the upstream is started (never written in the config).',
  );

const CREDENTIAL_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

const credentialValue = z
  .object({
    credential: z
      .string()
      .regex(CREDENTIAL_NAME, 'credential names use a-z, 0-9 and "-" (1-32 chars)')
      .describe('Name of an entry of `credentials` (a static key, a minted token or a per-user connection).'),
    format: z
      .string()
      .regex(/\{\}/, 'format must contain {} where the credential goes')
      .default('{}')
      .describe('How the value is built, e.g. "Bearer {}".'),
  })
  .strict()
  .describe('A credential leased from the broker for each grant (docs/credentials.md, "Leases").');

/** A configured value: literal text, a stored secret, or a brokered credential. */
const configValue = z.union([z.string(), secretValue, credentialValue]);

/** A stored secret named in `credentials` (client secrets, subject tokens). */
const storedSecret = z
  .object({ secret: secretValue.shape.secret })
  .strict()
  .describe('A secret in the store, by name.');

const endpointKeys = {
  issuer: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe('Authorization server issuer; its RFC 8414 / OIDC metadata gives the endpoints not set here.'),
  tokenEndpoint: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe('Token endpoint (overrides metadata).'),
  revocationEndpoint: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe('RFC 7009 revocation endpoint; tokens are revoked there when their lease ends.'),
  clientId: z.string().min(1).describe("The gateway's client id at that authorization server."),
  clientSecret: storedSecret.optional().describe("The gateway's client secret there (from the store)."),
  scope: z.string().optional().describe('Scope requested for every lease: the narrowest the tools need.'),
  resource: z.url().optional().describe('RFC 8707 resource the tokens are for (the API the upstream calls).'),
  maxLifetimeSec: z
    .number()
    .int()
    .min(30)
    .default(900)
    .describe('Longest a minted token is used; it is renewed before, and never outlives its grant.'),
  revokeOnEnd: z
    .boolean()
    .default(true)
    .describe(
      "Revoke a lease's token at the revocation endpoint (RFC 7009) when the lease ends. Turn off for " +
        'servers that revoke the whole grant, refresh token included, with one access token.',
    ),
};

const staticCredential = z
  .object({
    type: z.literal('static').describe('An API key that cannot be narrowed, injected for each grant.'),
    secret: secretValue.shape.secret,
  })
  .strict();

const mintedCredential = z
  .object({
    type: z.literal('oauth').describe('A short-lived token minted per lease from an upstream OAuth server.'),
    grant: z
      .enum(['refresh_token', 'token_exchange', 'client_credentials'])
      .describe(
        'How tokens are minted: refresh_token (subjectSecret holds a refresh token), token_exchange ' +
          '(RFC 8693 with subjectSecret as subject_token) or client_credentials.',
      ),
    subjectSecret: storedSecret
      .optional()
      .describe('The long-lived token the broker keeps (refresh_token, token_exchange).'),
    subjectTokenType: z
      .enum(['access_token', 'refresh_token', 'jwt'])
      .default('access_token')
      .describe('RFC 8693 subject_token_type of subjectSecret (token_exchange).'),
    ...endpointKeys,
  })
  .strict();

const userCredential = z
  .object({
    type: z
      .literal('oauth-user')
      .describe('A per-user OAuth connection: each user authorizes the gateway once (code + PKCE).'),
    authorizationEndpoint: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('Authorization endpoint (overrides metadata).'),
    ...endpointKeys,
  })
  .strict();

const credentialSchema = z.discriminatedUnion('type', [staticCredential, mintedCredential, userCredential]);

const stdioUpstream = z
  .object({
    type: z
      .literal('stdio')
      .describe('Spawn a local MCP server speaking newline-delimited JSON-RPC on stdin/stdout.'),
    command: z.string().min(1).describe('Executable to run (resolved on PATH).'),
    args: z.array(z.string()).default([]).describe('Arguments passed to the command.'),
    env: z
      .record(z.string(), configValue)
      .default({})
      .describe(
        "Extra environment variables for the process. The gateway's own environment is not inherited, except PATH, HOME, LOGNAME, USER, SHELL, TERM, LANG and TMPDIR.",
      ),
    cwd: z
      .string()
      .optional()
      .describe('Working directory of the process; defaults to the gateway working directory.'),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
    trusted: trustedKey,
    pool: z
      .object({
        warm: z
          .number()
          .int()
          .min(0)
          .max(16)
          .default(1)
          .describe(
            'Processes spawned ahead of time, not yet assigned to a session, so a new session does not wait for a cold start.',
          ),
        max: z
          .number()
          .int()
          .min(1)
          .default(64)
          .describe(
            'Maximum live processes for this upstream (assigned plus warm). Sessions beyond it are refused with capacity_exceeded.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Process pool. A process is never shared between sessions.'),
  })
  .strict();

const httpUpstream = z
  .object({
    type: z.literal('http').describe('Connect to an MCP server over Streamable HTTP.'),
    url: z.url({ protocol: /^https?$/ }).describe('The upstream MCP endpoint URL (http or https).'),
    headers: z
      .record(z.string(), configValue)
      .default({})
      .describe(
        "Headers sent with every upstream request: literal, { secret, format } or { credential, format }. The client's Authorization header is never forwarded.",
      ),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
    trusted: trustedKey,
  })
  .strict();

const sseUpstream = z
  .object({
    type: z
      .literal('sse')
      .describe('Connect to an MCP server over the legacy HTTP+SSE transport (protocol 2024-11-05).'),
    url: z.url({ protocol: /^https?$/ }).describe('The upstream SSE endpoint URL.'),
    headers: z
      .record(z.string(), configValue)
      .default({})
      .describe(
        'Headers sent with every upstream request: literal, { secret, format } or { credential, format }.',
      ),
    namespace: namespaceKey,
    timeoutMs: timeoutKey,
    trusted: trustedKey,
  })
  .strict();

export const upstreamSchema = z.discriminatedUnion('type', [stdioUpstream, httpUpstream, sseUpstream]);

const secretRef = z
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

const preRegisteredClient = z
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

const authSchema = z
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

const toolAttributes = z
  .object({
    risk: z
      .string()
      .min(1)
      .optional()
      .describe('Operator-assigned risk, e.g. low | medium | high | critical.'),
    sideEffect: z
      .string()
      .min(1)
      .optional()
      .describe('Operator-assigned side-effect class, e.g. none | read | write | destructive | external.'),
    owner: z.string().min(1).optional().describe('Team or person that owns the tool.'),
  })
  .strict();

const policySchema = z
  .object({
    files: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Cedar policy files (*.cedar) or directories of them, relative to the config file. ' +
          'Deny by default: with no policies every tool call is denied. Reloaded on SIGHUP.',
      ),
    roles: z
      .object({
        agents: z
          .record(z.string(), z.array(z.string().min(1)))
          .default({})
          .describe('Roles of agents (OAuth client ids): Gatehouse::Role parents of the Agent entity.'),
        users: z
          .record(z.string(), z.array(z.string().min(1)))
          .default({})
          .describe('Roles of users (token subjects): Gatehouse::Role parents of the User entity.'),
      })
      .strict()
      .prefault({})
      .describe('Role memberships used by policies (principal in Gatehouse::Role::"…").'),
    tools: z
      .record(z.string().min(1), toolAttributes)
      .default({})
      .describe(
        'Operator-assigned tool attributes by exposed tool name or glob with "*" (e.g. "github__delete_*"); ' +
          'the first matching key in file order wins. Missing attributes are "unknown".',
      ),
  })
  .strict()
  .prefault({})
  .describe('Least privilege: Cedar policies decide every list, call, read and prompt (docs/policy.md).');

const grantsSchema = z
  .object({
    maxLifetimeSec: z
      .number()
      .int()
      .positive()
      .default(8 * 3600)
      .describe('Longest a grant lives; a task grant also ends when its task token expires.'),
    idleTimeoutSec: z
      .number()
      .int()
      .positive()
      .default(30 * 60)
      .describe(
        'A grant with no traffic for this long ends (its sessions close, its upstream processes stop).',
      ),
    requireOwner: z
      .boolean()
      .default(false)
      .describe(
        'Refuse grants for agents without an owner (set true in production): every agent identity has a ' +
          'named person or team responsible for it.',
      ),
    owners: z
      .record(z.string(), z.string().min(1))
      .default({})
      .describe(
        'Owner per agent (OAuth client id), for agents registered elsewhere; pre-registered clients may set owner instead.',
      ),
  })
  .strict()
  .prefault({})
  .describe('Grants: the unit of privilege, one per session or task token (docs/policy.md).');

export const configSchema = z
  .object({
    server: z
      .object({
        host: z
          .string()
          .default('127.0.0.1')
          .describe(
            'Address to bind. Loopback by default; binding elsewhere exposes the gateway to the network.',
          ),
        port: z.number().int().min(0).max(65535).default(8080).describe('TCP port; 0 picks a free port.'),
        publicUrl: z
          .url({ protocol: /^https?$/ })
          .optional()
          .describe(
            'External base URL when the gateway sits behind a proxy (e.g. https://mcp.example.com). Its host is allowed in Host and its origin in Origin.',
          ),
        allowedOrigins: z
          .array(z.string())
          .default([])
          .describe(
            'Extra browser origins allowed to call /mcp (exact match, e.g. https://app.example.com). Requests without Origin are allowed.',
          ),
        allowedHosts: z
          .array(z.string())
          .default([])
          .describe(
            'Extra Host header values accepted (DNS-rebinding protection). Loopback names and the bind address are always accepted.',
          ),
      })
      .strict()
      .prefault({})
      .describe('The front HTTP listener.'),
    limits: z
      .object({
        maxRequestBytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024)
          .describe('Largest accepted request body in bytes.'),
        maxResultBytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1024 * 1024)
          .describe(
            'Largest upstream message (result or notification) in bytes; larger results become result_too_large.',
          ),
        callTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(60_000)
          .describe('Time an upstream has to answer a request; progress notifications restart the clock.'),
        initializeTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(30_000)
          .describe('Time an upstream has to answer initialize (a cold stdio process may need seconds).'),
        maxCallMs: z
          .number()
          .int()
          .positive()
          .default(10 * 60_000)
          .describe(
            'Longest a call may run in total, however much progress it reports (an endless stream is cut).',
          ),
        sessionIdleTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(30 * 60_000)
          .describe(
            'A session with no client traffic for this long is closed and its upstream processes stopped.',
          ),
        maxSessions: z.number().int().positive().default(1000).describe('Maximum concurrent sessions.'),
        drainTimeoutMs: z
          .number()
          .int()
          .nonnegative()
          .default(10_000)
          .describe('On SIGTERM, how long in-flight calls may take to finish before they are cancelled.'),
      })
      .strict()
      .prefault({})
      .describe('Size and time limits.'),
    upstreams: z
      .record(
        z.string().regex(UPSTREAM_NAME, 'upstream names use letters, digits and "-" (1-32 chars)'),
        upstreamSchema,
      )
      .refine((u) => Object.keys(u).length > 0, 'at least one upstream is required')
      .refine(
        (u) => Object.values(u).filter((x) => !x.namespace).length <= 1,
        'at most one upstream may set namespace: false',
      )
      .describe('MCP servers behind the gateway, keyed by name.'),
    credentials: z
      .record(
        z.string().regex(CREDENTIAL_NAME, 'credential names use a-z, 0-9 and "-" (1-32 chars)'),
        credentialSchema,
      )
      .default({})
      .describe(
        'Credentials the broker leases to upstreams per grant, keyed by service name (docs/credentials.md).',
      ),
    broker: z
      .object({
        allowLoopbackHttp: z
          .boolean()
          .default(false)
          .describe(
            'Development only: let the broker reach OAuth servers over plain http on loopback. Private and ' +
              'public http targets stay refused.',
          ),
        connectLinkTtlSec: z
          .number()
          .int()
          .min(60)
          .max(3600)
          .default(600)
          .describe('How long a link to connect a per-user account stays valid (single use).'),
      })
      .strict()
      .prefault({})
      .describe('The credential broker.'),
    auth: authSchema,
    policy: policySchema,
    grants: grantsSchema,
    audit: z
      .object({
        failClosedForReads: z
          .boolean()
          .default(false)
          .describe(
            'When the audit store cannot write, refuse reads too (resources/read, prompts/get, completion). ' +
              'Tool calls are always refused (fail closed); lists are served either way.',
          ),
        synchronous: z
          .enum(['normal', 'full'])
          .default('normal')
          .describe(
            'When a record counts as written. normal: handed to the OS with write() before the call is ' +
              'forwarded (survives a gateway crash or kill -9, not power loss or an OS crash); full: also ' +
              'fdatasync-ed, once per group of records (survives power loss; slower). Both fsync before each checkpoint.',
          ),
        segmentBytes: z
          .number()
          .int()
          .min(1)
          .default(16 * 1024 * 1024)
          .describe('Start a new audit segment file (data-dir/audit/) once the open one is this large.'),
        checkpointEvery: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe('Write a signed checkpoint at least every N records.'),
        checkpointIntervalSec: z
          .number()
          .int()
          .min(0)
          .default(10)
          .describe('... and at least this often while records arrive (0 disables the timer).'),
        retention: z
          .object({
            maxAgeDays: z
              .number()
              .positive()
              .optional()
              .describe('Delete records older than this many days.'),
            maxRecords: z.number().int().positive().optional().describe('Keep at most this many records.'),
          })
          .strict()
          .prefault({})
          .describe('Pruning, hourly: a signed checkpoint is written first, so what remains still verifies.'),
      })
      .strict()
      .prefault({})
      .describe('The tamper-evident audit log (docs/audit.md).'),
    storage: z
      .object({
        sqlite: z
          .object({
            path: z
              .string()
              .optional()
              .describe('SQLite database file; defaults to <data-dir>/gatehouse.db.'),
          })
          .strict()
          .prefault({})
          .describe('Embedded SQLite storage (the default).'),
      })
      .strict()
      .prefault({})
      .describe('Where state that outlives a request is kept.'),
    observability: z
      .object({
        tracing: z
          .boolean()
          .default(false)
          .describe(
            'Emit OpenTelemetry spans (one per call, a child per audited stage) through @opentelemetry/api; ' +
              'register an SDK yourself (node --import). Off: no span work at all.',
          ),
        otlpLogsEndpoint: z
          .url()
          .optional()
          .describe(
            'Export every written audit event as an OpenTelemetry log record over OTLP/HTTP (JSON) to this collector URL.',
          ),
        otlpHeaders: z
          .record(z.string(), z.string())
          .optional()
          .describe('Extra headers of the OTLP export requests (e.g. an API key).'),
      })
      .strict()
      .prefault({})
      .describe('Traces and OTLP export of audit events (docs/audit.md). Metrics are always at /metrics.'),
    logging: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .describe('Minimum log level (JSON logs on stderr).'),
      })
      .strict()
      .prefault({})
      .describe('Structured logging.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Cross-references the schema cannot express: every { credential } names an entry, and each entry
    // has what its kind needs.
    for (const [name, u] of Object.entries(c.upstreams)) {
      const [key, values] = u.type === 'stdio' ? ['env', u.env] : ['headers', u.headers];
      for (const [k, v] of Object.entries(values)) {
        if (typeof v === 'string' || !('credential' in v)) continue;
        const path = ['upstreams', name, key, k];
        const cred = Object.hasOwn(c.credentials, v.credential) ? c.credentials[v.credential] : undefined;
        if (!cred)
          ctx.addIssue({ code: 'custom', path, message: `no credential \`${v.credential}\` in credentials` });
        else if (u.type === 'stdio' && cred.type !== 'static')
          ctx.addIssue({
            code: 'custom',
            path,
            message: `credential \`${v.credential}\` is ${cred.type}: a stdio environment is fixed at spawn, so only static credentials go there (use an http upstream's headers)`,
          });
      }
    }
    for (const [name, cred] of Object.entries(c.credentials)) {
      const at = (key: string): (string | number)[] => ['credentials', name, key];
      if (cred.type === 'static') continue;
      if (!cred.issuer && !cred.tokenEndpoint)
        ctx.addIssue({ code: 'custom', path: at('issuer'), message: 'set issuer or tokenEndpoint' });
      if (cred.type === 'oauth' && cred.grant !== 'client_credentials' && !cred.subjectSecret)
        ctx.addIssue({
          code: 'custom',
          path: at('subjectSecret'),
          message: `required with grant ${cred.grant}`,
        });
      if (cred.type === 'oauth' && cred.grant === 'client_credentials' && !cred.clientSecret)
        ctx.addIssue({
          code: 'custom',
          path: at('clientSecret'),
          message: 'required with grant client_credentials',
        });
      if (cred.type === 'oauth-user') {
        if (!cred.issuer && !cred.authorizationEndpoint)
          ctx.addIssue({
            code: 'custom',
            path: at('authorizationEndpoint'),
            message: 'set issuer or authorizationEndpoint',
          });
        if (c.auth.mode !== 'embedded')
          ctx.addIssue({
            code: 'custom',
            path: at('type'),
            message:
              'per-user connections need auth.mode embedded (the gateway verifies who opens the connect link)',
          });
      }
    }
  });

/** Validated configuration with every default applied. */
export type GatehouseConfig = z.output<typeof configSchema>;
/** Configuration as written by a user (defaults optional). */
export type GatehouseConfigInput = z.input<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type StdioUpstreamConfig = Extract<UpstreamConfig, { type: 'stdio' }>;
export type HttpUpstreamConfig = Extract<UpstreamConfig, { type: 'http' }>;
export type SseUpstreamConfig = Extract<UpstreamConfig, { type: 'sse' }>;
export type SecretValue = z.output<typeof secretValue>;
export type CredentialValue = z.output<typeof credentialValue>;
export type CredentialConfig = z.output<typeof credentialSchema>;

/** An upstream config whose secret references were replaced by their values (at start-up). */
export type ResolvedUpstreamConfig = UpstreamConfig extends infer U
  ? U extends { env: unknown }
    ? Omit<U, 'env'> & { env: Record<string, string> }
    : U extends { headers: unknown }
      ? Omit<U, 'headers'> & { headers: Record<string, string> }
      : U
  : never;
export type AuthConfig = GatehouseConfig['auth'];
export type EmbeddedAuthConfig = AuthConfig['embedded'];
export type PolicyConfig = GatehouseConfig['policy'];
export type GrantsConfig = GatehouseConfig['grants'];
export type PreRegisteredClient = z.output<typeof preRegisteredClient>;
export type SecretRef = z.output<typeof secretRef>;
