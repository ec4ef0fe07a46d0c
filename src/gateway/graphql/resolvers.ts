import { and, type Column, count, eq, ilike, inArray, type SQL } from 'drizzle-orm';
import { GraphQLScalarType, Kind } from 'graphql';
import { Invalid } from '../../domain/errors';
import type { TaskServiceRecord } from '../../domain/representations';
import { iso } from '../../domain/urls';
import { inIds } from '../../infra/db/raw-select';
import {
  events,
  releaseNotes,
  releaseStudies,
  releases,
  studies,
  taskServices,
  tasks,
} from '../../infra/db/schema';
import { VERSION } from '../../version';
import { createReleaseNote, removeReleaseNote, updateReleaseNote } from '../features/release-notes/commands';
import {
  cancelRelease,
  findRelease,
  publishRelease,
  startRelease,
  updateRelease,
} from '../features/releases/commands';
import { type ReleaseRow, releaseList } from '../features/releases/queries';
import { createTaskService, updateTaskService } from '../features/task-services/commands';
import { AUTH_REFUSALS } from '../http/auth';
import { fieldErrors } from '../http/validation';
import { createBody as noteCreateBody, updateBody as noteUpdateBody } from '../rest/release-notes';
import { createBody as releaseCreateBody, updateBody as releaseUpdateBody } from '../rest/releases';
import { runStudySync } from '../rest/study-sync';
import { createBody as serviceCreateBody, updateBody as serviceUpdateBody } from '../rest/task-services';
import { connection, ordering, type PageArgs } from './connection';
import { type GqlContext, gqlError, reader, requireRoles, type Viewer } from './context';
import { globalId, kfIdOf, type NodeType, parseGlobalId, uuidOf } from './ids';

type Db = GqlContext['deps']['db'];
type ReleaseNoteRow = typeof releaseNotes.$inferSelect;
type TaskRow = typeof tasks.$inferSelect;
type EventRow = typeof events.$inferSelect;
type StudyRow = typeof studies.$inferSelect;
type Args = Record<string, unknown> & PageArgs;

// --- visibility: ADMIN/DEV see everything; others published releases and what belongs to them ---

const publishedIds = (db: Db) =>
  db.select({ id: releases.kfId }).from(releases).where(eq(releases.state, 'published'));
const releaseVisibility = (v: Viewer) => (v.privileged ? undefined : eq(releases.state, 'published'));
const studyVisibility = (v: Viewer) =>
  v.privileged ? undefined : and(eq(studies.visible, true), eq(studies.deleted, false));
const ofPublished = (v: Viewer, db: Db, column: Column) =>
  v.privileged ? undefined : inArray(column, publishedIds(db));

const canSeeRelease = (v: Viewer, r: ReleaseRow | undefined) =>
  r && (v.privileged || r.state === 'published') ? r : null;
const canSeeStudy = (v: Viewer, s: StudyRow | undefined) =>
  s && (v.privileged || (s.visible && !s.deleted)) ? s : null;

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown) => (typeof v === 'boolean' ? v : undefined);
const likeEscape = (s: string) => `%${s.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
/** a Relay id (or bare kf_id) filter argument → kf_id */
const idArg = (v: unknown, type: NodeType) => (typeof v === 'string' && v ? kfIdOf(v, type) : undefined);
/** a plain kf_id filter argument (a Relay id is accepted too) */
const plainIdArg = (v: unknown) => {
  if (typeof v !== 'string' || !v) return undefined;
  return parseGlobalId(v)?.kfId ?? v;
};
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

// --- connections per table ---

function releaseConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
  const list = releaseList(ctx.deps.db, { where: and(releaseVisibility(ctx.viewer), where) });
  const order = ordering(args.orderBy, releases.createdAt, releases.seq);
  return connection(args, { count: list.count, rows: (limit, offset) => list.rows(limit, offset, order) });
}

function taskConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
  const { db } = ctx.deps;
  const w = and(ofPublished(ctx.viewer, db, tasks.releaseId), where);
  const order = ordering(args.orderBy, tasks.createdAt, tasks.seq);
  return connection(args, {
    count: async () => (await db.select({ n: count() }).from(tasks).where(w))[0]!.n,
    rows: (limit, offset) =>
      db
        .select()
        .from(tasks)
        .where(w)
        .orderBy(...order)
        .limit(limit)
        .offset(offset),
  });
}

function taskServiceConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
  const { db } = ctx.deps;
  const w = and(eq(taskServices.deleted, false), where);
  const order = ordering(args.orderBy, taskServices.createdAt, taskServices.kfId);
  return connection(args, {
    count: async () => (await db.select({ n: count() }).from(taskServices).where(w))[0]!.n,
    rows: (limit, offset) =>
      db
        .select()
        .from(taskServices)
        .where(w)
        .orderBy(...order)
        .limit(limit)
        .offset(offset),
  });
}

function eventConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
  const { db } = ctx.deps;
  const w = and(ofPublished(ctx.viewer, db, events.releaseId), where);
  const order = ordering(args.orderBy, events.createdAt, events.seq);
  return connection(args, {
    count: async () => (await db.select({ n: count() }).from(events).where(w))[0]!.n,
    rows: (limit, offset) =>
      db
        .select()
        .from(events)
        .where(w)
        .orderBy(...order)
        .limit(limit)
        .offset(offset),
  });
}

function noteConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
  const { db } = ctx.deps;
  const w = and(ofPublished(ctx.viewer, db, releaseNotes.releaseId), where);
  const order = ordering(args.orderBy, releaseNotes.createdAt, releaseNotes.kfId);
  return connection(args, {
    count: async () => (await db.select({ n: count() }).from(releaseNotes).where(w))[0]!.n,
    rows: (limit, offset) =>
      db
        .select()
        .from(releaseNotes)
        .where(w)
        .orderBy(...order)
        .limit(limit)
        .offset(offset),
  });
}

function studyConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
  const { db } = ctx.deps;
  const w = and(studyVisibility(ctx.viewer), where);
  const order = ordering(args.orderBy, studies.createdAt, studies.kfId);
  return connection(args, {
    count: async () => (await db.select({ n: count() }).from(studies).where(w))[0]!.n,
    rows: (limit, offset) =>
      db
        .select()
        .from(studies)
        .where(w)
        .orderBy(...order)
        .limit(limit)
        .offset(offset),
  });
}

// --- node lookups (with the same visibility as the lists) ---

async function releaseById(ctx: GqlContext, kfId: string) {
  return canSeeRelease(ctx.viewer, await ctx.loaders.release(kfId));
}
async function taskById(ctx: GqlContext, kfId: string) {
  const task = await ctx.loaders.task(kfId);
  if (!task || !(await releaseById(ctx, task.releaseId))) return null;
  return task;
}
async function eventById(ctx: GqlContext, kfId: string) {
  const [event] = await ctx.deps.db.select().from(events).where(eq(events.kfId, kfId));
  if (!event) return null;
  if (!ctx.viewer.privileged && (!event.releaseId || !(await releaseById(ctx, event.releaseId)))) return null;
  return event;
}
async function noteById(ctx: GqlContext, kfId: string) {
  const [note] = await ctx.deps.db.select().from(releaseNotes).where(eq(releaseNotes.kfId, kfId));
  if (!note || !(await releaseById(ctx, note.releaseId))) return null;
  return note;
}
async function studyById(ctx: GqlContext, kfId: string) {
  return canSeeStudy(ctx.viewer, await ctx.loaders.study(kfId));
}
/** task services are listed for ADMIN and DEV only */
async function taskServiceById(ctx: GqlContext, kfId: string) {
  requireRoles(ctx, ['ADMIN', 'DEV']);
  const s = await ctx.loaders.taskService(kfId);
  return s && !s.deleted ? s : null;
}

const nodeOf = (type: NodeType) => (row: { kfId: string }) => globalId(type, row.kfId);

/** Resolvers: reads through Drizzle with the visibility rules; writes through the shared services. */
export function createResolvers() {
  const dateTime = new GraphQLScalarType({
    name: 'DateTime',
    description: 'An ISO-8601 date and time in UTC',
    serialize: (v) => iso(v as Date | string),
    parseValue: (v) => new Date(String(v)),
    parseLiteral: (ast) => (ast.kind === Kind.STRING ? new Date(ast.value) : null),
  });

  return {
    DateTime: dateTime,
    Node: {
      __resolveType: (obj: { __typename?: string }) => obj.__typename ?? null,
    },
    ReleaseNode: {
      id: nodeOf('ReleaseNode'),
      uuid: (r: ReleaseRow) => uuidOf(r.kfId),
      tags: (r: ReleaseRow) => r.tags ?? [],
      halt: (r: ReleaseRow) =>
        r.haltReason
          ? {
              reason: r.haltReason === 'fail' ? 'failed' : 'canceled',
              taskId: r.haltTaskId,
              taskServiceId: r.haltServiceId,
              serviceName: r.haltServiceName,
              message: r.haltMessage ?? '',
              canceledBy: r.haltedBy,
              at: r.haltedAt,
            }
          : null,
      studies: (r: ReleaseRow, args: Args, ctx: GqlContext) =>
        studyConnection(
          ctx,
          args,
          and(
            inArray(
              studies.kfId,
              ctx.deps.db
                .select({ id: releaseStudies.studyId })
                .from(releaseStudies)
                .where(eq(releaseStudies.releaseId, r.kfId)),
            ),
            str(args.kfId) ? eq(studies.kfId, str(args.kfId)!) : undefined,
          ),
        ),
      tasks: (r: ReleaseRow, args: Args, ctx: GqlContext) =>
        taskConnection(
          ctx,
          args,
          and(eq(tasks.releaseId, r.kfId), str(args.state) ? eq(tasks.state, str(args.state)!) : undefined),
        ),
      notes: (r: ReleaseRow, args: Args, ctx: GqlContext) =>
        noteConnection(ctx, args, eq(releaseNotes.releaseId, r.kfId)),
      events: (r: ReleaseRow, args: Args, ctx: GqlContext) =>
        eventConnection(
          ctx,
          args,
          and(
            eq(events.releaseId, r.kfId),
            str(args.eventType) ? eq(events.eventType, str(args.eventType)!) : undefined,
          ),
        ),
    },
    ReleaseHalt: {
      task: (h: { taskId: string | null }, _: Args, ctx: GqlContext) =>
        h.taskId ? taskById(ctx, h.taskId) : null,
      taskService: (h: { taskServiceId: string | null }, _: Args, ctx: GqlContext) =>
        h.taskServiceId ? ctx.loaders.taskService(h.taskServiceId) : null,
    },
    TaskNode: {
      id: nodeOf('TaskNode'),
      uuid: (t: TaskRow) => uuidOf(t.kfId),
      progress: (t: TaskRow) => (t.progress === null ? null : Math.round(t.progress * 100) / 100),
      release: (t: TaskRow, _: Args, ctx: GqlContext) => releaseById(ctx, t.releaseId),
      // a visible task shows its service (REST lists services publicly too)
      taskService: (t: TaskRow, _: Args, ctx: GqlContext) => ctx.loaders.taskService(t.taskServiceId),
      events: (t: TaskRow, args: Args, ctx: GqlContext) =>
        eventConnection(
          ctx,
          args,
          and(
            eq(events.taskId, t.kfId),
            str(args.eventType) ? eq(events.eventType, str(args.eventType)!) : undefined,
          ),
        ),
    },
    TaskServiceNode: {
      id: nodeOf('TaskServiceNode'),
      uuid: (s: TaskServiceRecord) => uuidOf(s.kfId),
      tasks: (s: TaskServiceRecord, args: Args, ctx: GqlContext) =>
        taskConnection(
          ctx,
          args,
          and(
            eq(tasks.taskServiceId, s.kfId),
            str(args.state) ? eq(tasks.state, str(args.state)!) : undefined,
          ),
        ),
      events: (s: TaskServiceRecord, args: Args, ctx: GqlContext) =>
        eventConnection(
          ctx,
          args,
          and(
            eq(events.taskServiceId, s.kfId),
            str(args.eventType) ? eq(events.eventType, str(args.eventType)!) : undefined,
          ),
        ),
    },
    EventNode: {
      id: nodeOf('EventNode'),
      uuid: (e: EventRow) => uuidOf(e.kfId),
      release: (e: EventRow, _: Args, ctx: GqlContext) =>
        e.releaseId ? releaseById(ctx, e.releaseId) : null,
      task: (e: EventRow, _: Args, ctx: GqlContext) => (e.taskId ? taskById(ctx, e.taskId) : null),
      taskService: (e: EventRow, _: Args, ctx: GqlContext) =>
        e.taskServiceId ? ctx.loaders.taskService(e.taskServiceId) : null,
    },
    StudyNode: {
      id: nodeOf('StudyNode'),
      releases: (s: StudyRow, args: Args, ctx: GqlContext) =>
        releaseConnection(
          ctx,
          args,
          and(
            inArray(
              releases.kfId,
              ctx.deps.db
                .select({ id: releaseStudies.releaseId })
                .from(releaseStudies)
                .where(eq(releaseStudies.studyId, s.kfId)),
            ),
            str(args.state) ? eq(releases.state, str(args.state)!) : undefined,
          ),
        ),
      notes: (s: StudyRow, args: Args, ctx: GqlContext) =>
        noteConnection(ctx, args, eq(releaseNotes.studyId, s.kfId)),
    },
    ReleaseNoteNode: {
      id: nodeOf('ReleaseNoteNode'),
      uuid: (n: ReleaseNoteRow) => uuidOf(n.kfId),
      release: (n: ReleaseNoteRow, _: Args, ctx: GqlContext) => releaseById(ctx, n.releaseId),
      study: (n: ReleaseNoteRow, _: Args, ctx: GqlContext) => studyById(ctx, n.studyId),
    },
    UserNode: {
      id: (u: { username: string }) => globalId('UserNode', u.username),
    },

    Query: {
      node: async (_: unknown, args: { id: string }, ctx: GqlContext) => {
        reader(ctx);
        const parsedId = parseGlobalId(args.id);
        if (!parsedId) return null;
        const lookups: Record<string, (ctx: GqlContext, id: string) => Promise<object | null>> = {
          ReleaseNode: releaseById,
          TaskNode: taskById,
          TaskServiceNode: taskServiceById,
          EventNode: eventById,
          StudyNode: studyById,
          ReleaseNoteNode: noteById,
        };
        const lookup = lookups[parsedId.type];
        const found = lookup ? await lookup(ctx, parsedId.kfId) : null;
        return found ? { ...found, __typename: parsedId.type } : null;
      },
      release: (_: unknown, a: { id: string }, ctx: GqlContext) => {
        reader(ctx);
        return releaseById(ctx, kfIdOf(a.id, 'ReleaseNode'));
      },
      task: (_: unknown, a: { id: string }, ctx: GqlContext) => {
        reader(ctx);
        return taskById(ctx, kfIdOf(a.id, 'TaskNode'));
      },
      taskService: (_: unknown, a: { id: string }, ctx: GqlContext) =>
        taskServiceById(ctx, kfIdOf(a.id, 'TaskServiceNode')),
      event: (_: unknown, a: { id: string }, ctx: GqlContext) => {
        reader(ctx);
        return eventById(ctx, kfIdOf(a.id, 'EventNode'));
      },
      study: (_: unknown, a: { id: string }, ctx: GqlContext) => {
        reader(ctx);
        return studyById(ctx, kfIdOf(a.id, 'StudyNode'));
      },
      releaseNote: (_: unknown, a: { id: string }, ctx: GqlContext) => {
        reader(ctx);
        return noteById(ctx, kfIdOf(a.id, 'ReleaseNoteNode'));
      },

      allReleases: (_: unknown, a: Args, ctx: GqlContext) => {
        reader(ctx);
        return releaseConnection(
          ctx,
          a,
          and(
            str(a.state) ? eq(releases.state, str(a.state)!) : undefined,
            str(a.name) ? eq(releases.name, str(a.name)!) : undefined,
            str(a.nameContains) ? ilike(releases.name, likeEscape(str(a.nameContains)!)) : undefined,
            str(a.author) ? eq(releases.author, str(a.author)!) : undefined,
            str(a.version) ? eq(releases.version, str(a.version)!) : undefined,
            bool(a.isMajor) !== undefined ? eq(releases.isMajor, bool(a.isMajor)!) : undefined,
          ),
        );
      },
      allTasks: (_: unknown, a: Args, ctx: GqlContext) => {
        reader(ctx);
        const release = plainIdArg(a.release);
        const service = plainIdArg(a.taskService);
        return taskConnection(
          ctx,
          a,
          and(
            release ? eq(tasks.releaseId, release) : undefined,
            service ? eq(tasks.taskServiceId, service) : undefined,
            str(a.state) ? eq(tasks.state, str(a.state)!) : undefined,
            str(a.kfId) ? eq(tasks.kfId, str(a.kfId)!) : undefined,
          ),
        );
      },
      allTaskServices: (_: unknown, a: Args, ctx: GqlContext) => {
        requireRoles(ctx, ['ADMIN', 'DEV']);
        return taskServiceConnection(
          ctx,
          a,
          and(
            str(a.name) ? eq(taskServices.name, str(a.name)!) : undefined,
            str(a.nameContains) ? ilike(taskServices.name, likeEscape(str(a.nameContains)!)) : undefined,
            str(a.url) ? eq(taskServices.url, str(a.url)!) : undefined,
            str(a.author) ? eq(taskServices.author, str(a.author)!) : undefined,
            bool(a.enabled) !== undefined ? eq(taskServices.enabled, bool(a.enabled)!) : undefined,
          ),
        );
      },
      allEvents: (_: unknown, a: Args, ctx: GqlContext) => {
        reader(ctx);
        const release = idArg(a.release, 'ReleaseNode');
        const service = idArg(a.taskService, 'TaskServiceNode');
        const task = idArg(a.task, 'TaskNode');
        return eventConnection(
          ctx,
          a,
          and(
            release ? eq(events.releaseId, release) : undefined,
            service ? eq(events.taskServiceId, service) : undefined,
            task ? eq(events.taskId, task) : undefined,
            str(a.eventType) ? eq(events.eventType, str(a.eventType)!) : undefined,
            str(a.messageContains) ? ilike(events.message, likeEscape(str(a.messageContains)!)) : undefined,
          ),
        );
      },
      allReleaseNotes: (_: unknown, a: Args, ctx: GqlContext) => {
        reader(ctx);
        const release = idArg(a.release, 'ReleaseNode');
        const study = idArg(a.study, 'StudyNode');
        return noteConnection(
          ctx,
          a,
          and(
            release ? eq(releaseNotes.releaseId, release) : undefined,
            study ? eq(releaseNotes.studyId, study) : undefined,
            str(a.author) ? eq(releaseNotes.author, str(a.author)!) : undefined,
          ),
        );
      },
      allStudies: (_: unknown, a: Args, ctx: GqlContext) => {
        reader(ctx);
        return studyConnection(
          ctx,
          a,
          and(
            str(a.kfId) ? eq(studies.kfId, str(a.kfId)!) : undefined,
            bool(a.visible) !== undefined ? eq(studies.visible, bool(a.visible)!) : undefined,
            bool(a.deleted) !== undefined ? eq(studies.deleted, bool(a.deleted)!) : undefined,
            str(a.nameContains) ? ilike(studies.name, likeEscape(str(a.nameContains)!)) : undefined,
          ),
        );
      },
      myProfile: (_: unknown, __: unknown, ctx: GqlContext) => {
        const { principal } = reader(ctx);
        if (!principal) throw gqlError(AUTH_REFUSALS.noCredentials, 'UNAUTHENTICATED');
        const email = principal.username.includes('@') ? principal.username : null;
        return {
          username: principal.username,
          email,
          roles: principal.roles,
          groups: principal.groups,
          picture: null,
          slackNotify: false,
          slackMemberId: null,
          firstName: null,
          lastName: null,
        };
      },
      status: () => ({ name: 'Release Coordinator', version: VERSION.version, commit: VERSION.commit }),
    },

    Mutation: {
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
    },
    SyncStudiesMutation: {
      new: (p: { newIds: string[] }, args: Args, ctx: GqlContext) =>
        studyConnection(ctx, args, p.newIds.length ? inIds(studies.kfId, p.newIds) : eq(studies.kfId, '')),
      deleted: (p: { deletedIds: string[] }, args: Args, ctx: GqlContext) =>
        studyConnection(
          ctx,
          args,
          p.deletedIds.length ? inIds(studies.kfId, p.deletedIds) : eq(studies.kfId, ''),
        ),
    },
  };
}
