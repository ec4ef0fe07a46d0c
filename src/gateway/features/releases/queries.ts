import { asc } from 'drizzle-orm';
import type { ReleaseWithRelations } from '../../../domain/representations';
import type { Db } from '../../../infra/db/client';
import { inIds } from '../../../infra/db/raw-select';
import { releaseStudies, type releases } from '../../../infra/db/schema';
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
