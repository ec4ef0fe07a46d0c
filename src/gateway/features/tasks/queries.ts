import { asc, eq, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../../infra/db/client';
import { inIds } from '../../../infra/db/raw-select';
import { queryRows } from '../../../infra/db/rows';
import { taskServices, tasks } from '../../../infra/db/schema';
import { iso, type Urls } from '../../http/context';

export const taskColumns = {
  kfId: tasks.kfId,
  state: tasks.state,
  progress: tasks.progress,
  releaseId: tasks.releaseId,
  taskServiceId: tasks.taskServiceId,
  createdAt: tasks.createdAt,
  serviceName: taskServices.name,
  statesAt: tasks.statesAt,
};

export function taskJson(t: TaskRecord, urls: Urls) {
  return {
    kf_id: t.kfId,
    state: t.state,
    progress: t.progress === null ? null : Math.round(t.progress * 100) / 100,
    release: urls.release(t.releaseId),
    task_service: urls.taskService(t.taskServiceId),
    created_at: iso(t.createdAt),
    service_name: t.serviceName,
    states_at: t.statesAt,
  };
}

export type TaskRecord = Awaited<ReturnType<typeof selectTasks>>[number];

export function selectTasks(db: Db, where: SQL | undefined) {
  return db
    .select(taskColumns)
    .from(tasks)
    .innerJoin(taskServices, eq(taskServices.kfId, tasks.taskServiceId))
    .where(where);
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

/** One task by id (the callback path: raw SQL, see db/raw-select.ts). */
export async function taskById(db: Db, id: string): Promise<TaskRecord | undefined> {
  const [row] = await queryRows<RawTaskRow>(
    db,
    sql`select t.kf_id, t.state, t.progress, t.release_id, t.task_service_id, t.created_at, t.states_at,
        s.name as service_name
      from tasks t join task_services s on s.kf_id = t.task_service_id where t.kf_id = ${id}`,
  );
  return row ? taskRecordOf(row) : undefined;
}

export async function tasksOfReleases(db: Db, releaseIds: string[]): Promise<Map<string, TaskRecord[]>> {
  const out = new Map<string, TaskRecord[]>();
  if (releaseIds.length === 0) return out;
  const rows = await selectTasks(db, inIds(tasks.releaseId, releaseIds)).orderBy(asc(tasks.seq));
  for (const r of rows) out.set(r.releaseId, [...(out.get(r.releaseId) ?? []), r]);
  return out;
}
