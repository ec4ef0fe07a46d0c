import type { Column, SQL, Table } from 'drizzle-orm';
import type { TaskRecord } from '../../domain/representations';
import type { Db, Tx } from './client';
import type { taskServices, tasks } from './schema';

/** Runs raw SQL and returns its rows whichever driver is underneath (postgres-js or PGlite). */
export async function queryRows<T>(db: Db | Tx, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown;
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/**
 * A value as the drivers (postgres.js, PGlite) may return it from raw SQL: dates as text or Date,
 * `real` as number or text, JSON as text or parsed; integers, text and booleans as they are.
 */
type DriverValue<C extends Column> =
  | (C['_']['data'] extends Date
      ? string | Date
      : C['_']['columnType'] extends 'PgReal' | 'PgDoublePrecision' | 'PgNumeric'
        ? number | string
        : C['_']['data'] extends number | string | boolean
          ? C['_']['data']
          : C['_']['data'] | string)
  | (C['_']['notNull'] extends true ? never : null);

/**
 * A row of `T` as raw SQL returns it: the schema's snake_case column names, so a renamed or dropped
 * column no longer compiles where raw rows are read (the statements' text itself is checked by the
 * store's tests).
 */
export type DriverRow<T extends Table> = {
  [K in keyof T['_']['columns'] as T['_']['columns'][K]['_']['name']]: DriverValue<T['_']['columns'][K]>;
};

type TaskColumns = DriverRow<typeof tasks>;

/** A task joined with its service's name, as the driver returns it from raw SQL. */
export type RawTaskRow = Pick<
  TaskColumns,
  'kf_id' | 'state' | 'progress' | 'release_id' | 'task_service_id' | 'created_at'
> & {
  service_name: DriverRow<typeof taskServices>['name'];
  states_at?: TaskColumns['states_at'];
};

export function taskRecordOf(row: RawTaskRow): TaskRecord {
  return {
    kfId: row.kf_id,
    state: row.state,
    progress: row.progress === null ? null : Number(row.progress),
    releaseId: row.release_id,
    taskServiceId: row.task_service_id,
    createdAt: new Date(row.created_at),
    serviceName: row.service_name,
    statesAt: (typeof row.states_at === 'string'
      ? JSON.parse(row.states_at)
      : (row.states_at ?? {})) as Record<string, string>,
  };
}
