/**
 * The review diff of a quarantined definition against its pin, for `gatehouse tools diff` and the
 * console's Definitions page: pure functions over the stored canonical JSON.
 */

/** A line diff (LCS) of two texts: `  ` same, `- ` only in the old, `+ ` only in the new. */
export function lineDiff(oldText: string, newText: string): string {
  const a = oldText === '' ? [] : oldText.split('\n');
  const b = newText.split('\n');
  // Definitions are small; a very large one is shown whole rather than diffed.
  if (a.length * b.length > 4_000_000)
    return `${a.map((l) => `- ${l}\n`).join('')}${b.map((l) => `+ ${l}\n`).join('')}`;
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i] as number[];
    const next = lcs[i + 1] as number[];
    for (let j = m - 1; j >= 0; j--)
      row[j] =
        a[i] === b[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
  }
  let out = '';
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out += `  ${a[i]}\n`;
      i++;
      j++;
    } else if (i < n && (j === m || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      out += `- ${a[i]}\n`;
      i++;
    } else {
      out += `+ ${b[j]}\n`;
      j++;
    }
  }
  return out;
}

/** A stored definition (canonical JSON) pretty-printed, one member per line: what the diff compares. */
export function prettyDefinition(canonical: string): string {
  try {
    return JSON.stringify(JSON.parse(canonical), null, 2);
  } catch {
    return canonical;
  }
}

/**
 * How a definition is named for review (CLI, console): `server__name` for a tool (how the gateway
 * namespaces by default), `server#prompt:NAME` and `server#resource-template:URI_TEMPLATE` for prompts
 * and templates, `server#instructions` for a server's instructions (`#` is outside the tool-name charset).
 */
export function definitionLabel(r: { server: string; kind: string; name: string }): string {
  if (r.kind === 'tool') return `${r.server}__${r.name}`;
  return r.kind === 'instructions' ? `${r.server}#instructions` : `${r.server}#${r.kind}:${r.name}`;
}
