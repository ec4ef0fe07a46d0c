import type { SQL } from 'drizzle-orm';
import type { TaskRecord } from '../../domain/representations';
import type { Db, Tx } from './client';
import { tasks } from './schema';

/** Runs raw SQL and returns its rows whichever driver is underneath (postgres-js or PGlite). */
export async function queryRows<T>(db: Db | Tx, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown;
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

/** A task joined with its service as the driver returns it from raw SQL (snake_case, dates as text). */
export interface RawTaskRow {
  kf_id: string;
  state: string;
  progress: number | string | null;
  release_id: string;
  task_service_id: string;
  created_at: unknown;
  service_name: string;
  states_at?: Record<string, string> | string;
}

export function taskRecordOf(row: RawTaskRow): TaskRecord {
  return {
    kfId: row.kf_id,
    state: row.state,
    progress: row.progress === null ? null : Number(row.progress),
    releaseId: row.release_id,
    taskServiceId: row.task_service_id,
    createdAt: tasks.createdAt.mapFromDriverValue(row.created_at as string) as Date,
    serviceName: row.service_name,
    statesAt: typeof row.states_at === 'string' ? JSON.parse(row.states_at) : (row.states_at ?? {}),
  };
}
