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

/**
 * Characters that fold to a different letter: the skeleton table's, fullwidth forms and mathematical
 * alphanumerics. Without one, no keyword can be a homoglyph spelling.
 */
const LOOKALIKE = new RegExp(
  `[${[...SKELETON.keys()].map((cp) => `\\u${cp.toString(16).padStart(4, '0')}`).join('')}\\uff01-\\uff5e]|\\ud835[\\udc00-\\udfff]`,
);

/** Whether `text` has a character that folds to a different letter (see {@link LOOKALIKE}). */
export function hasLookalike(text: string): boolean {
  return LOOKALIKE.test(text);
}

/** Anything outside tab, LF, CR and printable ASCII: the views (and most detectors) have work to do. */
export const NOT_PLAIN = /[^\t\n\r\x20-\x7e]/;
const NOT_PLAIN_ALL = /[^\t\n\r\x20-\x7e]/g;

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
  /** Offsets are the identity (the view is the original, or only lower-cased). */
  readonly identity: boolean;
  /** Original offset of the code point that produced `text[i]`; absent = identity. Built lazily. */
  readonly starts: Int32Array | undefined;
  /** Original end offset of that code point; absent = identity. */
  readonly ends: Int32Array | undefined;
}

/** Maps a view span back to the original string. */
export function toOriginal(view: View, start: number, end: number): [number, number] {
  if (view.identity || !view.starts || !view.ends) return [start, end];
  if (end <= start) {
    const at = view.starts[start] ?? view.ends[view.ends.length - 1] ?? 0;
    return [at, at];
  }
  return [view.starts[start] ?? 0, view.ends[end - 1] ?? 0];
}

const FOLD_CACHE = new Map<number, string>();
/**
 * Combining diacritical marks (U+0300–036F, the block NFKD produces for accented Latin, Greek and
 * Cyrillic letters). Marks of other scripts are kept: the signals are English words, and a narrow BMP
 * class without the `u` flag is several times faster than `\p{M}` over a long text.
 */
const COMBINING = /[\u0300-\u036f]/g;

/**
 * Folds one code point: NFKD, combining marks dropped, lower case, confusables skeleton. The same steps,
 * in the same order, as {@link foldedView}'s whole-string fast path, so both produce text of the same
 * shape (the offset maps depend on it).
 */
function foldCodePoint(cp: number): string {
  let out = FOLD_CACHE.get(cp);
  if (out !== undefined) return out;
  out = skeleton(String.fromCodePoint(cp).normalize('NFKD').replace(COMBINING, '').toLowerCase());
  if (FOLD_CACHE.size < 65_536) FOLD_CACHE.set(cp, out);
  return out;
}

/** Characters the skeleton table maps (after lower-casing). */
const SKELETON_RE = new RegExp(
  `[${[...SKELETON.keys()].map((cp) => `\\u${cp.toString(16).padStart(4, '0')}`).join('')}]`,
  'g',
);
// The class above is of UTF-16 code units (no `u` flag: faster): the table must stay in the BMP.
if ([...SKELETON.keys()].some((cp) => cp > 0xffff))
  throw new Error('confusables: a skeleton key outside the BMP');

function skeleton(s: string): string {
  return s.replace(SKELETON_RE, (ch) => SKELETON.get(ch.codePointAt(0) ?? 0) ?? ch);
}

/** What the folded view drops (see `dropped`), as one regex for the fast path. */
const DROP_SOURCE = String.raw`[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200d\u202a-\u202e\u2060-\u2069\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\u{e0000}-\u{e007f}\u{e0100}-\u{e01ef}\u{1d173}-\u{1d17a}]`;
const DROP_RE = new RegExp(DROP_SOURCE, 'gu');

/** Growable pair of offset arrays (a view can be longer than its original: NFKD of `ﬃ` is `ffi`). */
class OffsetMap {
  starts: Int32Array;
  ends: Int32Array;
  length = 0;
  constructor(capacity: number) {
    this.starts = new Int32Array(capacity);
    this.ends = new Int32Array(capacity);
  }
  #reserve(n: number): void {
    if (this.length + n <= this.starts.length) return;
    const cap = Math.max(this.starts.length * 2, this.length + n);
    const s = new Int32Array(cap);
    const e = new Int32Array(cap);
    s.set(this.starts.subarray(0, this.length));
    e.set(this.ends.subarray(0, this.length));
    this.starts = s;
    this.ends = e;
  }
  /** Appends `n` view characters produced by the original code units [start, end). */
  push(start: number, end: number, n: number): void {
    this.#reserve(n);
    const { starts, ends } = this;
    for (let k = 0; k < n; k++) {
      starts[this.length] = start;
      ends[this.length++] = end;
    }
  }
  /** Appends an unchanged run: view characters map one-to-one onto [from, to). */
  identity(from: number, to: number): void {
    this.#reserve(to - from);
    const { starts, ends } = this;
    let at = this.length;
    for (let i = from; i < to; i++, at++) {
      starts[at] = i;
      ends[at] = i + 1;
    }
    this.length = at;
  }
  view(text: string): View {
    return {
      text,
      identity: false,
      starts: this.starts.subarray(0, this.length),
      ends: this.ends.subarray(0, this.length),
    };
  }
}

/** A run of plain characters (tab, LF, CR, printable ASCII): copied as is, in one slice. */
const PLAIN_RUN = /[\t\n\r\x20-\x7e]+/y;

/**
 * The folded view of `text` (see the module comment). Plain ASCII input is only lower-cased, with
 * identity offsets. Otherwise the folded text is made with whole-string operations (drop, NFKD, marks,
 * lower case, skeleton: native and fast; decomposition and lower-casing are per character, so the text
 * has the shape the per-code-point maps describe), and the offset maps only
 * when a detector asks for them (a span to map back): most texts have no finding, and building the
 * maps was most of the cost of non-ASCII text.
 */
export function foldedView(text: string): View {
  if (!NOT_PLAIN.test(text))
    return { text: text.toLowerCase(), identity: true, starts: undefined, ends: undefined };
  const folded = skeleton(text.replace(DROP_RE, '').normalize('NFKD').replace(COMBINING, '').toLowerCase());
  let built: View | undefined;
  const maps = (): View => {
    built ??= buildFolded(text);
    return built;
  };
  return {
    text: folded,
    identity: false,
    get starts() {
      return maps().starts;
    },
    get ends() {
      return maps().ends;
    },
  };
}

/** The folded view with its offset maps: plain runs are copied in slices, other code points folded one by one. */
function buildFolded(text: string): View {
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
      const f = foldCodePoint(cp);
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
  if (!NOT_PLAIN.test(text)) return { text, identity: true, starts: undefined, ends: undefined };
  // Jump from one non-plain character to the next: most non-ASCII text has nothing to remove.
  let removable = false;
  NOT_PLAIN_ALL.lastIndex = 0;
  for (let m = NOT_PLAIN_ALL.exec(text); m !== null && !removable; m = NOT_PLAIN_ALL.exec(text))
    removable = dropped(text.codePointAt(m.index) ?? 0);
  if (!removable) return { text, identity: true, starts: undefined, ends: undefined };
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
