/**
 * Character classes shared by the detectors, and the normalised views the content detectors read.
 *
 * A view is a derived string plus a map back to the original: `starts[i]`/`ends[i]` are the original
 * UTF-16 offsets of the code point that produced view character `i`. When nothing had to change (plain
 * printable ASCII), the maps are absent and offsets are the identity, so the common case costs one regex
 * test and one `toLowerCase`.
 *
 * The folded view (what the injection detector reads) is: control and invisible characters removed,
 * each code point NFKD-decomposed (compatibility forms such as fullwidth or mathematical letters become
 * ASCII), combining marks dropped, lower-cased, then mapped through the confusables skeleton table
 * (Cyrillic `а` → `a`, …; THREATS T23). Normalising code point by code point is an approximation of
 * whole-string NFKC (a composition across code points is not rebuilt); for detection that is what we
 * want, since every view character must map back to one original code point.
 */
import confusables from './rules/confusables.json' with { type: 'json' };

/** Code point → ASCII skeleton letter (UTS #39 intentional confusables plus Gatehouse's additions). */
const SKELETON = new Map<number, string>();
for (const table of [confusables.intentional, confusables.added] as Record<string, string>[]) {
  for (const [hex, ascii] of Object.entries(table)) SKELETON.set(Number.parseInt(hex, 16), ascii);
}

/** Anything outside tab, LF, CR and printable ASCII: the views (and most detectors) have work to do. */
export const NOT_PLAIN = /[^\t\n\r\x20-\x7e]/;

/** C0 controls except tab and LF (CR is judged by the caller), DEL, and C1 controls. */
export function isControl(cp: number): boolean {
  return (cp < 0x20 && cp !== 0x09 && cp !== 0x0a) || (cp >= 0x7f && cp <= 0x9f);
}

/** Unicode tag characters U+E0000–E007F (THREATS T22). */
export function isTag(cp: number): boolean {
  return cp >= 0xe0000 && cp <= 0xe007f;
}

/** Variation selectors: VS1–16 and the supplement VS17–256. */
export function isVariationSelector(cp: number): boolean {
  return (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0xe0100 && cp <= 0xe01ef);
}

/** Bidirectional embeddings, overrides and isolates (U+202A–202E, U+2066–2069): "Trojan Source". */
export function isBidiControl(cp: number): boolean {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/**
 * Characters that render as nothing: zero-width space/joiners, word joiner and invisible operators, BOM,
 * soft hyphen, Mongolian vowel separator, combining grapheme joiner, Hangul fillers, Khmer inherent
 * vowels, interlinear annotation controls, musical formatting controls.
 */
export function isZeroWidth(cp: number): boolean {
  return (
    (cp >= 0x200b && cp <= 0x200d) ||
    (cp >= 0x2060 && cp <= 0x2064) ||
    cp === 0xfeff ||
    cp === 0x00ad ||
    cp === 0x180e ||
    cp === 0x034f ||
    cp === 0x115f ||
    cp === 0x1160 ||
    cp === 0x3164 ||
    cp === 0xffa0 ||
    cp === 0x17b4 ||
    cp === 0x17b5 ||
    (cp >= 0xfff9 && cp <= 0xfffb) ||
    (cp >= 0x1d173 && cp <= 0x1d17a)
  );
}

/** Whether the folded view drops this code point. */
function dropped(cp: number): boolean {
  return isControl(cp) || isTag(cp) || isVariationSelector(cp) || isBidiControl(cp) || isZeroWidth(cp);
}

/** A derived string and, when it differs in shape from the original, where each character came from. */
export interface View {
  readonly text: string;
  /** Original offset of the code point that produced `text[i]`; absent = identity. */
  readonly starts: Int32Array | undefined;
  /** Original end offset of that code point; absent = identity. */
  readonly ends: Int32Array | undefined;
}

/** Maps a view span back to the original string. */
export function toOriginal(view: View, start: number, end: number): [number, number] {
  if (!view.starts || !view.ends) return [start, end];
  if (end <= start) {
    const at = view.starts[start] ?? view.ends[view.ends.length - 1] ?? 0;
    return [at, at];
  }
  return [view.starts[start] ?? 0, view.ends[end - 1] ?? 0];
}

const FOLD_CACHE = new Map<number, string>();
const COMBINING = /\p{M}/gu;

/** Folds one code point: NFKD, combining marks dropped, lower case, confusables skeleton. */
function foldCodePoint(cp: number): string {
  let out = FOLD_CACHE.get(cp);
  if (out !== undefined) return out;
  const direct = SKELETON.get(cp);
  if (direct !== undefined) out = direct;
  else {
    out = '';
    for (const ch of String.fromCodePoint(cp).normalize('NFKD').replace(COMBINING, '').toLowerCase()) {
      const c = ch.codePointAt(0) ?? 0;
      out += SKELETON.get(c) ?? ch;
    }
  }
  if (FOLD_CACHE.size < 65_536) FOLD_CACHE.set(cp, out);
  return out;
}

/**
 * The folded view of `text` (see the module comment). Plain ASCII input is only lower-cased, with
 * identity offsets.
 */
export function foldedView(text: string): View {
  if (!NOT_PLAIN.test(text)) return { text: text.toLowerCase(), starts: undefined, ends: undefined };
  const parts: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i) ?? 0;
    const next = i + (cp > 0xffff ? 2 : 1);
    if (cp < 0x80 && !dropped(cp)) {
      parts.push(cp >= 0x41 && cp <= 0x5a ? String.fromCharCode(cp + 32) : String.fromCharCode(cp));
      starts.push(i);
      ends.push(next);
    } else if (!dropped(cp)) {
      const f = foldCodePoint(cp);
      for (let k = 0; k < f.length; k++) {
        starts.push(i);
        ends.push(next);
      }
      parts.push(f);
    }
    i = next;
  }
  return { text: parts.join(''), starts: Int32Array.from(starts), ends: Int32Array.from(ends) };
}

/**
 * The original with control and invisible characters removed (what the secret and PII detectors read,
 * so that a zero-width space inside a key does not hide it). Identity when nothing is removed.
 */
export function cleanView(text: string): View {
  if (!NOT_PLAIN.test(text)) return { text, starts: undefined, ends: undefined };
  const parts: string[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  let removed = false;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i) ?? 0;
    const next = i + (cp > 0xffff ? 2 : 1);
    if (dropped(cp) && cp !== 0x0d) removed = true;
    else {
      parts.push(text.slice(i, next));
      for (let k = i; k < next; k++) {
        starts.push(i);
        ends.push(next);
      }
    }
    i = next;
  }
  if (!removed) return { text, starts: undefined, ends: undefined };
  return { text: parts.join(''), starts: Int32Array.from(starts), ends: Int32Array.from(ends) };
}
