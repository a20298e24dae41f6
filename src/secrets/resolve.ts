/**
 * The secrets a config names (upstream `{ secret }` values, static credentials, OAuth client secrets
 * and subject tokens), by the key that names them: the credential broker checks them at start-up and
 * `check-config` reports those missing from the store. Names only; nothing is decrypted.
 */
import type { GatehouseConfig } from '../config/schema.ts';

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

/** Every secret the config names, with the key that names it. */
export function secretPaths(config: GatehouseConfig): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, u] of Object.entries(config.upstreams)) {
    const key = u.type === 'stdio' ? 'env' : 'headers';
    for (const [k, v] of Object.entries(u.type === 'stdio' ? u.env : u.headers))
      if (typeof v !== 'string' && 'secret' in v) out.push([`upstreams.${name}.${key}.${k}`, v.secret]);
  }
  for (const [name, c] of Object.entries(config.credentials)) {
    if (c.type === 'static') out.push([`credentials.${name}.secret`, c.secret]);
    else {
      if (c.clientSecret) out.push([`credentials.${name}.clientSecret`, c.clientSecret.secret]);
      if (c.type === 'oauth' && c.subjectSecret)
        out.push([`credentials.${name}.subjectSecret`, c.subjectSecret.secret]);
    }
  }
  return out;
}
