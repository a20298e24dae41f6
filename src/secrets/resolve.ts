/**
 * Secret references in upstream config (`env: { TOKEN: { secret: github-pat } }`,
 * `headers: { Authorization: { secret: slack-bot, format: "Bearer {}" } }`) are resolved from the
 * secret store once at start-up; every value read is registered with the leak guard, so it is
 * redacted wherever it would reach the agent. The config itself never holds a secret value.
 */
import { ConfigError } from '../config/load.ts';
import type { ResolvedUpstreamConfig, SecretValue, UpstreamConfig } from '../config/schema.ts';
import { SecretError, type SecretStore } from './store.ts';

type Values = Record<string, string | SecretValue>;

function valuesOf(u: UpstreamConfig): ['env' | 'headers', Values] {
  return u.type === 'stdio' ? ['env', u.env] : ['headers', u.headers];
}

/** Names of the secrets the upstreams reference. */
export function referencedSecrets(upstreams: Record<string, UpstreamConfig>): Set<string> {
  const names = new Set<string>();
  for (const u of Object.values(upstreams)) {
    for (const v of Object.values(valuesOf(u)[1])) if (typeof v !== 'string') names.add(v.secret);
  }
  return names;
}

/** One problem per reference to a secret that is not among `available` (for `check-config`). */
export function missingSecrets(
  upstreams: Record<string, UpstreamConfig>,
  available: ReadonlySet<string>,
): { path: string; line: undefined; message: string }[] {
  const problems: { path: string; line: undefined; message: string }[] = [];
  for (const [name, u] of Object.entries(upstreams)) {
    const [key, values] = valuesOf(u);
    for (const [k, v] of Object.entries(values)) {
      if (typeof v !== 'string' && !available.has(v.secret)) {
        problems.push({
          path: `upstreams.${name}.${key}.${k}`,
          line: undefined,
          message: `secret \`${v.secret}\` is not in the store (gatehouse secrets set ${v.secret})`,
        });
      }
    }
  }
  return problems;
}

/**
 * The upstreams with every secret reference replaced by its formatted value. A missing secret is a
 * ConfigError naming the key (`upstreams.<name>.env.<KEY>`), never a value.
 */
export async function resolveUpstreams(
  upstreams: Record<string, UpstreamConfig>,
  store: SecretStore | undefined,
): Promise<Record<string, ResolvedUpstreamConfig>> {
  const out: Record<string, ResolvedUpstreamConfig> = {};
  const problems: { path: string; line: undefined; message: string }[] = [];
  for (const [name, u] of Object.entries(upstreams)) {
    const [key, values] = valuesOf(u);
    const resolved: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) {
      if (typeof v === 'string') {
        resolved[k] = v;
        continue;
      }
      try {
        if (!store) throw new SecretError('not_found', `no secret \`${v.secret}\``);
        resolved[k] = v.format.replace('{}', (await store.get(v.secret)).toString('utf8'));
      } catch (err) {
        if (!(err instanceof SecretError)) throw err;
        problems.push({
          path: `upstreams.${name}.${key}.${k}`,
          line: undefined,
          message:
            err.code === 'not_found'
              ? `secret \`${v.secret}\` is not in the store (gatehouse secrets set ${v.secret})`
              : `secret \`${v.secret}\` cannot be read: ${err.message}`,
        });
      }
    }
    out[name] = { ...u, [key]: resolved } as ResolvedUpstreamConfig;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}
