/**
 * Control characters and terminal escape sequences (THREATS T21): ANSI CSI (`ESC [` … or C1 `0x9B`),
 * OSC (`ESC ]` … BEL/ST, or C1 `0x9D`: hyperlinks, clipboard writes, window titles), other escape and
 * string sequences (DCS, APC, PM, SOS), lone C0 controls other than tab and newline (a CR is allowed only
 * as part of CRLF), DEL and C1 controls. Escaped spellings such as `\x1b[`, `\033]` or `\u001b[` are
 * flagged too (`escaped-ansi`): they are inert text, but anything that later unescapes them (a shell
 * `echo -e`, a log viewer) makes them live, so they are reported and left unchanged by `redact`.
 */
import type { Finding } from './types.ts';

/** Anything this detector could report: raw controls (but tab, LF, CR), DEL, C1, or a backslash. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this detector's job
const PRECHECK = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\\]/;
/** A CR that is not part of CRLF (tested apart: an alternation would slow the class scan above). */
const LONE_CR = /\r(?!\n)/;
/** Escaped spellings of ESC or CSI/OSC, followed by what makes them a sequence. */
const ESCAPED =
  /\\(?:x1b|033|0?27|u001b|u\{1b\}|e)[[\]]|\\(?:x|u00)9[bd](?![0-9a-f])|\\(?:x1b|033|u001b)(?=\d|;)/gi;

const OSC_NAMES = new Map<string, string>([
  ['0', 'window title'],
  ['1', 'icon name'],
  ['2', 'window title'],
  ['8', 'hyperlink'],
  ['52', 'clipboard write'],
]);

function oscDetail(raw: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: controls are removed from what is shown
  const body = raw.replace(/[\x00-\x1f\x7f-\x9f]|\x1b\\$/g, '');
  const num = /^(\d+)/.exec(body)?.[1];
  const name = num === undefined ? undefined : OSC_NAMES.get(num);
  if (num === '8') {
    const uri = body.split(';')[2] ?? '';
    return uri ? `OSC 8 hyperlink to ${uri.slice(0, 200)}` : 'OSC 8 hyperlink end';
  }
  return `OSC ${num ?? '?'}${name ? ` (${name})` : ''}`;
}

/** End of an OSC/DCS/APC string starting at `from`: after BEL, ESC \ or C1 ST; else end of line. */
function stringEnd(text: string, from: number): number {
  for (let j = from; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x07 || c === 0x9c) return j + 1;
    if (c === 0x1b) return text.charCodeAt(j + 1) === 0x5c ? j + 2 : j;
    if (c === 0x0a) return j;
  }
  return text.length;
}

/** End of a CSI sequence whose parameters start at `from`: parameter, intermediate, then one final byte. */
function csiEnd(text: string, from: number): number {
  let j = from;
  while (j < text.length && text.charCodeAt(j) >= 0x30 && text.charCodeAt(j) <= 0x3f) j++;
  while (j < text.length && text.charCodeAt(j) >= 0x20 && text.charCodeAt(j) <= 0x2f) j++;
  const f = text.charCodeAt(j);
  return f >= 0x40 && f <= 0x7e ? j + 1 : j;
}

/** Finds control characters and escape sequences in `text`; spans are UTF-16 offsets into it. */
export function detectControl(text: string): Finding[] {
  if (!PRECHECK.test(text) && !(text.includes('\r') && LONE_CR.test(text))) return [];
  const out: Finding[] = [];
  const push = (rule: string, start: number, end: number, detail: string): void => {
    const last = out[out.length - 1];
    // Runs of one kind of lone control (e.g. 20 backspaces) are one finding.
    if (last && last.rule === rule && last.end === start && rule !== 'ansi-csi' && rule !== 'ansi-osc') {
      out[out.length - 1] = { ...last, end };
      return;
    }
    out.push({ type: 'control-chars', rule, start, end, detail });
  };
  for (let i = 0; i < text.length; ) {
    const c = text.charCodeAt(i);
    if (c === 0x1b) {
      const n = text.charCodeAt(i + 1);
      if (n === 0x5b) {
        const end = csiEnd(text, i + 2);
        push('ansi-csi', i, end, `CSI ${JSON.stringify(text.slice(i + 2, end))}`);
        i = end;
      } else if (n === 0x5d) {
        const end = stringEnd(text, i + 2);
        push('ansi-osc', i, end, oscDetail(text.slice(i + 2, end)));
        i = end;
      } else if (n === 0x50 || n === 0x5f || n === 0x5e || n === 0x58) {
        const end = stringEnd(text, i + 2);
        push('ansi-escape', i, end, 'DCS/APC/PM/SOS string');
        i = end;
      } else if (n >= 0x20 && n <= 0x7e) {
        push('ansi-escape', i, i + 2, `ESC ${JSON.stringify(text[i + 1])}`);
        i += 2;
      } else {
        push('c0-control', i, i + 1, 'ESC');
        i++;
      }
    } else if (c === 0x9b) {
      const end = csiEnd(text, i + 1);
      push('ansi-csi', i, end, `C1 CSI ${JSON.stringify(text.slice(i + 1, end))}`);
      i = end;
    } else if (c === 0x9d) {
      const end = stringEnd(text, i + 1);
      push('ansi-osc', i, end, oscDetail(text.slice(i + 1, end)));
      i = end;
    } else if (c === 0x0d) {
      if (text.charCodeAt(i + 1) !== 0x0a) push('c0-control', i, i + 1, 'carriage return without line feed');
      i++;
    } else if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || c === 0x7f) {
      push('c0-control', i, i + 1, `U+${c.toString(16).toUpperCase().padStart(4, '0')}`);
      i++;
    } else if (c >= 0x80 && c <= 0x9f) {
      push('c1-control', i, i + 1, `U+${c.toString(16).toUpperCase().padStart(4, '0')}`);
      i++;
    } else i++;
  }
  if (text.includes('\\')) {
    for (const m of text.matchAll(ESCAPED)) {
      out.push({
        type: 'control-chars',
        rule: 'escaped-ansi',
        start: m.index,
        end: m.index + m[0].length,
        detail: `escaped escape sequence ${JSON.stringify(m[0])}`,
      });
    }
  }
  return out;
}
