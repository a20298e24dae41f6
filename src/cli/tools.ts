/**
 * `gatehouse tools pending|diff|approve|reject`: the review queue of tool-definition pinning
 * (docs/sanitization.md, "Tool-definition pinning"). A tool whose definition is new (with
 * `pinning.newTools: quarantine`, or with scanner findings) or changed since it was pinned is hidden
 * and refused by the gateway until approved here. Decisions are written to the gateway's store; a
 * running gateway reads them within its poll interval (250 ms).
 *
 * - `approve`: the pending definition's hash becomes the pin (the earlier pin is kept as history).
 * - `reject`: the definition stays quarantined and is remembered as rejected, so seeing it again records
 *   nothing new; the pin is unchanged (if the upstream goes back to the approved definition, the tool
 *   works again), and a different definition is a new pending entry. A rejected one may still be approved.
 */
import { userInfo } from 'node:os';
import { definitionLabel, lineDiff, prettyDefinition as pretty } from '../definitions/diff.ts';
import type { DefinitionFinding, DefinitionRecord } from '../storage/types.ts';
import { duration, openExistingStorage, parseCli, printTable, STATE_OPTIONS } from './shared.ts';

export const TOOLS_USAGE = `  tools pending [--server S] [--json] [--data-dir DIR] [--config FILE]
        tool definitions waiting for approval (new or changed; rejected ones too), with scanner findings
  tools diff TOOL [--hash H] [--data-dir DIR] [--config FILE]
        the approved definition of TOOL (server__name; server#prompt:NAME,
        server#resource-template:URI_TEMPLATE, server#instructions) against the one waiting, and its findings
  tools approve TOOL [--hash H] [--by NAME] [--data-dir DIR] [--config FILE]
        make the waiting definition the pin: the tool is listed and callable again
  tools reject TOOL [--hash H] [--by NAME] [--data-dir DIR] [--config FILE]
        keep it quarantined (remembered as rejected; the earlier pin stays)
`;

const OPTIONS = {
  ...STATE_OPTIONS,
  json: { type: 'boolean', default: false },
  server: { type: 'string' },
  hash: { type: 'string' },
  by: { type: 'string' },
} as const;

/**
 * How a definition is named here: `server__name` for a tool (how the gateway namespaces by default),
 * `server#instructions` for a server's instructions (`#` is outside the tool-name charset).
 */
function exposed(r: DefinitionRecord): string {
  return definitionLabel(r);
}

function short(hash: string | undefined): string {
  return hash === undefined ? '-' : hash.slice(0, 12);
}

function findingLines(findings: readonly DefinitionFinding[], indent: string): string {
  return findings.map((f) => `${indent}${f.type} [${f.start},${f.end}) ${f.detail}\n`).join('');
}

/** Rows of `TOOL` (`server__name`, or a plain name with --server or on one server only). */
function rowsOf(
  all: readonly DefinitionRecord[],
  tool: string,
  server: string | undefined,
): DefinitionRecord[] {
  return all.filter(
    (r) =>
      (server === undefined || r.server === server) &&
      (exposed(r) === tool ||
        (r.kind === 'tool' && r.name === tool && (server !== undefined || !tool.includes('__')))),
  );
}

/** The review diff (src/definitions/diff.ts), shared with the console. */
export { lineDiff };

export async function toolsCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'pending' && verb !== 'diff' && verb !== 'approve' && verb !== 'reject') {
    process.stderr.write(`usage:\n${TOOLS_USAGE}`);
    return 2;
  }
  const { values, positionals } = parseCli(rest, OPTIONS);
  const tool = positionals[0];
  if (verb === 'pending' ? positionals.length !== 0 : positionals.length !== 1 || tool === undefined) {
    process.stderr.write(`usage:\n${TOOLS_USAGE}`);
    return 2;
  }
  const storage = openExistingStorage(values);
  try {
    const all = await storage.definitions.list(values.server === undefined ? {} : { server: values.server });
    const pinOf = (r: DefinitionRecord): DefinitionRecord | undefined =>
      all.find(
        (p) => p.status === 'pinned' && p.server === r.server && p.kind === r.kind && p.name === r.name,
      );
    if (verb === 'pending') {
      const waiting = all.filter((r) => r.status === 'pending' || r.status === 'rejected');
      if (values.json) {
        const out = waiting.map((r) => ({ ...r, tool: exposed(r), pinnedHash: pinOf(r)?.hash }));
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return 0;
      }
      const now = Date.now();
      printTable([
        ['TOOL', 'STATUS', 'PINNED', 'NEW', 'FINDINGS', 'SEEN'],
        ...waiting.map((r) => [
          exposed(r),
          r.status,
          short(pinOf(r)?.hash),
          short(r.hash),
          String(r.findings.length),
          `${duration(now - r.firstSeen)} ago`,
        ]),
      ]);
      for (const r of waiting)
        if (r.findings.length > 0) process.stdout.write(`${exposed(r)}:\n${findingLines(r.findings, '  ')}`);
      return 0;
    }
    const mine = rowsOf(all, tool as string, values.server);
    if (new Set(mine.map((r) => r.server)).size > 1) {
      process.stderr.write(`gatehouse tools ${verb}: \`${tool}\` is on several servers; add --server\n`);
      return 2;
    }
    const candidates = mine.filter(
      (r) =>
        (verb === 'approve'
          ? r.status === 'pending' || r.status === 'rejected'
          : r.status === 'pending' || (verb === 'diff' && r.status === 'rejected')) &&
        (values.hash === undefined || r.hash.startsWith(values.hash.toLowerCase())),
    );
    // Without --hash, only the one waiting definition (a rejected one must be named by its hash).
    const picked = values.hash === undefined ? candidates.filter((r) => r.status === 'pending') : candidates;
    const target = picked[0];
    if (target === undefined || picked.length > 1) {
      process.stderr.write(
        picked.length > 1
          ? `gatehouse tools ${verb}: several definitions of \`${tool}\` match; give a longer --hash\n`
          : `gatehouse tools ${verb}: no definition of \`${tool}\` waits for approval${values.hash ? ` with hash ${values.hash}` : ''}\n`,
      );
      return 1;
    }
    const pin = pinOf(target);
    if (verb === 'diff') {
      process.stdout.write(
        `${exposed(target)}: pinned ${pin ? pin.hash : '(none: never approved)'}\n` +
          `${' '.repeat(exposed(target).length)}  ${target.status.padEnd(7)}${target.hash}\n` +
          `--- pinned\n+++ ${target.status}\n` +
          lineDiff(pin ? pretty(pin.definition) : '', pretty(target.definition)),
      );
      process.stdout.write(
        target.findings.length > 0
          ? `findings (${target.findings.length}):\n${findingLines(target.findings, '  ')}`
          : 'findings: none\n',
      );
      return 0;
    }
    const by = values.by ?? `cli:${userInfo().username}`;
    const now = Date.now();
    const done =
      verb === 'approve'
        ? await storage.definitions.approve(target, by, now)
        : await storage.definitions.reject(target, by, now);
    if (!done) {
      process.stderr.write(
        `gatehouse tools ${verb}: \`${tool}\` changed meanwhile; run tools pending again\n`,
      );
      return 1;
    }
    process.stdout.write(
      verb === 'approve'
        ? `approved ${exposed(target)}: ${target.hash} is the pin (running gateways allow it within 250 ms; ` +
            'their sessions are told to list tools again)\n'
        : `rejected ${exposed(target)} ${target.hash}: it stays quarantined` +
            `${pin ? ` (the pin ${short(pin.hash)} is unchanged)` : ''}\n`,
    );
    return 0;
  } finally {
    await storage.close();
  }
}
