/**
 * `check-config`'s view of the secrets a config names (upstream `{ secret }` values, static
 * credentials, OAuth client secrets and subject tokens): which are missing from the store. Names only;
 * nothing is decrypted. The gateway itself reads them through the credential broker.
 */
import type { GatehouseConfig } from '../config/schema.ts';
import { secretPaths } from '../credentials/broker.ts';

/** Names of the secrets the config references. */
export function referencedSecrets(config: GatehouseConfig): Set<string> {
  return new Set(secretPaths(config).map(([, name]) => name));
}

/** One problem per reference to a secret that is not among `available`. */
export function missingSecrets(
  config: GatehouseConfig,
  available: ReadonlySet<string>,
): { path: string; line: undefined; message: string }[] {
  return secretPaths(config)
    .filter(([, name]) => !available.has(name))
    .map(([path, name]) => ({
      path,
      line: undefined,
      message: `secret \`${name}\` is not in the store (gatehouse secrets set ${name})`,
    }));
}
