/**
 * Invisible Unicode (THREATS T22): tag characters (U+E0000–E007F; their hidden ASCII is decoded into the
 * finding), zero-width characters, bidirectional overrides and isolates, and runs of variation
 * selectors (bytes smuggled after a visible character). Legitimate uses are kept: RGI-style emoji tag
 * sequences (🏴 + tag letters + CANCEL TAG, the subdivision flags), ZWJ inside emoji sequences, ZWJ/ZWNJ
 * after letters of scripts that need them (Arabic, Indic, …), a single variation selector after a
 * character (emoji presentation, ideographic variants), and a byte-order mark at the very start.
 */
import { isBidiControl, isTag, isVariationSelector, isZeroWidth, NOT_PLAIN } from './text.ts';
import type { Finding } from './types.ts';

/** Code points this detector could report: a cheap test before the code-point walk. */
const PRECHECK =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: a class of UTF-16 code units on purpose (BMP invisibles; supplementary ones are matched as surrogate pairs after it)
  /[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200d\u202a-\u202e\u2060-\u2069\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb]|\udb40[\udc00-\uddef]|\ud834[\udd73-\udd7a]/;
const EMOJI = /[\p{Extended_Pictographic}\p{Emoji_Modifier}\p{Regional_Indicator}]|\u20e3/u;
/** Scripts whose orthography uses ZWJ/ZWNJ. */
const JOINING_SCRIPT =
  /[\p{sc=Arabic}\p{sc=Syriac}\p{sc=Nko}\p{sc=Thaana}\p{sc=Devanagari}\p{sc=Bengali}\p{sc=Gurmukhi}\p{sc=Gujarati}\p{sc=Oriya}\p{sc=Tamil}\p{sc=Telugu}\p{sc=Kannada}\p{sc=Malayalam}\p{sc=Sinhala}\p{sc=Myanmar}\p{sc=Khmer}\p{sc=Mongolian}\p{sc=Tibetan}]/u;
const BLACK_FLAG = 0x1f3f4;
const CANCEL_TAG = 0xe007f;

function hex(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

function cpAt(text: string, i: number): number {
  return text.codePointAt(i) ?? 0;
}

/** The code point ending just before `i` (handles surrogate pairs), or -1. */
function cpBefore(text: string, i: number): number {
  if (i <= 0) return -1;
  const lo = text.charCodeAt(i - 1);
  if (lo >= 0xdc00 && lo <= 0xdfff && i >= 2) return cpAt(text, i - 2);
  return lo;
}

/** The code point before `i`, skipping variation selectors (VS16 often follows an emoji before a ZWJ). */
function baseBefore(text: string, i: number): number {
  let j = i;
  for (;;) {
    const cp = cpBefore(text, j);
    if (cp < 0 || !isVariationSelector(cp)) return cp;
    j -= cp > 0xffff ? 2 : 1;
  }
}

function isEmoji(cp: number): boolean {
  return cp >= 0 && EMOJI.test(String.fromCodePoint(cp));
}

/** Length of a well-formed emoji tag sequence's tags at `i` (tag letters/digits then CANCEL TAG), else 0. */
function emojiTagLength(text: string, i: number): number {
  let j = i;
  let n = 0;
  while (j < text.length) {
    const cp = cpAt(text, j);
    if (cp === CANCEL_TAG) return n >= 2 && n <= 7 ? j + 2 - i : 0;
    const ascii = cp - 0xe0000;
    if (!((ascii >= 0x30 && ascii <= 0x39) || (ascii >= 0x61 && ascii <= 0x7a))) return 0;
    n++;
    j += 2;
  }
  return 0;
}

/** Decodes tag characters to the ASCII they shadow (U+E0020–E007E → 0x20–0x7E). */
export function decodeTags(text: string): string {
  let out = '';
  for (const ch of text) {
    const a = (ch.codePointAt(0) ?? 0) - 0xe0000;
    if (a >= 0x20 && a <= 0x7e) out += String.fromCharCode(a);
  }
  return out;
}

/**
 * Variation selectors as bytes (the "emoji smuggling" encoding: VS1–16 = 0–15, VS17–256 = 16–255),
 * shown as text when printable.
 */
function decodeSelectors(text: string): string {
  const bytes: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    bytes.push(cp <= 0xfe0f ? cp - 0xfe00 : cp - 0xe0100 + 16);
  }
  const s = Buffer.from(bytes).toString('utf8');
  return /^[\x20-\x7e\p{L}\p{N}\p{P}\s]*$/u.test(s) ? s : `${bytes.length} bytes`;
}

/** Finds invisible characters in `text`; spans are UTF-16 offsets into it. */
export function detectInvisible(text: string): Finding[] {
  if (!NOT_PLAIN.test(text) || !PRECHECK.test(text)) return [];
  const out: Finding[] = [];
  for (let i = 0; i < text.length; ) {
    const cp = cpAt(text, i);
    const size = cp > 0xffff ? 2 : 1;
    if (isTag(cp)) {
      if (cpBefore(text, i) === BLACK_FLAG) {
        const len = emojiTagLength(text, i);
        if (len > 0) {
          i += len;
          continue;
        }
      }
      let j = i;
      while (j < text.length && isTag(cpAt(text, j))) j += 2;
      const hidden = decodeTags(text.slice(i, j));
      out.push({
        type: 'invisible-unicode',
        rule: 'tag-characters',
        start: i,
        end: j,
        detail: `hidden text: ${JSON.stringify(hidden.slice(0, 500))}${hidden.length > 500 ? '…' : ''}`,
      });
      i = j;
    } else if (isVariationSelector(cp)) {
      let j = i;
      while (j < text.length && isVariationSelector(cpAt(text, j))) j += cpAt(text, j) > 0xffff ? 2 : 1;
      // One selector after a visible character is ordinary (emoji presentation, CJK variants); a run, or
      // one with nothing to select, carries data.
      const run = text.slice(i, j);
      const count = [...run].length;
      if (count > 1 || i === 0) {
        out.push({
          type: 'invisible-unicode',
          rule: 'variation-selectors',
          start: i,
          end: j,
          detail: `${count} variation selectors, decoded: ${JSON.stringify(decodeSelectors(run))}`,
        });
      }
      i = j;
    } else if (isBidiControl(cp)) {
      let j = i + 1;
      while (j < text.length && isBidiControl(text.charCodeAt(j))) j++;
      out.push({
        type: 'invisible-unicode',
        rule: 'bidi-control',
        start: i,
        end: j,
        detail: [...text.slice(i, j)].map((c) => hex(c.codePointAt(0) ?? 0)).join(' '),
      });
      i = j;
    } else if (isZeroWidth(cp)) {
      if (cp === 0xfeff && i === 0) {
        i++;
        continue;
      }
      if (cp === 0x200d || cp === 0x200c) {
        const before = baseBefore(text, i);
        const after = i + 1 < text.length ? cpAt(text, i + 1) : -1;
        if (cp === 0x200d && isEmoji(before) && isEmoji(after)) {
          i++;
          continue;
        }
        if (before >= 0 && JOINING_SCRIPT.test(String.fromCodePoint(before))) {
          i++;
          continue;
        }
      }
      let j = i + size;
      while (j < text.length && isZeroWidth(cpAt(text, j))) j += cpAt(text, j) > 0xffff ? 2 : 1;
      out.push({
        type: 'invisible-unicode',
        rule: 'zero-width',
        start: i,
        end: j,
        detail: [...text.slice(i, j)]
          .slice(0, 16)
          .map((c) => hex(c.codePointAt(0) ?? 0))
          .join(' '),
      });
      i = j;
    } else i += size;
  }
  return out;
}
