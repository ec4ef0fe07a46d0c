import { sql } from 'drizzle-orm';
import { newKfId } from '../domain/ids';
import { OPEN_RELEASE_STATES, OPEN_TASK_STATES } from '../domain/lifecycle/states';
import type { HealthResult, Intent } from '../infra/bus/messages';
import type { Db, Tx } from '../infra/db/client';
import { inStates } from '../infra/db/raw-select';
import { queryRows } from '../infra/db/rows';
import { events, processedMessages } from '../infra/db/schema';

/**
 * Applies health-check answers: `last_ok_status` counts consecutive failures, `health_status`
 * turns `down` past the threshold. A check that was not made (no token could be had) counts neither way. A service that is down fails its tasks in active releases:
 * returns one `task_service.down` intent per such release.
 */
export async function applyHealthResults(
  db: Db,
  results: HealthResult[],
  threshold: number,
): Promise<Intent[]> {
  if (results.length === 0) return [];
  return db.transaction(async (tx) => {
    const seen = new Set(
      (
        await queryRows<{ id: string }>(
          tx,
          sql`select id from processed_messages where id in (${sql.join(
            results.map((r) => sql`${r.id}`),
            sql`, `,
          )})`,
        )
      ).map((r) => r.id),
    );
    const fresh = results.filter((r) => !seen.has(r.id));
    const intents: Intent[] = [];
    const log: EventInsert[] = [];
    // a check that could not be made (no token for it) says nothing about the service
    for (const r of fresh.filter((x) => !x.notChecked)) {
      const outcome = await applyOne(tx, r, threshold);
      if (!outcome) continue;
      if (outcome.event) log.push(outcome.event);
      intents.push(...outcome.intents);
    }
    if (log.length > 0) await tx.insert(events).values(log);
    if (fresh.length > 0) {
      await tx
        .insert(processedMessages)
        .values(fresh.map((r) => ({ id: r.id })))
        .onConflictDoNothing();
    }
    return intents;
  });
}

type EventInsert = typeof events.$inferInsert;

/**
 * One check's answer: the service's counters updated, an event if it went down or came back up,
 * and while it is down one `task_service.down` intent per active release with a task of it.
 * Undefined for a service that no longer exists.
 */
async function applyOne(
  tx: Tx,
  r: HealthResult,
  threshold: number,
): Promise<{ event: EventInsert | undefined; intents: Intent[] } | undefined> {
  const [before] = await queryRows<{ health_status: string; name: string }>(
    tx,
    sql`select health_status, name from task_services where kf_id = ${r.serviceId} for update`,
  );
  if (!before) return undefined;
  const [after] = await queryRows<{ last_ok_status: number; health_status: string }>(
    tx,
    sql`update task_services set
          last_ok_status = case when ${r.ok}::boolean then 0 else last_ok_status + 1 end,
          health_status = case when ${r.ok}::boolean then 'ok'
                               when last_ok_status + 1 > ${threshold} then 'down'
                               else health_status end
        where kf_id = ${r.serviceId}
        returning last_ok_status, health_status`,
  );
  const row = after && { ...after, was: before.health_status };
  if (!row) return undefined;
  const event = transitionEvent(r, before.name, row);
  if (row.health_status !== 'down') return { event, intents: [] };
  return { event, intents: await downIntents(tx, r, row.last_ok_status) };
}

/** The event of a service going down or coming back up; undefined when its status did not flip. */
function transitionEvent(
  r: HealthResult,
  name: string,
  row: { was: string; health_status: string; last_ok_status: number },
): EventInsert | undefined {
  if (row.was !== 'down' && row.health_status === 'down') {
    return {
      kfId: newKfId('EV'),
      eventType: 'error',
      message: `task service ${name} (${r.serviceId}) is down: ${row.last_ok_status} consecutive failed status checks (last: ${r.error ?? 'unknown'})`,
      taskServiceId: r.serviceId,
    };
  }
  if (row.was === 'down' && row.health_status === 'ok') {
    return {
      kfId: newKfId('EV'),
      eventType: 'info',
      message: `task service ${name} (${r.serviceId}) is up again`,
      taskServiceId: r.serviceId,
    };
  }
  return undefined;
}

/** One `task_service.down` intent per active release with an unfinished task of the service. */
async function downIntents(tx: Tx, r: HealthResult, failures: number): Promise<Intent[]> {
  const active = await queryRows<{ release_id: string }>(
    tx,
    sql`select distinct t.release_id from tasks t join releases r on r.kf_id = t.release_id
        where t.task_service_id = ${r.serviceId}
          and ${inStates('t.state', OPEN_TASK_STATES)}
          and ${inStates('r.state', OPEN_RELEASE_STATES)}`,
  );
  return active.map((a) => ({
    type: 'task_service.down',
    id: `down:${r.serviceId}:${a.release_id}`,
    releaseId: a.release_id,
    serviceId: r.serviceId,
    reason: `${failures} consecutive failed status checks (last: ${r.error ?? 'unknown'})`,
  }));
}
