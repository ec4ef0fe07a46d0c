import { asc } from 'drizzle-orm';
import type { Db } from '../../../infra/db/client';
import { inIds } from '../../../infra/db/raw-select';
import { releaseStudies, type releases } from '../../../infra/db/schema';
import { iso, type Urls } from '../../http/context';
import { notesOfReleases, type ReleaseNoteRow, releaseNoteJson } from '../release-notes/queries';
import { type TaskRecord, taskJson, tasksOfReleases } from '../tasks/queries';

export type ReleaseRow = typeof releases.$inferSelect;

export interface ReleaseRecord {
  release: ReleaseRow;
  studies: string[];
  tasks: TaskRecord[];
  notes: ReleaseNoteRow[];
}

export function releaseJson(r: ReleaseRecord, urls: Urls) {
  const rel = r.release;
  return {
    kf_id: rel.kfId,
    name: rel.name,
    description: rel.description,
    notes: r.notes.map((n) => releaseNoteJson(n, urls)),
    state: rel.state,
    studies: r.studies,
    tasks: r.tasks.map((t) => taskJson(t, urls)),
    version: rel.version,
    created_at: iso(rel.createdAt),
    tags: rel.tags,
    author: rel.author,
    is_major: rel.isMajor,
    halt: haltJson(rel, urls),
    published_by: rel.publishedBy,
    publish_requested_at: iso(rel.publishRequestedAt),
    published_at: iso(rel.publishedAt),
    states_at: rel.statesAt,
  };
}

/** Why a halted release halted (docs/lifecycle.md, "Why a release halted"); null while it did not. */
export function haltJson(rel: ReleaseRow, urls: Urls) {
  if (!rel.haltReason) return null;
  return {
    reason: rel.haltReason === 'fail' ? ('failed' as const) : ('canceled' as const),
    task: urls.task(rel.haltTaskId),
    task_service: urls.taskService(rel.haltServiceId),
    service_name: rel.haltServiceName,
    message: rel.haltMessage ?? '',
    canceled_by: rel.haltedBy,
    at: iso(rel.haltedAt ?? rel.stateChangedAt),
  };
}

/** Adds studies, tasks and notes to release rows with three queries, whatever the page size. */
export async function withRelations(db: Db, rows: ReleaseRow[]): Promise<ReleaseRecord[]> {
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
