/**
 * The one configuration schema, assembled here from one module per top-level section
 * (`src/config/sections/`; value references used by several sections are in `sections/shared.ts`).
 * Every key is documented with `.describe()` where it is defined; `docs/config.md` is generated from
 * this schema (`npm run docs`) and a test fails when it drifts. Objects are strict: unknown keys are
 * errors, so a typo never silently falls back to a default. Checks that look at several sections are
 * the superRefine below.
 */
import { z } from 'zod';
import { adminSection } from './sections/admin.ts';
import { approvalsSection } from './sections/approvals.ts';
import { auditSection } from './sections/audit.ts';
import { authSection, type preRegisteredClient, type secretRef } from './sections/auth.ts';
import { busSection } from './sections/bus.ts';
import { brokerSection, type credentialSchema, credentialsSection } from './sections/credentials.ts';
import { grantsSection } from './sections/grants.ts';
import { limitsSection } from './sections/limits.ts';
import { loggingSection, observabilitySection } from './sections/observability.ts';
import { pinningSection } from './sections/pinning.ts';
import { policySection } from './sections/policy.ts';
import { sanitizeSection } from './sections/sanitize.ts';
import { serverSection } from './sections/server.ts';
import type { credentialValue, secretValue } from './sections/shared.ts';
import { storageSection } from './sections/storage.ts';
import { type upstreamSchema, upstreamsSection } from './sections/upstreams.ts';

export { isolationNote, UPSTREAM_NAME, upstreamSchema } from './sections/upstreams.ts';

export const configSchema = z
  .object({
    // Key order is the order of docs/config.md.
    server: serverSection,
    limits: limitsSection,
    upstreams: upstreamsSection,
    credentials: credentialsSection,
    broker: brokerSection,
    auth: authSection,
    policy: policySection,
    grants: grantsSection,
    approvals: approvalsSection,
    admin: adminSection,
    sanitize: sanitizeSection,
    pinning: pinningSection,
    audit: auditSection,
    storage: storageSection,
    bus: busSection,
    observability: observabilitySection,
    logging: loggingSection,
  })
  .strict()
  .superRefine((c, ctx) => {
    // Cluster mode: every replica must read and write one store (docs/deploy.md).
    if (c.bus.kind === 'redis' && c.storage.kind !== 'postgres')
      ctx.addIssue({
        code: 'custom',
        path: ['bus', 'kind'],
        message: 'redis (cluster mode) needs storage.kind postgres: every replica must share one store',
      });
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
    for (const [name, u] of Object.entries(c.upstreams)) {
      if (u.type !== 'stdio' || u.isolation === 'session') continue;
      // A shared process holds one environment, fixed at spawn, for every session on it. A static key is
      // the same value for every grant, so sharing it gives no session more than it already has. Minted
      // and per-user tokens are leased per grant (and revoked when it ends): in a process that outlives
      // the grant, one grant's token would serve the sessions of others, of other users too under shared.
      for (const [k, v] of Object.entries(u.env)) {
        if (typeof v === 'string' || !('credential' in v)) continue;
        const cred = Object.hasOwn(c.credentials, v.credential) ? c.credentials[v.credential] : undefined;
        if (!cred || cred.type === 'static') continue;
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', name, 'isolation'],
          message:
            u.isolation === 'shared'
              ? `isolation shared puts every session on one process, so env.${k} (credential \`${v.credential}\`, ${cred.type}) would serve every agent and user: only static credentials (or none) may be shared; use isolation session`
              : `isolation principal shares one process among the sessions of an agent+user, whose grants each lease their own ${cred.type} token for env.${k} (credential \`${v.credential}\`): only static credentials (or none) may be shared; use isolation session`,
        });
      }
    }
    for (const [i, a] of c.approvals.approvers.entries()) {
      if (!a.startsWith('role:')) continue;
      const role = a.slice('role:'.length);
      if (!Object.hasOwn(c.policy.roles.users, role))
        ctx.addIssue({
          code: 'custom',
          path: ['approvals', 'approvers', i],
          message: `no role \`${role}\` in policy.roles.users`,
        });
    }
    for (const name of Object.keys(c.pinning.upstreams)) {
      if (!Object.hasOwn(c.upstreams, name))
        ctx.addIssue({
          code: 'custom',
          path: ['pinning', 'upstreams', name],
          message: `no upstream \`${name}\``,
        });
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
export type ApprovalsConfig = GatehouseConfig['approvals'];
export type SanitizeConfig = GatehouseConfig['sanitize'];
export type PinningConfig = GatehouseConfig['pinning'];
export type PreRegisteredClient = z.output<typeof preRegisteredClient>;
export type SecretRef = z.output<typeof secretRef>;
