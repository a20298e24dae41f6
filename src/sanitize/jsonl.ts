/**
 * One line of `gatehouse scan`: a JSON Lines record in, one JSON record out (pure; the CLI reads and
 * writes). Input: `{"id": …, "text": "…"}`; with `--kind definition` also `{"id": …, "definition": {…}}`
 * (every text of a tool definition: name, description, schema property names, descriptions, enums,
 * defaults), and with `--kind result` also `{"id": …, "result": {…}}` (an MCP tool result).
 * Output: `{"id": …, "findings": [{"type", "start", "end", "detail"}], "score": …, "action": …}`.
 * `type` is the detector family (`control-chars`, `invisible-unicode`, `injection`, `secret`, `pii`,
 * `structure`, `definition`); `start`/`end` are UTF-16 offsets into the text (for `definition` and
 * `result` records, into the string named at the start of `detail`); `score` is the highest injection
 * score (0..1); `action` is what the profile does with the record (`none`, `flag`, `redact`, `wrap`,
 * `block`; `error` for a line that is not a record).
 */
import { definitionTexts } from './definition.ts';
import { type MessageFinding, scanMessage, scanText, type Verdict, verdictOf } from './index.ts';
import type { SizeCaps } from './structure.ts';
import type { Finding, SanitizeProfile } from './types.ts';

/** What `gatehouse scan` scans a record as. */
export type ScanKind = 'result' | 'definition';

/** One output line. */
export interface ScanLine {
  readonly id: unknown;
  readonly findings: { type: string; start: number; end: number; detail: string }[];
  readonly score: number;
  readonly action: Verdict | 'error';
  readonly error?: string;
}

function out(f: Finding, where?: string): ScanLine['findings'][number] {
  return {
    type: f.type,
    start: f.start,
    end: f.end,
    detail: `${where ? `${where}: ` : ''}${f.rule}: ${f.detail}`,
  };
}

/** Scans one parsed record (see the module comment). */
export function scanRecord(
  record: unknown,
  kind: ScanKind,
  profile: SanitizeProfile,
  caps?: SizeCaps,
): ScanLine {
  if (record === null || typeof record !== 'object' || Array.isArray(record))
    return { id: null, findings: [], score: 0, action: 'error', error: 'not a JSON object' };
  const r = record as Record<string, unknown>;
  const id = Object.hasOwn(r, 'id') ? r.id : null;
  if (typeof r.text === 'string') {
    const scan = scanText(r.text, profile, { definition: kind === 'definition' });
    return {
      id,
      findings: scan.findings.map((f) => out(f)),
      score: scan.score,
      action: verdictOf(scan.findings, profile),
    };
  }
  if (kind === 'definition' && r.definition !== undefined) {
    const findings: Finding[] = [];
    const lines: ScanLine['findings'] = [];
    let score = 0;
    for (const { path, text } of definitionTexts(r.definition)) {
      const scan = scanText(text, profile, { definition: true });
      score = Math.max(score, scan.score);
      findings.push(...scan.findings);
      lines.push(...scan.findings.map((f) => out(f, path || '/')));
    }
    return { id, findings: lines, score, action: verdictOf(findings, profile) };
  }
  if (kind === 'result' && r.result !== null && typeof r.result === 'object') {
    const scan = scanMessage({ result: r.result }, profile, caps === undefined ? {} : { caps });
    return {
      id,
      findings: scan.findings.map((f: MessageFinding) => out(f, f.path.replace(/^\/result/, '') || '/')),
      score: scan.score,
      action: scan.action,
    };
  }
  return {
    id,
    findings: [],
    score: 0,
    action: 'error',
    error:
      kind === 'definition'
        ? 'expected a string `text` or an object `definition`'
        : 'expected a string `text` or an object `result`',
  };
}

/** Scans one line of JSON Lines text; `undefined` for a blank line (not a record). */
export function scanJsonLine(
  line: string,
  kind: ScanKind,
  profile: SanitizeProfile,
  caps?: SizeCaps,
): ScanLine | undefined {
  if (line.trim() === '') return undefined;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (err) {
    return {
      id: null,
      findings: [],
      score: 0,
      action: 'error',
      error: `invalid JSON: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  return scanRecord(record, kind, profile, caps);
}
