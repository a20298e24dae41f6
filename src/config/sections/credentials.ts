/** `credentials` (what the broker leases to upstreams) and `broker` (the credential broker itself). */
import { z } from 'zod';
import { CREDENTIAL_NAME, secretValue } from './shared.ts';

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

export const credentialSchema = z.discriminatedUnion('type', [
  staticCredential,
  mintedCredential,
  userCredential,
]);

export const credentialsSection = z
  .record(
    z.string().regex(CREDENTIAL_NAME, 'credential names use a-z, 0-9 and "-" (1-32 chars)'),
    credentialSchema,
  )
  .default({})
  .describe(
    'Credentials the broker leases to upstreams per grant, keyed by service name (docs/credentials.md).',
  );

export const brokerSection = z
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
  .describe('The credential broker.');
