import { sql } from 'drizzle-orm';
import { OPEN_RELEASE_STATES, OPEN_TASK_STATES } from '../../domain/lifecycle/states';
import type { Tx } from '../../infra/db/client';
import { inStates } from '../../infra/db/raw-select';
import { type DriverRow, queryRows } from '../../infra/db/rows';
import { events, processedMessages, type taskServices, type tasks } from '../../infra/db/schema';

type ServiceColumns = DriverRow<typeof taskServices>;

export type EventInsert = typeof events.$inferInsert;

/** Which of these message ids were applied already. */
export async function processedIdsAmong(tx: Tx, ids: string[]): Promise<Set<string>> {
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`select id from processed_messages where id in (${sql.join(
      ids.map((id) => sql`${id}`),
      sql`, `,
    )})`,
  );
  return new Set(rows.map((r) => r.id));
}

/** A task service's health status and name, locked for the update that counts a check's answer. */
export async function lockServiceHealth(
  tx: Tx,
  serviceId: string,
): Promise<Pick<ServiceColumns, 'health_status' | 'name'> | undefined> {
  const [row] = await queryRows<Pick<ServiceColumns, 'health_status' | 'name'>>(
    tx,
    sql`select health_status, name from task_services where kf_id = ${serviceId} for update`,
  );
  return row;
}

/**
 * Counts one check's answer: `last_ok_status` counts consecutive failures, `health_status` turns
 * `down` past the threshold and `ok` on a success. Undefined for a service that no longer exists.
 */
export async function countHealthCheck(
  tx: Tx,
  serviceId: string,
  ok: boolean,
  threshold: number,
): Promise<Pick<ServiceColumns, 'last_ok_status' | 'health_status'> | undefined> {
  const [row] = await queryRows<Pick<ServiceColumns, 'last_ok_status' | 'health_status'>>(
    tx,
    sql`update task_services set
          last_ok_status = case when ${ok}::boolean then 0 else last_ok_status + 1 end,
          health_status = case when ${ok}::boolean then 'ok'
                               when last_ok_status + 1 > ${threshold} then 'down'
                               else health_status end
        where kf_id = ${serviceId}
        returning last_ok_status, health_status`,
  );
  return row;
}

/** The open releases with an unfinished task of the service. */
export async function releasesWithOpenTasksOf(tx: Tx, serviceId: string): Promise<string[]> {
  const rows = await queryRows<Pick<DriverRow<typeof tasks>, 'release_id'>>(
    tx,
    sql`select distinct t.release_id from tasks t join releases r on r.kf_id = t.release_id
        where t.task_service_id = ${serviceId}
          and ${inStates('t.state', OPEN_TASK_STATES)}
          and ${inStates('r.state', OPEN_RELEASE_STATES)}`,
  );
  return rows.map((r) => r.release_id);
}

/** Records the events of a batch of health answers and marks the answers applied. */
export async function recordHealthAnswers(tx: Tx, log: EventInsert[], ids: string[]): Promise<void> {
  if (log.length > 0) await tx.insert(events).values(log);
  if (ids.length > 0) {
    await tx
      .insert(processedMessages)
      .values(ids.map((id) => ({ id })))
      .onConflictDoNothing();
  }
}
