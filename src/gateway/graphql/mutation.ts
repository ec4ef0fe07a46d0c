/** The GraphQL Mutation fields: REST's body rules applied to the input, then the shared write services. */
import { eq } from 'drizzle-orm';
import { Invalid } from '../../domain/errors';
import { releases } from '../../infra/db/schema';
import { createReleaseNote, removeReleaseNote, updateReleaseNote } from '../features/release-notes/commands';
import {
  cancelRelease,
  findRelease,
  publishRelease,
  startRelease,
  updateRelease,
} from '../features/releases/commands';
import { createTaskService, updateTaskService } from '../features/task-services/commands';
import { fieldErrors } from '../http/validation';
import { createBody as noteCreateBody, updateBody as noteUpdateBody } from '../rest/release-notes';
import { createBody as releaseCreateBody, updateBody as releaseUpdateBody } from '../rest/releases';
import { runStudySync } from '../rest/study-sync';
import { createBody as serviceCreateBody, updateBody as serviceUpdateBody } from '../rest/task-services';
import { type GqlContext, gqlError, requireRoles } from './context';
import { kfIdOf } from './ids';

const withoutNulls = <T extends Record<string, unknown>>(o: T) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as Partial<T>;

/** a REST body schema's rules applied to GraphQL input (the same messages as REST's 400) */
function parsed<T>(
  schema: {
    safeParse: (
      v: unknown,
    ) =>
      | { success: true; data: T }
      | { success: false; error: { issues: Parameters<typeof fieldErrors>[0] } };
  },
  input: unknown,
): T {
  const r = schema.safeParse(input);
  if (!r.success) throw Invalid(fieldErrors(r.error.issues));
  return r.data;
}

export const mutationResolvers = {
  startRelease: async (
    _: unknown,
    {
      input,
    }: {
      input: {
        name: string;
        description?: string | null;
        isMajor?: boolean | null;
        studies: Array<string | null>;
        tags?: Array<string | null> | null;
      };
    },
    ctx: GqlContext,
  ) => {
    const principal = requireRoles(ctx, ['ADMIN', 'DEV']);
    const body = parsed(
      releaseCreateBody,
      withoutNulls({
        name: input.name,
        description: input.description,
        studies: input.studies.filter((s): s is string => !!s).map((s) => kfIdOf(s, 'StudyNode')),
        tags: input.tags?.filter((t): t is string => t !== null),
        is_major: input.isMajor,
      }),
    );
    const result = await startRelease(
      ctx.deps,
      principal,
      {
        name: body.name,
        description: body.description,
        studies: body.studies,
        tags: body.tags,
        author: body.author || principal.username,
        isMajor: body.is_major,
      },
      { privileged: ['ADMIN', 'DEV'] },
    );
    const [row] = await ctx.deps.db.select().from(releases).where(eq(releases.kfId, result.releaseId));
    if (!row) {
      throw gqlError(
        `Accepted; the coordinator will start release ${result.releaseId} shortly.`,
        'ACCEPTED',
        {
          kfId: result.releaseId,
        },
      );
    }
    return { release: row };
  },
  updateRelease: async (
    _: unknown,
    a: { release: string; input: { name?: string | null; description?: string | null } },
    ctx: GqlContext,
  ) => {
    requireRoles(ctx, ['ADMIN', 'DEV']);
    const body = parsed(releaseUpdateBody, withoutNulls(a.input));
    const { releaseId } = await updateRelease(
      ctx.deps,
      kfIdOf(a.release, 'ReleaseNode'),
      body,
      ctx.viewer.principal?.username,
    );
    return { release: await findRelease(ctx.deps, releaseId) };
  },
  cancelRelease: async (_: unknown, a: { release: string }, ctx: GqlContext) => {
    requireRoles(ctx, ['ADMIN', 'DEV']);
    const { releaseId } = await cancelRelease(
      ctx.deps,
      kfIdOf(a.release, 'ReleaseNode'),
      ctx.viewer.principal?.username,
    );
    return { release: await findRelease(ctx.deps, releaseId) };
  },
  publishRelease: async (_: unknown, a: { release: string }, ctx: GqlContext) => {
    requireRoles(ctx, ['ADMIN']);
    const { releaseId } = await publishRelease(
      ctx.deps,
      kfIdOf(a.release, 'ReleaseNode'),
      ctx.viewer.principal?.username,
    );
    return { release: await findRelease(ctx.deps, releaseId) };
  },
  createTaskService: async (
    _: unknown,
    a: { input: { name: string; description?: string | null; url: string; enabled?: boolean | null } },
    ctx: GqlContext,
  ) => {
    const principal = requireRoles(ctx, ['ADMIN', 'DEV']);
    const body = parsed(serviceCreateBody, { ...withoutNulls(a.input), author: principal.username });
    return { taskService: await createTaskService(ctx.deps, body) };
  },
  updateTaskService: async (
    _: unknown,
    a: {
      taskService: string;
      input: { name: string; description?: string | null; url: string; enabled?: boolean | null };
    },
    ctx: GqlContext,
  ) => {
    requireRoles(ctx, ['ADMIN', 'DEV']);
    const body = parsed(serviceUpdateBody, withoutNulls(a.input));
    return {
      taskService: await updateTaskService(ctx.deps, kfIdOf(a.taskService, 'TaskServiceNode'), body),
    };
  },
  syncStudies: async (_: unknown, __: unknown, ctx: GqlContext) => {
    requireRoles(ctx, ['ADMIN', 'DEV']);
    const report = await runStudySync(ctx.deps);
    return { newIds: report.new, deletedIds: report.deleted };
  },
  createReleaseNote: async (
    _: unknown,
    a: { input: { description: string; study: string; release: string } },
    ctx: GqlContext,
  ) => {
    const principal = requireRoles(ctx, ['ADMIN', 'DEV']);
    const body = parsed(noteCreateBody, {
      description: a.input.description,
      release: kfIdOf(a.input.release, 'ReleaseNode'),
      study: kfIdOf(a.input.study, 'StudyNode'),
      author: principal.username,
    });
    return { releaseNote: await createReleaseNote(ctx.deps, body) };
  },
  updateReleaseNote: async (
    _: unknown,
    a: { releaseNote: string; input: { description: string } },
    ctx: GqlContext,
  ) => {
    requireRoles(ctx, ['ADMIN', 'DEV']);
    const body = parsed(noteUpdateBody, a.input);
    return {
      releaseNote: await updateReleaseNote(ctx.deps, kfIdOf(a.releaseNote, 'ReleaseNoteNode'), body),
    };
  },
  removeReleaseNote: async (_: unknown, a: { releaseNote: string }, ctx: GqlContext) => {
    requireRoles(ctx, ['ADMIN', 'DEV']);
    await removeReleaseNote(ctx.deps, kfIdOf(a.releaseNote, 'ReleaseNoteNode'));
    return { success: true };
  },
};
