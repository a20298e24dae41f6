/** Ending live rows by a selector: shared by the grant and lease repositories. */
import type { Sql } from './database.ts';

/**
 * Ends the live rows of `table` (whose rows carry `ended_at` and `end_reason`) whose column for
 * the selector's one key equals its value; resolves to their ids. Table and column names come from
 * the callers' fixed maps, so no input reaches the SQL text.
 */
export async function endRows<K extends string>(
  sql: Sql,
  table: string,
  columns: Record<K, string>,
  selector: Partial<Record<K, string>>,
  reason: string,
  at: number,
): Promise<string[]> {
  const [key, value] = Object.entries(selector)[0] ?? [];
  const column = key === undefined ? undefined : (columns as Record<string, string>)[key];
  if (column === undefined || typeof value !== 'string') throw new Error(`unknown ${table} selector ${key}`);
  const rows = await sql.rows<{ id: string }>(
    `UPDATE ${table} SET ended_at = $1, end_reason = $2 WHERE ${column} = $3 AND ended_at IS NULL RETURNING id`,
    [at, reason, value],
  );
  return rows.map((r) => r.id);
}
