import { and, asc, desc, eq, getTableColumns } from 'drizzle-orm';
import type { ReleaseWithRelations } from '../../domain/representations';
import type { Db } from '../../infra/db/client';
import { inIds } from '../../infra/db/raw-select';
import { events, releases, studies, taskServices } from '../../infra/db/schema';
import { withRelations } from '../features/releases/queries';

/**
 * What the dashboard pages read, with the same tables and helpers the REST routes use
 * (`withRelations` for releases). Reads only: every change goes through the REST API.
 */

export const LIST_PAGE_SIZE = 25;

/** An event of the timeline, with the name of the task service it is about (when it is about one). */
export type TimelineEvent = typeof events.$inferSelect & { serviceName: string | null };

export interface ReleaseDetail {
  record: ReleaseWithRelations;
  events: TimelineEvent[];
  studyNames: Map<string, string>;
}

export const TIMELINE_SIZE = 200;

export async function releaseDetail(db: Db, id: string): Promise<ReleaseDetail | undefined> {
  const [row] = await db.select().from(releases).where(eq(releases.kfId, id));
  if (!row) return undefined;
  const [[record], timeline] = await Promise.all([
    withRelations(db, [row]),
    db
      .select({ ...getTableColumns(events), serviceName: taskServices.name })
      .from(events)
      .leftJoin(taskServices, eq(taskServices.kfId, events.taskServiceId))
      .where(eq(events.releaseId, id))
      .orderBy(desc(events.seq))
      .limit(TIMELINE_SIZE),
  ]);
  const names =
    record!.studies.length === 0
      ? []
      : await db
          .select({ kfId: studies.kfId, name: studies.name })
          .from(studies)
          .where(inIds(studies.kfId, record!.studies));
  return { record: record!, events: timeline, studyNames: new Map(names.map((s) => [s.kfId, s.name])) };
}

export type ServiceRow = typeof taskServices.$inferSelect;

export function listServices(db: Db): Promise<ServiceRow[]> {
  return db
    .select()
    .from(taskServices)
    .where(eq(taskServices.deleted, false))
    .orderBy(asc(taskServices.name), asc(taskServices.kfId))
    .limit(500);
}

export async function listStudies(db: Db): Promise<Array<{ kfId: string; name: string }>> {
  return db
    .select({ kfId: studies.kfId, name: studies.name })
    .from(studies)
    .where(and(eq(studies.deleted, false)))
    .orderBy(asc(studies.kfId))
    .limit(1000);
}

/**
 * When the last health check of a service was sent: the scheduler sets `next_health_at` to
 * now + HEALTH_INTERVAL_MS when it sends one. Undefined when none has been sent since it was
 * registered (its URL was checked live at registration, at `createdAt`).
 */
export function lastHealthCheck(s: ServiceRow, intervalMs: number): Date | undefined {
  if (!s.nextHealthAt) return undefined;
  const sent = new Date(s.nextHealthAt.getTime() - intervalMs);
  return sent.getTime() >= s.createdAt.getTime() ? sent : undefined;
}
