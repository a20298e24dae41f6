/**
 * `gatehouse approvals list|show|approve|deny`: the CLI channel for approval requests
 * (docs/approvals.md). Decisions are written to the gateway's store (first decision wins); a running
 * gateway notices within 250 ms, records the decision in the audit log with the approver and channel
 * (`cli:<os user>`), and releases or refuses the held call. Who may decide comes from the config's
 * `approvals.approvers` (pass --config); the approver is --as NAME, else the OS user name.
 */
import { userInfo } from 'node:os';
import { decideApproval } from '../approvals/decide.ts';
import { parseConfig } from '../config/load.ts';
import type { ApprovalRecord } from '../storage/types.ts';
import { visible } from '../util/visible.ts';
import { demoConfig } from './demo.ts';
import {
  type CliIo,
  configFor,
  duration,
  instant,
  openExistingStorage,
  PROCESS_IO,
  parseCli,
  printTable,
  STATE_OPTIONS,
} from './shared.ts';

export const APPROVALS_USAGE = `  approvals list [--all] [--json] [--data-dir DIR] [--config FILE]
        approval requests waiting for a decision (--all: every state, newest first)
  approvals show ID [--json] [--data-dir DIR] [--config FILE]
        one request in full: requester, grant, tool, definition hash, policies, arguments
  approvals approve|deny ID [--reason TEXT] [--as NAME] [--data-dir DIR] [--config FILE]
        decide a request as NAME (default: the OS user), who must be in approvals.approvers (of
        FILE; without --config, the embedded demo's) and not the requester; a running gateway
        releases or refuses the held call within 250 ms
`;

const OPTIONS = {
  ...STATE_OPTIONS,
  json: { type: 'boolean', default: false },
  all: { type: 'boolean', default: false },
  reason: { type: 'string' },
  as: { type: 'string' },
} as const;

/** Text with hidden characters made visible (re-exported: src/util/visible.ts). */
export { visible };

function who(r: ApprovalRecord): string {
  return r.user ? `${r.agent} for ${r.user}` : r.agent;
}

function details(r: ApprovalRecord, now: number): string {
  let args: string;
  try {
    args = JSON.stringify(JSON.parse(r.arguments), null, 2);
  } catch {
    args = r.arguments;
  }
  const lines: [string, string][] = [
    ['id', r.id],
    ['state', r.state],
    ['requested by', who(r)],
    ['tenant', r.tenant ?? '-'],
    ['delegation', r.actors.join(' <- ') || '-'],
    ['owner', r.owner ?? '-'],
    ['grant', r.grantId],
    ['session', r.sessionId],
    ['tool', `${r.tool} (server ${r.server})`],
    ['definition', `sha256:${r.definitionHash}`],
    ['policies', r.policies.join(', ')],
    ['attributes', JSON.stringify(r.attributes)],
    ['requested', instant(r.createdAt)],
    ['expires', `${instant(r.expiresAt)} (in ${duration(r.expiresAt - now)})`],
    [
      'decided',
      r.decision
        ? `${r.decision} by ${r.decidedBy ?? '-'} via ${r.channel ?? '-'} at ${instant(r.decidedAt)}`
        : '-',
    ],
    ['reason', r.reason ?? '-'],
    ['consumed', instant(r.consumedAt)],
    ['binding', `sha256:${r.digest}`],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  return `${lines.map(([k, v]) => `${k.padEnd(width)}  ${visible(v)}`).join('\n')}\narguments:\n${visible(args)}\n`;
}

export async function approvalsCommand(argv: string[], io: CliIo = PROCESS_IO): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCli(rest, OPTIONS);
  const verbs = ['list', 'show', 'approve', 'deny'];
  if (verb === undefined || !verbs.includes(verb) || (verb !== 'list' && positionals.length !== 1)) {
    io.stderr.write(`usage:\n${APPROVALS_USAGE}`);
    return 2;
  }
  const id = positionals[0] ?? '';
  const storage = openExistingStorage(values, io.stderr);
  try {
    const now = Date.now();
    if (verb === 'list') {
      const rows = await storage.approvals.list(values.all ? {} : { states: ['pending'] });
      if (values.json) {
        io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return 0;
      }
      printTable(
        [
          ['ID', 'STATE', 'REQUESTED BY', 'TOOL', 'GRANT', 'AGE', 'EXPIRES IN'],
          ...rows.map((r) => [
            r.id,
            r.state,
            visible(who(r)),
            visible(r.tool),
            r.grantId,
            duration(now - r.createdAt),
            r.state === 'pending' || r.state === 'approved' ? duration(r.expiresAt - now) : '-',
          ]),
        ],
        io.stdout,
      );
      return 0;
    }
    if (verb === 'show') {
      const r = await storage.approvals.get(id);
      if (r === undefined) {
        io.stderr.write(`gatehouse approvals show: no approval request \`${visible(id)}\`\n`);
        return 1;
      }
      io.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : details(r, now));
      return 0;
    }
    const osUser = userInfo().username;
    const approver = values.as ?? osUser;
    // Without --config, the approvers of the embedded demo (`gatehouse start` without --config).
    const config = values.config ? configFor(values.config) : parseConfig(demoConfig());
    const res = await decideApproval(storage.approvals, config, {
      id,
      approver,
      state: verb === 'approve' ? 'approved' : 'denied',
      reason: values.reason,
      channel: `cli:${osUser}`,
      now,
    });
    if (!res.ok) {
      io.stderr.write(`gatehouse approvals ${verb}: ${visible(res.message)}\n`);
      return 1;
    }
    io.stdout.write(
      `${res.record.decision} ${res.record.id} as ${approver} (a running gateway acts on it within 250 ms)\n`,
    );
    return 0;
  } finally {
    await storage.close();
  }
}
