import { and, eq } from 'drizzle-orm';
import { Invalid, NotFound } from '../../../domain/errors';
import { newKfId } from '../../../domain/ids';
import { releaseNotes, releaseStudies, releases } from '../../../infra/db/schema';
import type { GatewayDeps } from '../../http/context';
import type { ReleaseNoteRow } from './queries';

/**
 * The rules of release-note writes (the study must be in the release), shared by the REST routes
 * and the GraphQL mutations. They throw the ApiError types.
 */

type Deps = Pick<GatewayDeps, 'db'>;

export interface ReleaseNoteInput {
  description: string;
  release: string;
  study: string;
  author: string;
}

export async function findReleaseNote(deps: Deps, id: string): Promise<ReleaseNoteRow> {
  const [row] = await deps.db.select().from(releaseNotes).where(eq(releaseNotes.kfId, id));
  if (!row) throw NotFound();
  return row;
}

export async function createReleaseNote(deps: Deps, input: ReleaseNoteInput): Promise<ReleaseNoteRow> {
  const { db } = deps;
  const [release] = await db
    .select({ kfId: releases.kfId })
    .from(releases)
    .where(eq(releases.kfId, input.release));
  if (!release) throw Invalid({ release: [`Release ${input.release} does not exist.`] });
  const [member] = await db
    .select()
    .from(releaseStudies)
    .where(and(eq(releaseStudies.releaseId, input.release), eq(releaseStudies.studyId, input.study)));
  if (!member) throw Invalid({ study: [`Study ${input.study} is not in release ${input.release}.`] });
  const [row] = await db
    .insert(releaseNotes)
    .values({
      kfId: newKfId('RN'),
      description: input.description,
      author: input.author,
      releaseId: input.release,
      studyId: input.study,
    })
    .returning();
  return row!;
}

export async function updateReleaseNote(
  deps: Deps,
  id: string,
  input: { description?: string },
): Promise<ReleaseNoteRow> {
  const note = await findReleaseNote(deps, id);
  if (input.description === undefined) return note;
  const [row] = await deps.db
    .update(releaseNotes)
    .set({ description: input.description })
    .where(eq(releaseNotes.kfId, note.kfId))
    .returning();
  return row!;
}

export async function removeReleaseNote(deps: Deps, id: string): Promise<void> {
  const note = await findReleaseNote(deps, id);
  await deps.db.delete(releaseNotes).where(eq(releaseNotes.kfId, note.kfId));
}
