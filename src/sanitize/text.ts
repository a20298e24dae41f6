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

/** Growable pair of offset arrays (a view can be longer than its original: NFKD of `ﬃ` is `ffi`). */
class OffsetMap {
  starts: Int32Array;
  ends: Int32Array;
  length = 0;
  constructor(capacity: number) {
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
  }
  /** Appends `n` view characters produced by the original code units [start, end). */
  push(start: number, end: number, n: number): void {
    if (this.length + n > this.starts.length) {
      const cap = Math.max(this.starts.length * 2, this.length + n);
      const s = new Int32Array(cap);
      const e = new Int32Array(cap);
      s.set(this.starts.subarray(0, this.length));
      e.set(this.ends.subarray(0, this.length));
      this.starts = s;
      this.ends = e;
    }
    for (let k = 0; k < n; k++) {
      this.starts[this.length] = start;
      this.ends[this.length++] = end;
    }
  }
  /** Appends an unchanged run: view characters map one-to-one onto [from, to). */
  identity(from: number, to: number): void {
    if (this.length + (to - from) > this.starts.length) this.push(from, from, 0);
    for (let i = from; i < to; i++) this.push(i, i + 1, 1);
  }
  view(text: string): View {
    return { text, starts: this.starts.subarray(0, this.length), ends: this.ends.subarray(0, this.length) };
  }
}

/** A run of plain characters (tab, LF, CR, printable ASCII): copied as is, in one slice. */
const PLAIN_RUN = /[\t\n\r\x20-\x7e]+/y;

/**
 * The folded view of `text` (see the module comment). Plain ASCII input is only lower-cased, with
 * identity offsets; otherwise plain runs are copied in slices and only the other code points are
 * folded one by one.
 */
export function foldedView(text: string): View {
  if (!NOT_PLAIN.test(text)) return { text: text.toLowerCase(), starts: undefined, ends: undefined };
  const parts: string[] = [];
  const map = new OffsetMap(text.length + 16);
  for (let i = 0; i < text.length; ) {
    PLAIN_RUN.lastIndex = i;
    if (PLAIN_RUN.test(text)) {
      const j = PLAIN_RUN.lastIndex;
      parts.push(text.slice(i, j).toLowerCase());
      map.identity(i, j);
      i = j;
      continue;
    }
    const cp = text.codePointAt(i) ?? 0;
    const next = i + (cp > 0xffff ? 2 : 1);
    if (!dropped(cp)) {
      const f = cp < 0x80 ? String.fromCharCode(cp) : foldCodePoint(cp);
      map.push(i, next, f.length);
      parts.push(f);
    }
    i = next;
  }
  return map.view(parts.join(''));
}

/**
 * The original with control and invisible characters removed (what the secret and PII detectors read,
 * so that a zero-width space inside a key does not hide it). Identity when nothing is removed.
 */
export function cleanView(text: string): View {
  if (!NOT_PLAIN.test(text)) return { text, starts: undefined, ends: undefined };
  let removable = false;
  for (let i = 0; i < text.length && !removable; ) {
    const cp = text.codePointAt(i) ?? 0;
    if (cp >= 0x7f || (cp < 0x20 && cp !== 0x09 && cp !== 0x0a && cp !== 0x0d)) removable = dropped(cp);
    i += cp > 0xffff ? 2 : 1;
  }
  if (!removable) return { text, starts: undefined, ends: undefined };
  const parts: string[] = [];
  const map = new OffsetMap(text.length);
  let from = 0;
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i) ?? 0;
    const next = i + (cp > 0xffff ? 2 : 1);
    if (cp !== 0x0d && dropped(cp)) {
      parts.push(text.slice(from, i));
      map.identity(from, i);
      from = next;
    }
    i = next;
  }
  parts.push(text.slice(from));
  map.identity(from, text.length);
  return map.view(parts.join(''));
}
