/**
 * Definition-specific signals (THREATS T13, T15), for `gatehouse scan --kind definition` and, later,
 * tool-definition pinning: a tool description that points at credential files, asks for a hidden
 * "sidenote"-style parameter to carry data out, or talks about other tools' behaviour. These run on
 * top of the result detectors (a definition is text an agent reads, like a result).
 */
import { foldedView, toOriginal, type View } from './text.ts';
import type { Finding } from './types.ts';

const DEFINITION_RULES: readonly { id: string; detail: string; re: RegExp }[] = [
  {
    id: 'sensitive-path',
    detail: 'mentions credential or configuration files',
    re: /~\/\.ssh|\bid_(?:rsa|ed25519|ecdsa)\b|\.aws\/credentials|\/etc\/(?:passwd|shadow)|\bmcp\.json\b|\.cursor\/|(?:^|[\s'"`(])\.env\b|\.npmrc\b|\.netrc\b|\.kube\/config|\.docker\/config\.json/g,
  },
  {
    id: 'exfil-parameter',
    detail: 'a parameter meant to carry data out',
    re: /\b(?:side_?note|hidden_?(?:note|data|context)|exfil\w*)\b|\b(?:pass|put|include|send|attach)\s+(?:its|their|the)\s+(?:full\s+|entire\s+)?contents?\s+(?:as|in|into)\b/g,
  },
  {
    id: 'cross-tool',
    detail: 'describes the behaviour of other tools',
    re: /\b(?:side\s+effects?\s+on|when\s+(?:using|calling|invoking)|before\s+(?:using|calling|invoking)|instead\s+of\s+(?:using|calling))\s+(?:the\s+|any\s+|another\s+|other\s+)?(?:(?:also\s+)?(?:present|available|installed|existing)\s+)?[`'"]?[a-z][a-z0-9_.-]{2,60}[`'"]?\s+(?:tool|function|server)s?\b|\b(?:also\s+present|other|another)\s+(?:mcp\s+)?(?:tools?|servers?)\b[^.\n]{0,60}\b(?:must|should|always|never)\b/g,
  },
];

/** Finds definition-specific signals in `text`; spans are UTF-16 offsets into it. */
export function detectDefinition(text: string, view: View = foldedView(text)): Finding[] {
  const out: Finding[] = [];
  for (const rule of DEFINITION_RULES) {
    for (const m of view.text.matchAll(rule.re)) {
      const [start, end] = toOriginal(view, m.index, m.index + m[0].length);
      out.push({ type: 'definition', rule: rule.id, start, end, detail: rule.detail });
    }
  }
  return out;
}

/**
 * The texts of a tool definition an agent reads, with JSON pointers: name, title, description, and in
 * the schemas every property name, title, description, enum value, default and example (THREATS T13:
 * "payload in parameter descriptions, enum or default values, or parameter names").
 */
export function definitionTexts(def: unknown): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  const walk = (v: unknown, path: string, depth: number): void => {
    if (depth > 32) return;
    if (typeof v === 'string') out.push({ path, text: v });
    else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i], `${path}/${i}`, depth + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const p = `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
        // Property names are text the agent reads too.
        if (path.endsWith('/properties')) out.push({ path: `${p}#name`, text: k });
        walk(x, p, depth + 1);
      }
    }
  };
  walk(def, '', 0);
  return out;
}
