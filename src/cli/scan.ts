/**
 * `gatehouse scan [--kind result|definition] FILE.jsonl`: runs the result sanitisers over a JSON Lines
 * file and prints one JSON line per input record, in the input's order (format: src/sanitize/jsonl.ts).
 * For evaluation (`npm run eval:sanitize` uses the same library) and for operators tuning the
 * `sanitize` config: `--config` takes the profile from a gateway config (`--tool` picks a per-tool
 * override), `--threshold` overrides the injection threshold, `--pii` turns on the optional PII
 * profile. Reads `-` as stdin.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { type ScanKind, scanJsonLine } from '../sanitize/jsonl.ts';
import { ProfileResolver } from '../sanitize/profile.ts';
import { configFor, parseCli } from './shared.ts';

export const SCAN_USAGE = `  scan [--kind result|definition] [--config FILE] [--tool NAME] [--threshold N] [--pii] FILE.jsonl
        run the result sanitisers over JSON Lines ({"id","text"} per line; definitions may give
        {"id","definition":{...}}); prints {"id","findings":[{"type","start","end","detail"}],"score","action"}
        per line, in order (FILE - reads stdin); --pii turns on the optional PII profile (flag)
`;

export async function scanCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    kind: { type: 'string', default: 'result' },
    config: { type: 'string' },
    tool: { type: 'string' },
    threshold: { type: 'string' },
    pii: { type: 'boolean', default: false },
  });
  const kind = values.kind;
  const [file] = positionals;
  if ((kind !== 'result' && kind !== 'definition') || file === undefined || positionals.length !== 1) {
    process.stderr.write(`usage:\n${SCAN_USAGE}`);
    return 2;
  }
  const settings = configFor(values.config).sanitize;
  // The scan reports what the detectors see even where a config switched the stage off.
  const resolver = new ProfileResolver({ ...settings, enabled: true });
  let profile = resolver.profileFor(values.tool);
  if (values.threshold !== undefined) {
    const t = Number(values.threshold);
    if (!(t >= 0 && t <= 1)) {
      process.stderr.write('gatehouse: --threshold must be a number from 0 to 1\n');
      return 2;
    }
    profile = { ...profile, injectionThreshold: t };
  }
  // The optional PII profile (off by default): flag unless the config already chose an action.
  if (values.pii && profile.actions.pii === 'off')
    profile = { ...profile, actions: { ...profile.actions, pii: 'flag' } };
  const input = file === '-' ? process.stdin : createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let errors = 0;
  for await (const line of lines) {
    const out = scanJsonLine(line, kind as ScanKind, profile, resolver.caps);
    if (out === undefined) continue;
    if (out.action === 'error') errors++;
    if (!process.stdout.write(`${JSON.stringify(out)}\n`))
      await new Promise((r) => process.stdout.once('drain', r));
  }
  if (errors > 0) process.stderr.write(`gatehouse: ${errors} line(s) were not records (action "error")\n`);
  // Exit 0 all the same: every input line got its output line, and an evaluation harness reads them all.
  return 0;
}
