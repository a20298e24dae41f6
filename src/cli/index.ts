#!/usr/bin/env -S node --max-semi-space-size=64
/**
 * The `gatehouse` command: dispatches to one verb group per file in src/cli/ (shared helpers in
 * ./shared.ts). Verbs that touch state take --data-dir (default ./.gatehouse) and --config.
 */
import { ConfigError } from '../config/load.ts';
import { createLogger } from '../log.ts';
import { StoreError } from '../storage/errors.ts';
import { DataDirError } from '../util/data-dir.ts';
import { APPROVALS_USAGE, approvalsCommand } from './approvals.ts';
import { AUDIT_USAGE, auditCommand } from './audit.ts';
import { AUTH_USAGE, authCommand } from './auth.ts';
import { CALL_USAGE, callCommand } from './call.ts';
import { CREDENTIALS_USAGE, credentialsCommand } from './credentials.ts';
import { GRANTS_USAGE, grantsCommand } from './grants.ts';
import { MIGRATE_USAGE, migrateCommand } from './migrate.ts';
import { POLICY_USAGE, policyCommand } from './policy.ts';
import { SCAN_USAGE, scanCommand } from './scan.ts';
import { SECRETS_USAGE, secretsCommand } from './secrets.ts';
import { checkConfigCommand, START_USAGE, startCommand } from './start.ts';
import { TOOLS_USAGE, toolsCommand } from './tools.ts';

const USAGE = `usage: gatehouse <command> [options]

commands:
${START_USAGE}${AUTH_USAGE}${CALL_USAGE}${GRANTS_USAGE}${APPROVALS_USAGE}${SECRETS_USAGE}${CREDENTIALS_USAGE}${AUDIT_USAGE}${POLICY_USAGE}${SCAN_USAGE}${TOOLS_USAGE}${MIGRATE_USAGE}  help  show this text
`;

/** Runs one command line; returns the exit code, or -1 when the process keeps running (start). */
export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'start':
        return await startCommand(rest);
      case 'check-config':
        return await checkConfigCommand(rest);
      case 'users':
      case 'token':
        return await authCommand(verb, rest);
      case 'call':
        return await callCommand(rest);
      case 'audit':
        return await auditCommand(rest);
      case 'grants':
        return await grantsCommand(rest);
      case 'approvals':
        return await approvalsCommand(rest);
      case 'policy':
        return policyCommand(rest);
      case 'scan':
        return await scanCommand(rest);
      case 'secrets':
        return await secretsCommand(rest);
      case 'credentials':
        return await credentialsCommand(rest);
      case 'tools':
        return await toolsCommand(rest);
      case 'migrate':
        return await migrateCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return verb === undefined ? 2 : 0;
      default:
        process.stderr.write(`gatehouse: unknown command \`${verb}\`\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    // A store that cannot be used (unreachable, schema behind): the message names the key or the verb to run.
    if (err instanceof StoreError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      return 1;
    }
    // A data dir that cannot be made owner-only: the message says which entry and what to do.
    if (err instanceof DataDirError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      return 1;
    }
    if (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`gatehouse: ${err.message}\n${USAGE}`);
      return 2;
    }
    createLogger('error').fatal({ err }, 'gatehouse failed');
    process.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
