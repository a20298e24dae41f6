/**
 * `gatehouse grants list [--json]` and `gatehouse grants revoke ID | --agent A | --user U`.
 * Revocation is written to the gateway's store in one transaction: the grants end, and the tokens
 * behind them go on the token revocation list (--agent/--user: every token of that agent or user
 * issued until now; ID: the token that opened a session grant). A running gateway notices within its
 * poll interval (250 ms): tokens refused, next message refused, in-flight calls cancelled, streams
 * closed, stdio upstream processes stopped.
 */
import {
  type RevocationTarget,
  revocationLifetimes,
  revocationRecord,
  tokensOf,
} from '../auth/revocation.ts';
import type { GrantRecord, GrantSelector } from '../storage/types.ts';
import {
  configFor,
  duration,
  instant,
  LIST_REVOKE_OPTIONS,
  openExistingStorage,
  parseCli,
  printTable,
} from './shared.ts';

export const GRANTS_USAGE = `  grants list [--json] [--data-dir DIR] [--config FILE]
        live grants: principal, owner, tools, age, expiry
  grants revoke ID | --agent CLIENT_ID | --user SUBJECT [--reason TEXT] [--data-dir DIR] [--config FILE]
        end grants now (a running gateway cancels their calls and stops their upstream processes)
        and revoke the tokens behind them (--agent/--user: all issued until now; ID: the session's token)
`;

function describe(t: RevocationTarget): string {
  switch (t.kind) {
    case 'jti':
      return `the token ${t.jti}`;
    case 'agent':
      return `tokens of agent ${t.agent}`;
    case 'user':
      return `tokens of user ${t.user}`;
    case 'agent+user':
      return `tokens of agent ${t.agent}${t.user === undefined ? '' : ` for user ${t.user}`}`;
  }
}

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
      const sel = selector;
      const reason = values.reason ?? 'revoked by operator';
      const lifetimes = revocationLifetimes(configFor(values.config));
      const { ids, tokens } = await storage.transaction(async (tx) => {
        const ended = await tx.grants.end(sel, reason, now);
        const target = await tokensOf(tx, sel);
        if (target) await tx.revocations.add(revocationRecord(target, { now, reason, lifetimes }));
        return { ids: ended, tokens: target };
      });
      if (ids.length === 0 && !tokens) {
        process.stderr.write('gatehouse grants revoke: no live grant matched\n');
        return 1;
      }
      process.stdout.write(
        `revoked ${ids.length} grant(s)${ids.length ? ':' : ''}\n${ids.map((id) => `  ${id}\n`).join('')}`,
      );
      if (tokens) {
        process.stdout.write(
          `revoked ${describe(tokens)} issued until ${instant(Math.floor(now / 1000) * 1000)} ` +
            '(running gateways refuse them within 250 ms)\n',
        );
      }
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
