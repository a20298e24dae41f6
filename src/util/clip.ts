/** Client-chosen text in messages and logs: bounded, marked when cut. */

/** At most `max` characters of `s` (never splitting a surrogate pair), marked when cut: for logs and messages. */
export function clip(s: string, max = 128): string {
  if (s.length <= max) return s;
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${s.slice(0, end)}…(${s.length} chars)`;
}
