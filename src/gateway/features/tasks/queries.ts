import { asc, eq, type SQL, sql } from 'drizzle-orm';
import type { TaskRecord } from '../../../domain/representations';
import type { Db } from '../../../infra/db/client';
import { inIds } from '../../../infra/db/raw-select';
import { queryRows, type RawTaskRow, taskRecordOf } from '../../../infra/db/rows';
import { taskServices, tasks } from '../../../infra/db/schema';

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

export function selectTasks(db: Db, where: SQL | undefined) {
  return db
    .select(taskColumns)
    .from(tasks)
    .innerJoin(taskServices, eq(taskServices.kfId, tasks.taskServiceId))
    .where(where);
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
  for (const r of rows) {
    const list = out.get(r.releaseId);
    if (list) list.push(r);
    else out.set(r.releaseId, [r]);
  }
  return out;
}
