/**
 * `gatehouse start` (the gateway, or the embedded demo without --config) and
 * `gatehouse check-config FILE` (the config, its policies and the secrets it references).
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveSecret } from '../auth/as/clients.ts';
import { pokeOnce } from '../cluster/bus.ts';
import { ConfigError, formatProblems, loadConfigFile } from '../config/load.ts';
import { isolationNote } from '../config/schema.ts';
import { type RunningGateway, startGateway } from '../gateway.ts';
import { loadConfiguredPolicies } from '../policy/authorizer.ts';
import { PolicyLoadError } from '../policy/load.ts';
import { missingSecrets, referencedSecrets } from '../secrets/resolve.ts';
import { SqliteSecretRepo, secretsDbPath } from '../secrets/sqlite-repo.ts';
import { openConfiguredStorage } from '../storage/open.ts';
import { PostgresStorage } from '../storage/postgres/index.ts';
import { MIGRATIONS } from '../storage/postgres/migrations.ts';
import { DEMO_APPROVAL_TOOL, DEMO_APPROVER, demoConfig } from './demo.ts';
import { DEFAULT_DATA_DIR, openDataDir, parseCli } from './shared.ts';

/** Usage lines, for the top-level help. */
export const START_USAGE = `  start [--config FILE] [--host H] [--port N] [--data-dir DIR]
        run the gateway; without --config, the embedded demo
        (a demo upstream over stdio, embedded defaults)
  check-config FILE [--data-dir DIR] [--connect]
        validate a configuration file, its policies and the secrets it references; exit 1 with one
        problem per line (notes, such as a shared stdio process, go to stderr with exit 0);
        --connect also connects to the PostgreSQL store and checks its schema version, and to
        the Redis bus (bus.kind redis)
`;

/** Runs the gateway until SIGTERM/SIGINT; returns -1 (keep running) once it listens. */
export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
    },
    strict: true,
  });
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`gatehouse: --port must be an integer 0-65535, got \`${values.port}\`\n`);
      return 2;
    }
  }
  const dataDir = values['data-dir'];
  // ORDER: before the demo config reads (or generates) its client secret in the data dir; the
  // gateway checks again with its own logger and finds nothing left to repair.
  openDataDir(dataDir, process.stderr, { create: true });
  const config = values.config ? loadConfigFile(values.config) : demoConfig(dataDir);
  let gw: RunningGateway;
  try {
    gw = await startGateway({ config, dataDir, host: values.host, port });
  } catch (err) {
    // A gateway that cannot listen or open its store must not linger half-started (upstream processes,
    // timers and the store keep the event loop alive): say why and exit non-zero.
    if (err instanceof ConfigError)
      process.stderr.write(`${formatProblems(err.problems, values.config ?? '(demo)')}\n`);
    else
      process.stderr.write(`gatehouse: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  process.stdout.write(startBanner(gw, !values.config, dataDir));
  const stop = (signal: string): void => {
    process.stderr.write(`gatehouse: ${signal}, draining\n`);
    void gw.close().then(() => process.exit(0));
  };
  // Policies reload atomically: a bad file keeps the current set and says why.
  process.on('SIGHUP', () => {
    try {
      gw.reloadPolicies();
      process.stderr.write('gatehouse: SIGHUP, policies reloaded\n');
    } catch (err) {
      process.stderr.write(
        `gatehouse: SIGHUP, policies NOT reloaded (current set stays):\n${err instanceof Error ? err.message : String(err)}\n`,
      );
    }
  });
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return -1; // keep running
}

/** What `start` prints: where to connect and, for the demo, a first authenticated call. */
function startBanner(gw: RunningGateway, demo: boolean, dataDir: string): string {
  const mode = gw.config.auth.mode;
  const lines = [
    `Gatehouse ${demo ? '(embedded demo) ' : ''}is listening.`,
    `  MCP endpoint:   ${gw.url}`,
    `  upstreams:      ${[...gw.managers.keys()].join(', ')}`,
    `  authentication: ${mode === 'embedded' ? `embedded OAuth server, ${gw.origin}/.well-known/oauth-authorization-server` : mode}`,
    `  health:         ${gw.origin}/healthz  ${gw.origin}/readyz`,
  ];
  if (demo && mode === 'embedded') {
    const dd = dataDir === DEFAULT_DATA_DIR ? '' : ` --data-dir ${dataDir}`;
    lines.push(
      '',
      'First authenticated tool call (a headless agent with client credentials), in another terminal:',
      `  export GATEHOUSE_TOKEN=$(npx gatehouse token --client demo-agent --url ${gw.origin}${dd})`,
      `  npx gatehouse call ${gw.url} everything__echo '{"message":"hello"}'`,
      '',
      'Interactive MCP clients log in with OAuth; create a local user first:',
      `  npx gatehouse users add alice${dd}        (password from stdin)`,
      `  then point the client at ${gw.url} (e.g. npx mcp-remote ${gw.url})`,
      '',
      `A high-risk tool waits for a human (${DEMO_APPROVER} approves, never the agent itself):`,
      `  npx gatehouse call ${gw.url} ${DEMO_APPROVAL_TOOL} '{"data":"data:text/plain;base64,aGVsbG8="}'`,
      `  npx gatehouse approvals list${dd}`,
      `  npx gatehouse approvals approve ID --as ${DEMO_APPROVER} --reason 'checked the URL'${dd}`,
      `  or sign in as ${DEMO_APPROVER} at the console: ${gw.origin}/admin/`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Validates a config file; exit code 0 (ok), 1 (problems, one per line) or 2 (usage). */
export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { positionals, values } = parseCli(argv, {
    'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
    connect: { type: 'boolean', default: false },
  });
  const file = positionals[0];
  if (!file || positionals.length > 1) {
    process.stderr.write('usage: gatehouse check-config FILE [--data-dir DIR] [--connect]\n');
    return 2;
  }
  let config: ReturnType<typeof loadConfigFile>;
  try {
    config = loadConfigFile(file);
    // The policies the config names are part of it: parsed and validated against the schema too.
    loadConfiguredPolicies(config);
    // So are the secrets it references: they must exist in the store (names only; nothing is decrypted).
    if (referencedSecrets(config).size > 0) {
      const dir = values['data-dir'];
      let names = new Set<string>();
      openDataDir(dir, process.stderr, { create: false });
      if (existsSync(secretsDbPath(dir))) {
        const repo = new SqliteSecretRepo(secretsDbPath(dir));
        names = new Set((await repo.list()).map((i) => i.name));
        await repo.close();
      }
      const problems = missingSecrets(config, names);
      if (problems.length > 0) throw new ConfigError(problems);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${formatProblems(err.problems, file)}\n`);
      return 1;
    }
    if (err instanceof PolicyLoadError) {
      for (const p of err.problems) {
        const at = `${p.file}${p.line !== undefined ? `:${p.line}` : ''}`;
        process.stderr.write(`${at}: ${p.policyId ? `${p.policyId}: ` : ''}${p.message}\n`);
      }
      return 1;
    }
    throw err;
  }
  // Valid, but a trade-off the operator should have chosen knowingly: one line each, on stderr.
  for (const [name, u] of Object.entries(config.upstreams)) {
    if (u.type !== 'stdio') continue;
    const note = isolationNote(u.isolation);
    if (note)
      process.stderr.write(`${file}: upstreams.${name}.isolation: warning: ${u.isolation}: ${note}\n`);
  }
  if (values.connect && config.storage.kind === 'postgres') {
    const problem = await checkPostgres(config, values['data-dir']);
    if (problem) {
      process.stderr.write(`${file}: ${problem}\n`);
      return 1;
    }
  }
  const busProblem = await checkBus(config, values.connect);
  if (busProblem) {
    process.stderr.write(`${file}: ${busProblem}\n`);
    return 1;
  }
  process.stdout.write(`${file}: ok\n`);
  return 0;
}

/** The cluster secret can be read (and with --connect, Redis answers PING); the problem, if any. */
async function checkBus(
  config: ReturnType<typeof loadConfigFile>,
  connect: boolean,
): Promise<string | undefined> {
  const bus = config.bus;
  if (bus.kind !== 'redis' || bus.url === undefined || bus.secret === undefined) return undefined;
  try {
    if (resolveSecret(bus.secret, 'bus.secret').length < 32)
      return 'bus.secret: must be at least 32 characters';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  if (!connect) return undefined;
  try {
    const password = bus.password === undefined ? undefined : resolveSecret(bus.password, 'bus.password');
    await pokeOnce(bus.url, bus.prefix, [], password);
    return undefined;
  } catch (err) {
    return `bus.url: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** Connects to the configured PostgreSQL store and reads its schema version; the problem, if any. */
async function checkPostgres(
  config: ReturnType<typeof loadConfigFile>,
  dataDir: string,
): Promise<string | undefined> {
  const storage = openConfiguredStorage(config, dataDir, { onPoolError: () => {} });
  if (!(storage instanceof PostgresStorage)) return undefined;
  try {
    const v = await storage.schemaVersion();
    if (v < MIGRATIONS.length && config.storage.postgres.migrate === 'manual') {
      return `storage.postgres.migrate: schema \`${storage.schema}\` is at version ${v}, this build needs ${MIGRATIONS.length}: run \`gatehouse migrate\``;
    }
    return undefined;
  } catch (err) {
    return `storage.postgres.url: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await storage.close();
  }
}
