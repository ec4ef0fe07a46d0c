import { type Column, getTableColumns, type InferSelectModel, type SQL, sql, type Table } from 'drizzle-orm';
import type { Db, Tx } from './client';
import { queryRows } from './rows';

/**
 * Hot-path reads as raw SQL with drizzle's own column mapping. Drizzle's query builder costs
 * about 0.3–0.5 ms of CPU per query under Bun (measured: bench/README.md), more than the query
 * itself; a raw statement with a fixed text is also prepared once by the driver and reused.
 */
/**
 * `column in ('a', 'b')` for a list of the lifecycle's states (src/domain/lifecycle/states.ts), so
 * SQL never retypes which states are final or at work. The states are the project's constants,
 * written as literals so a statement's text (and its prepared plan) stays the same.
 */
export function inStates(column: string, states: readonly string[]): SQL {
  if (!/^[a-z_.]+$/.test(column) || states.some((s) => !/^[a-z_]+$/.test(s)))
    throw new Error(`inStates: unexpected column or state name in ${column}`);
  return sql.raw(`${column} in (${states.map((s) => `'${s}'`).join(', ')})`);
}

export interface RowMapper<T> {
  /** the table's columns, quoted, for a select list (optionally qualified by an alias) */
  columns: SQL;
  map(row: Record<string, unknown>): T;
}

export function rowMapper<T extends Table>(table: T, alias?: string): RowMapper<InferSelectModel<T>> {
  const cols = Object.entries(getTableColumns(table)) as Array<[string, Column]>;
  const prefix = alias ? `${alias}.` : '';
  return {
    columns: sql.raw(cols.map(([, c]) => `${prefix}"${c.name}"`).join(', ')),
    map(row) {
      const out: Record<string, unknown> = {};
      for (const [key, c] of cols) {
        const v = row[c.name];
        out[key] = v === null || v === undefined ? null : c.mapFromDriverValue(v);
      }
      return out as InferSelectModel<T>;
    },
  };
}

/** A list parameter that keeps the statement text the same whatever its length (one prepared statement). */
export function idList(ids: readonly string[]): SQL {
  return sql`(select jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`;
}

/**
 * `column in (…ids)` with a fixed statement text. Statements are prepared per connection (see
 * patches), and drizzle's `inArray` writes one placeholder per id: each list length would be
 * another prepared statement.
 */
export function inIds(column: Column, ids: readonly string[]): SQL {
  return sql`${column} in ${idList(ids)}`;
}

export async function mappedRows<T>(db: Db | Tx, mapper: RowMapper<T>, query: SQL): Promise<T[]> {
  return (await queryRows<Record<string, unknown>>(db, query)).map((r) => mapper.map(r));
}
