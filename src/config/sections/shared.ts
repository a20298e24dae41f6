/**
 * Value references shared by several config sections: a `{ secret }` from the store, a `{ credential }`
 * leased from the broker, and the literal-or-reference union upstream env and headers accept.
 */
import { z } from 'zod';

export const secretValue = z
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

export const CREDENTIAL_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

export const credentialValue = z
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
export const configValue = z.union([z.string(), secretValue, credentialValue]);
