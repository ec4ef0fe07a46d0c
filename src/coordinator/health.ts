import { newKfId } from '../domain/ids';
import type { HealthResult, Intent } from '../infra/bus/messages';
import type { Db, Tx } from '../infra/db/client';
import {
  countHealthCheck,
  type EventInsert,
  lockServiceHealth,
  processedIdsAmong,
  recordHealthAnswers,
  releasesWithOpenTasksOf,
} from './store/health';

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
    const seen = await processedIdsAmong(
      tx,
      results.map((r) => r.id),
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
    await recordHealthAnswers(
      tx,
      log,
      fresh.map((r) => r.id),
    );
    return intents;
  });
}

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
  const before = await lockServiceHealth(tx, r.serviceId);
  if (!before) return undefined;
  const after = await countHealthCheck(tx, r.serviceId, r.ok, threshold);
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
  const active = await releasesWithOpenTasksOf(tx, r.serviceId);
  return active.map((releaseId) => ({
    type: 'task_service.down',
    id: `down:${r.serviceId}:${releaseId}`,
    releaseId,
    serviceId: r.serviceId,
    reason: `${failures} consecutive failed status checks (last: ${r.error ?? 'unknown'})`,
  }));
}
