import { asc } from 'drizzle-orm';
import type { Db } from '../../../infra/db/client';
import { inIds } from '../../../infra/db/raw-select';
import { releaseNotes } from '../../../infra/db/schema';

export type ReleaseNoteRow = typeof releaseNotes.$inferSelect;

export async function notesOfReleases(db: Db, releaseIds: string[]): Promise<Map<string, ReleaseNoteRow[]>> {
  const out = new Map<string, ReleaseNoteRow[]>();
  if (releaseIds.length === 0) return out;
  const rows = await db
    .select()
    .from(releaseNotes)
    .where(inIds(releaseNotes.releaseId, releaseIds))
    .orderBy(asc(releaseNotes.createdAt));
  for (const r of rows) out.set(r.releaseId, [...(out.get(r.releaseId) ?? []), r]);
  return out;
}
