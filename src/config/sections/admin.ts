/** `admin`: the admin API and web console at /admin (docs/approvals.md, "Console"). */
import { z } from 'zod';
import { secretRef } from './auth.ts';

const principalList = z
  .array(z.string().min(1))
  .default([])
  .describe(
    'User names (the login subject), `role:<name>` for every user of policy.roles.users.<name>, or ' +
      '`group:<name>` for users whose login carries that group (admin.external.groupsClaim).',
  );

export const adminSection = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'Serve the console and /admin/api. It needs a login: the embedded authorization server (auth.mode ' +
          'embedded, an internal client is registered) or admin.external (auth.mode external). With auth.mode ' +
          'none, or external without admin.external, /admin answers 404.',
      ),
    admins: principalList.describe(
      'Who may use the console as admin: see grants, credential leases and blocks and the audit timeline, ' +
        'revoke grants and leases, lift blocks. Approvers (approvals.approvers) see and decide approval ' +
        'requests. User names, `role:<name>` (policy.roles.users) or `group:<name>` (login claim).',
    ),
    sessionTtlSec: z
      .number()
      .int()
      .min(60)
      .max(24 * 3600)
      .default(8 * 3600)
      .describe('Life of a console login (server-side session); after it, log in again.'),
    external: z
      .object({
        issuer: z
          .url()
          .optional()
          .describe('OpenID Connect issuer of the console login; default: auth.external.issuer.'),
        clientId: z.string().min(1).describe("The console's client_id at that issuer."),
        clientSecret: secretRef.describe(
          'Its client secret (client_secret_basic). Register <public URL>/admin/callback as redirect URI.',
        ),
        scope: z.string().default('openid').describe('Scopes asked for at login (space-separated).'),
        groupsClaim: z
          .string()
          .min(1)
          .default('groups')
          .describe('ID token claim (array of strings) that `group:<name>` entries match.'),
        allowInsecureHttp: z
          .boolean()
          .default(false)
          .describe('Development only: allow an http issuer (loopback tests).'),
      })
      .strict()
      .optional()
      .describe(
        'Console login with auth.mode external: authorization code + PKCE at this OpenID Connect issuer.',
      ),
  })
  .strict()
  .prefault({})
  .describe('The admin API and web console at /admin: its own login, roles, sessions (docs/approvals.md).');
