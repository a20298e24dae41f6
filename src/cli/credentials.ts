/**
 * `gatehouse credentials list|revoke|unblock`: the broker's leases (docs/credentials.md, "Leases").
 * Revocations and blocks are written to the gateway's store; a running gateway notices within its poll
 * interval (250 ms), cancels the calls in flight that use the lease and stops stdio processes holding it.
 */
import type { LeaseSelector } from '../storage/types.ts';
import { duration, LIST_REVOKE_OPTIONS, openExistingStorage, parseCli, printTable } from './shared.ts';

export const CREDENTIALS_USAGE = `  credentials list [--json] [--data-dir DIR] [--config FILE]
        live credential leases (grant, service, kind, credential name) and blocks
  credentials revoke LEASE_ID | --service S | --grant G | --agent A | --user U | --secret NAME
        [--block] [--reason TEXT] [--data-dir DIR] [--config FILE]
        end leases now; --secret is a kill switch (no new lease uses the secret until unblocked),
        --block does the same for --service
  credentials unblock --secret NAME | --service S [--data-dir DIR] [--config FILE]
`;

export async function credentialsCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCli(rest, {
    ...LIST_REVOKE_OPTIONS,
    service: { type: 'string' },
    grant: { type: 'string' },
    secret: { type: 'string' },
    block: { type: 'boolean', default: false },
  });
  if (verb !== 'list' && verb !== 'revoke' && verb !== 'unblock') {
    process.stderr.write(`usage:\n${CREDENTIALS_USAGE}`);
    return 2;
  }
  const given: LeaseSelector[] = [];
  if (positionals[0] !== undefined) given.push({ id: positionals[0] });
  for (const key of ['service', 'grant', 'agent', 'user', 'secret'] as const) {
    const v = values[key];
    if (v !== undefined) given.push({ [key]: v } as LeaseSelector);
  }
  const selector = given[0];
  if (verb !== 'list' && (given.length !== 1 || positionals.length > 1 || !selector)) {
    process.stderr.write(`gatehouse credentials ${verb}: give exactly one target\n${CREDENTIALS_USAGE}`);
    return 2;
  }
  const storage = openExistingStorage(values);
  try {
    const now = Date.now();
    const reason = values.reason ?? 'revoked by operator';
    if (verb === 'unblock') {
      const target = selector as LeaseSelector;
      if (!('secret' in target) && !('service' in target)) {
        process.stderr.write('gatehouse credentials unblock: give --secret or --service\n');
        return 2;
      }
      const [kind, name] =
        'secret' in target ? (['secret', target.secret] as const) : (['service', target.service] as const);
      const lifted = await storage.leases.unblock(kind, name);
      process.stdout.write(lifted ? `unblocked ${kind} ${name}\n` : `${kind} ${name} was not blocked\n`);
      return lifted ? 0 : 1;
    }
    if (verb === 'revoke') {
      const target = selector as LeaseSelector;
      let blocked: string | undefined;
      if ('secret' in target || ('service' in target && values.block)) {
        const [kind, name] =
          'secret' in target
            ? (['secret', target.secret] as const)
            : (['service', (target as { service: string }).service] as const);
        await storage.leases.block({ kind, name, reason, createdAt: now });
        blocked = `${kind} ${name} is blocked: no new lease uses it until \`gatehouse credentials unblock --${kind} ${name}\``;
      } else if (values.block) {
        process.stderr.write(
          'gatehouse credentials revoke: --block goes with --service (--secret always blocks)\n',
        );
        return 2;
      }
      const ids = await storage.leases.end(target, reason, now);
      process.stdout.write(
        `revoked ${ids.length} lease(s)${ids.length ? ':' : ''}\n${ids.map((id) => `  ${id}\n`).join('')}`,
      );
      if (blocked) process.stdout.write(`${blocked}\n`);
      return ids.length > 0 || blocked ? 0 : 1;
    }
    const live = await storage.leases.listLive(now);
    const blocks = await storage.leases.blocks();
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ leases: live, blocks }, null, 2)}\n`);
      return 0;
    }
    printTable([
      ['LEASE', 'SERVICE', 'KIND', 'CREDENTIAL', 'GRANT', 'PRINCIPAL', 'AGE', 'EXPIRES IN'],
      ...live.map((l) => [
        l.id,
        l.service,
        l.kind,
        l.credential,
        l.grantId,
        l.user ? `${l.agent} for ${l.user}` : l.agent,
        duration(now - l.createdAt),
        duration(l.expiresAt - now),
      ]),
    ]);
    for (const b of blocks) process.stdout.write(`blocked: ${b.kind} ${b.name} (${b.reason})\n`);
    return 0;
  } finally {
    await storage.close();
  }
}
