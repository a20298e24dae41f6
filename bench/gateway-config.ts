// The gateway config every bench target shares: authentication on (the embedded authorization server
// and a pre-registered client-credentials agent), policy on, the echo tool trusted on first sight
// (the default, quarantine, would hold it for an admin), one upstream `echo`.

/** The bench agent (an obviously fake secret). */
export const BENCH_CLIENT = { id: 'bench-agent', secret: 'fake-bench-secret-not-a-real-credential' };

/** The YAML of a bench gateway; `extra` lines go before `upstreams:`, `upstreamYaml` is the echo upstream's body. */
export function benchGatewayYaml(
  policyFile: string,
  upstreamYaml: string,
  extra: readonly string[] = [],
): string {
  return [
    'logging:',
    '  level: warn',
    'auth:',
    '  mode: embedded',
    '  embedded:',
    '    accessTokenTtlSec: 3600',
    '    clients:',
    `      - clientId: ${BENCH_CLIENT.id}`,
    `        clientSecret: ${BENCH_CLIENT.secret}`,
    '        grantTypes: [client_credentials]',
    // Policy on, as in production: every call is decided (Cedar, per-grant cache) and its arguments validated.
    'policy:',
    `  files: [${JSON.stringify(policyFile)}]`,
    '  tools: { echo__echo: { risk: low, sideEffect: none } }',
    'pinning: { newTools: trust }',
    ...extra,
    'upstreams:',
    '  echo:',
    upstreamYaml,
  ].join('\n');
}

/** The `gatehouse start` arguments of a bench gateway (after the Node flags and the CLI path). */
export function startArgs(config: string, port: number, dataDir: string): string[] {
  return ['start', '--config', config, '--port', String(port), '--data-dir', dataDir];
}
