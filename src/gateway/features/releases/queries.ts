import { and, asc, count, desc, eq, type SQL } from 'drizzle-orm';
import type { ReleaseWithRelations } from '../../../domain/representations';
import type { Db } from '../../../infra/db/client';
import { inIds } from '../../../infra/db/raw-select';
import { releaseStudies, releases } from '../../../infra/db/schema';
import { notesOfReleases } from '../release-notes/queries';
import { tasksOfReleases } from '../tasks/queries';

export type ReleaseRow = typeof releases.$inferSelect;

/** Adds studies, tasks and notes to release rows with three queries, whatever the page size. */
export async function withRelations(db: Db, rows: ReleaseRow[]): Promise<ReleaseWithRelations[]> {
  const ids = rows.map((r) => r.kfId);
  const [studyRows, taskMap, noteMap] = await Promise.all([
    ids.length === 0
      ? []
      : db
          .select()
          .from(releaseStudies)
          .where(inIds(releaseStudies.releaseId, ids))
          .orderBy(asc(releaseStudies.studyId)),
    tasksOfReleases(db, ids),
    notesOfReleases(db, ids),
  ]);
  const studies = new Map<string, string[]>();
  for (const s of studyRows) studies.set(s.releaseId, [...(studies.get(s.releaseId) ?? []), s.studyId]);
  return rows.map((release) => ({
    release,
    studies: studies.get(release.kfId) ?? [],
    tasks: taskMap.get(release.kfId) ?? [],
    notes: noteMap.get(release.kfId) ?? [],
  }));
}

/** Which releases a list shows: a state (REST, dashboard) and/or any condition (GraphQL filters, visibility). */
export interface ReleaseFilter {
  state?: string;
  where?: SQL;
}

/**
 * "List releases", the one read model behind REST, GraphQL and the dashboard: a count and a page
 * of rows, newest first unless an order is given.
 */
export function releaseList(db: Db, filter: ReleaseFilter) {
  const where = and(filter.state ? eq(releases.state, filter.state) : undefined, filter.where);
  return {
    count: async () => (await db.select({ n: count() }).from(releases).where(where))[0]?.n ?? 0,
    rows: (limit: number, offset: number, order: SQL[] = [desc(releases.seq)]) =>
      db
        .select()
        .from(releases)
        .where(where)
        .orderBy(...order)
        .limit(limit)
        .offset(offset),
  };
}

/** One page of releases with their studies, tasks and notes, and how many match in all. */
export async function listReleases(
  db: Db,
  filter: ReleaseFilter,
  page: { limit: number; offset: number },
): Promise<{ total: number; records: ReleaseWithRelations[] }> {
  const list = releaseList(db, filter);
  const [rows, total] = await Promise.all([list.rows(page.limit, page.offset), list.count()]);
  return { total, records: await withRelations(db, rows) };
}
