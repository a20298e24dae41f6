/**
 * Namespacing of tool, prompt, resource and resource-template names.
 *
 * Scheme: `<server>__<name>`. Server names use `[A-Za-z0-9-]` (no `_`), so the
 * first `__` always ends the prefix and names stay within the MCP tool-name
 * charset `[A-Za-z0-9_.-]`. One upstream may opt out (`namespace: false`); its
 * names pass unchanged, and a name of its that looks like another server's
 * prefix is hidden so it can never shadow that server (T16).
 * Resource URIs are never rewritten: they are identifiers the client may have
 * from elsewhere; reads are routed by the URI's owner (see router).
 */

export const SEPARATOR = '__';

export interface NameTable {
  /** Servers whose names are prefixed. */
  readonly namespaced: ReadonlySet<string>;
  /** The single server exposed without prefix, if any. */
  readonly bare: string | undefined;
}

export function exposeName(table: NameTable, server: string, name: string): string | undefined {
  if (table.namespaced.has(server)) return `${server}${SEPARATOR}${name}`;
  // A bare server's name that would parse as another server's must not be exposed.
  const i = name.indexOf(SEPARATOR);
  if (i > 0 && table.namespaced.has(name.slice(0, i))) return undefined;
  return name;
}

export function resolveName(table: NameTable, exposed: string): { server: string; name: string } | undefined {
  const i = exposed.indexOf(SEPARATOR);
  if (i > 0) {
    const server = exposed.slice(0, i);
    const name = exposed.slice(i + SEPARATOR.length);
    if (table.namespaced.has(server)) return name ? { server, name } : undefined;
  }
  if (table.bare !== undefined) return { server: table.bare, name: exposed };
  return undefined;
}
