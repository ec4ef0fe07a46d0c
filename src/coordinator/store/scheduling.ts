import { sql } from 'drizzle-orm';
import {
  DEADLINE_RELEASE_STATES,
  PROGRESSING_TASK_STATES,
  WORKING_RELEASE_STATES,
} from '../../domain/lifecycle/states';
import type { Db } from '../../infra/db/client';
import { inIds, inStates } from '../../infra/db/raw-select';
import { type DriverRow, queryRows } from '../../infra/db/rows';
import { releaseStudies, type releases, type taskServices, type tasks } from '../../infra/db/schema';

type TaskColumns = DriverRow<typeof tasks>;
type ServiceColumns = DriverRow<typeof taskServices>;

/** A task whose poll is due, claimed, with where to call its service and the call's deadline. */
export type DuePoll = Pick<TaskColumns, 'kf_id' | 'release_id' | 'task_service_id'> &
  Pick<ServiceColumns, 'url' | 'token_audience'> & { request_timeout_ms: number };

/**
 * Claims up to `limit` due polls (FOR UPDATE SKIP LOCKED: coordinators share the work). The claim
 * is a lease: next_poll_at moves past the call's deadline plus `leaseMs`, so a lost answer is
 * polled again later.
 */
export function claimDuePolls(
  db: Db,
  limit: number,
  defaultRequestMs: number,
  leaseMs: number,
): Promise<DuePoll[]> {
  return queryRows<DuePoll>(
    db,
    sql`
      with due as (
        select kf_id from tasks
        where next_poll_at <= now()
        order by next_poll_at
        limit ${limit}
        for update skip locked
      )
      update tasks t set poll_in_flight = true,
        next_poll_at = now() + (coalesce(s.request_timeout_ms, ${defaultRequestMs}) + ${leaseMs})
          * interval '1 millisecond'
      from due, task_services s
      where t.kf_id = due.kf_id and s.kf_id = t.task_service_id
      returning t.kf_id, t.release_id, t.task_service_id, s.url, s.token_audience,
        coalesce(s.request_timeout_ms, ${defaultRequestMs}) as request_timeout_ms`,
  );
}

/** The studies of each release: release id → study ids. */
export async function studiesOfReleases(db: Db, releaseIds: string[]): Promise<Map<string, string[]>> {
  const rows = await db.select().from(releaseStudies).where(inIds(releaseStudies.releaseId, releaseIds));
  const studies = new Map<string, string[]>();
  for (const s of rows) studies.set(s.releaseId, [...(studies.get(s.releaseId) ?? []), s.studyId]);
  return studies;
}

/** Releases past their deadline in a state that has one (at most 100). */
export function releasesPastDeadline(db: Db): Promise<Array<Pick<DriverRow<typeof releases>, 'kf_id'>>> {
  return queryRows(
    db,
    sql`select kf_id from releases
          where deadline_at <= now() and ${inStates('state', DEADLINE_RELEASE_STATES)}
          limit 100`,
  );
}

/** Tasks at work in a working release without progress for `taskTimeoutMs` (at most 100). */
export function tasksWithoutProgress(
  db: Db,
  taskTimeoutMs: number,
): Promise<Array<Pick<TaskColumns, 'kf_id' | 'release_id'> & { progress_at: string | Date }>> {
  return queryRows(
    db,
    sql`select t.kf_id, t.release_id, t.progress_at from tasks t join releases r on r.kf_id = t.release_id
          where t.progress_at <= now() - ${taskTimeoutMs} * interval '1 millisecond'
            and ${inStates('t.state', PROGRESSING_TASK_STATES)}
            and ${inStates('r.state', WORKING_RELEASE_STATES)}
          limit 100`,
  );
}

/** An enabled service whose health check is due, claimed, with the check's deadline. */
export type DueHealthCheck = Pick<ServiceColumns, 'kf_id' | 'url' | 'token_audience'> & { timeout: number };

/**
 * Claims up to 500 enabled services whose health check is due (FOR UPDATE SKIP LOCKED) and sets
 * their next check `intervalMs` later.
 */
export function claimDueHealthChecks(
  db: Db,
  intervalMs: number,
  defaultRequestMs: number,
): Promise<DueHealthCheck[]> {
  return queryRows<DueHealthCheck>(
    db,
    sql`
      with due as (
        select kf_id from task_services
        where enabled and not deleted and (next_health_at is null or next_health_at <= now())
        order by next_health_at nulls first
        limit 500
        for update skip locked
      )
      update task_services s set next_health_at = now() + ${intervalMs} * interval '1 millisecond'
      from due where s.kf_id = due.kf_id
      returning s.kf_id, s.url, s.token_audience,
        coalesce(s.request_timeout_ms, ${defaultRequestMs}) as timeout`,
  );
}

/** A task awaiting an answer past its deadline, with the command it awaits (tasks.awaiting_*). */
export type StaleAwaiting = Pick<
  TaskColumns,
  'kf_id' | 'release_id' | 'task_service_id' | 'awaiting_command' | 'awaiting_marks'
> & { awaiting: string; since: string | Date };

/** Tasks awaiting an answer more than `graceMs` past its deadline (at most 100). */
export function staleAwaitingTasks(db: Db, graceMs: number): Promise<StaleAwaiting[]> {
  return queryRows<StaleAwaiting>(
    db,
    sql`select kf_id, release_id, task_service_id, awaiting, awaiting_since as since,
            awaiting_command, awaiting_marks from tasks
          where awaiting is not null and awaiting_until <= now() - ${graceMs} * interval '1 millisecond'
          limit 100`,
  );
}

/** The answer may still come: the task's deadline for it moves to now (looked at again after the grace). */
export function extendAwaiting(db: Db, taskId: string, awaiting: string) {
  return db.execute(
    sql`update tasks set awaiting_until = now() where kf_id = ${taskId} and awaiting = ${awaiting}`,
  );
}
