import { and, asc, eq, inArray, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client';
import { taskServices, tasks } from '../db/schema';
import { iso, type Urls } from '../http/context';

export const taskColumns = {
  kfId: tasks.kfId,
  state: tasks.state,
  progress: tasks.progress,
  releaseId: tasks.releaseId,
  taskServiceId: tasks.taskServiceId,
  createdAt: tasks.createdAt,
  serviceName: taskServices.name,
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

export async function tasksOfReleases(db: Db, releaseIds: string[]): Promise<Map<string, TaskRecord[]>> {
  const out = new Map<string, TaskRecord[]>();
  if (releaseIds.length === 0) return out;
  const rows = await selectTasks(db, and(inArray(tasks.releaseId, releaseIds))).orderBy(asc(tasks.seq));
  for (const r of rows) out.set(r.releaseId, [...(out.get(r.releaseId) ?? []), r]);
  return out;
}
