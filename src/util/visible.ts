/**
 * Characters a terminal or a browser would hide or misrender: controls, format characters (zero-width,
 * bidi overrides, tag characters), unassigned and private-use code points, lone surrogates, line and
 * paragraph separators, and spaces other than U+0020.
 */
export const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu;

/** How one such character is shown: `\u{…}` with its code point. */
export function escapeCodePoint(c: string): string {
  return `\\u{${(c.codePointAt(0) ?? 0).toString(16).toUpperCase()}}`;
}

/**
 * Text with every character of {@link INVISIBLE} made visible as `\u{…}`: the approver sees exactly
 * what will run.
 */
export function visible(text: string): string {
  return text.replace(INVISIBLE, escapeCodePoint);
}
