/** Ending live rows by a selector: shared by the grant and lease repositories. */
import type Database from 'better-sqlite3';

/**
 * Prepares one `UPDATE … RETURNING id` per selector key of `table` (whose rows
 * carry `ended_at` and `end_reason`); the function it returns ends the live
 * rows whose column equals the selector's value and returns their ids. Column
 * names are fixed here, so no input reaches the SQL text.
 */
export function prepareEnd<K extends string>(
  db: Database.Database,
  table: string,
  columns: Record<K, string>,
): (selector: Partial<Record<K, string>>, reason: string, at: number) => string[] {
  const byKey = new Map(
    Object.entries<string>(columns).map(([key, column]) => [
      key,
      db.prepare<[number, string, string], { id: string }>(
        `UPDATE ${table} SET ended_at = ?, end_reason = ? WHERE ${column} = ? AND ended_at IS NULL RETURNING id`,
      ),
    ]),
  );
  return (selector, reason, at) => {
    const [key, value] = Object.entries(selector)[0] ?? [];
    const end = key === undefined ? undefined : byKey.get(key);
    if (!end || typeof value !== 'string') throw new Error(`unknown ${table} selector ${key}`);
    return end.all(at, reason, value).map((r) => r.id);
  };
}
