/**
 * `gatehouse grants list [--json]` and `gatehouse grants revoke ID | --agent A | --user U`.
 * Revocation is written to the gateway's store; a running gateway notices within its poll interval
 * (250 ms) and ends the grants: next message refused, in-flight calls cancelled, streams closed, stdio
 * upstream processes stopped.
 */
import type { GrantRecord, GrantSelector } from '../storage/types.ts';
import { duration, LIST_REVOKE_OPTIONS, openExistingStorage, parseCli, printTable } from './shared.ts';

export const GRANTS_USAGE = `  grants list [--json] [--data-dir DIR] [--config FILE]
        live grants: principal, owner, tools, age, expiry
  grants revoke ID | --agent CLIENT_ID | --user SUBJECT [--reason TEXT] [--data-dir DIR] [--config FILE]
        end grants now (a running gateway cancels their calls and stops their upstream processes)
`;

function row(g: GrantRecord, now: number): string[] {
  const who = g.user ? `${g.agent} for ${g.user}` : g.agent;
  const tools = g.tools === undefined ? '(policy)' : g.tools.join(',');
  return [g.id, g.kind, who, g.owner ?? '-', tools, duration(now - g.createdAt), duration(g.expiresAt - now)];
}

export async function grantsCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCli(rest, LIST_REVOKE_OPTIONS);
  if (verb !== 'list' && verb !== 'revoke') {
    process.stderr.write(`usage:\n${GRANTS_USAGE}`);
    return 2;
  }
  let selector: GrantSelector | undefined;
  if (verb === 'revoke') {
    const given = [positionals[0], values.agent, values.user].filter((v) => v !== undefined);
    if (given.length !== 1 || positionals.length > 1) {
      process.stderr.write('gatehouse grants revoke: give exactly one of ID, --agent or --user\n');
      return 2;
    }
    selector = positionals[0]
      ? { id: positionals[0] }
      : values.agent
        ? { agent: values.agent }
        : { user: values.user as string };
  }
  const storage = openExistingStorage(values);
  try {
    const now = Date.now();
    if (selector) {
      const ids = await storage.grants.end(selector, values.reason ?? 'revoked by operator', now);
      if (ids.length === 0) {
        process.stderr.write('gatehouse grants revoke: no live grant matched\n');
        return 1;
      }
      process.stdout.write(`revoked ${ids.length} grant(s):\n${ids.map((id) => `  ${id}\n`).join('')}`);
      return 0;
    }
    const live = await storage.grants.listLive(now);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(live, null, 2)}\n`);
      return 0;
    }
    printTable([
      ['ID', 'KIND', 'PRINCIPAL', 'OWNER', 'TOOLS', 'AGE', 'EXPIRES IN'],
      ...live.map((g) => row(g, now)),
    ]);
    return 0;
  } finally {
    await storage.close();
  }
}
