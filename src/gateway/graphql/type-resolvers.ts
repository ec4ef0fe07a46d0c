/**
 * The GraphQL object types' field resolvers (one object per type): Relay ids, derived fields and
 * the nested connections, read with the same visibility as the root lists.
 */
import { and, eq, inArray } from 'drizzle-orm';
import type { TaskServiceRecord } from '../../domain/representations';
import { inIds } from '../../infra/db/raw-select';
import { events, releaseNotes, releaseStudies, releases, studies, tasks } from '../../infra/db/schema';
import type { ReleaseRow } from '../features/releases/queries';
import type { GqlContext } from './context';
import { globalId, uuidOf } from './ids';
import {
  type Args,
  type EventRow,
  eqArg,
  eventConnection,
  nodeOf,
  noteConnection,
  type ReleaseNoteRow,
  releaseById,
  releaseConnection,
  type StudyRow,
  str,
  studyById,
  studyConnection,
  type TaskRow,
  taskById,
  taskConnection,
} from './reads';

export const releaseNode = {
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
        eqArg(studies.kfId, str(args.kfId)),
      ),
    ),
  tasks: (r: ReleaseRow, args: Args, ctx: GqlContext) =>
    taskConnection(ctx, args, and(eq(tasks.releaseId, r.kfId), eqArg(tasks.state, str(args.state)))),
  notes: (r: ReleaseRow, args: Args, ctx: GqlContext) =>
    noteConnection(ctx, args, eq(releaseNotes.releaseId, r.kfId)),
  events: (r: ReleaseRow, args: Args, ctx: GqlContext) =>
    eventConnection(
      ctx,
      args,
      and(eq(events.releaseId, r.kfId), eqArg(events.eventType, str(args.eventType))),
    ),
};

export const releaseHalt = {
  task: (h: { taskId: string | null }, _: Args, ctx: GqlContext) =>
    h.taskId ? taskById(ctx, h.taskId) : null,
  taskService: (h: { taskServiceId: string | null }, _: Args, ctx: GqlContext) =>
    h.taskServiceId ? ctx.loaders.taskService(h.taskServiceId) : null,
};

export const taskNode = {
  id: nodeOf('TaskNode'),
  uuid: (t: TaskRow) => uuidOf(t.kfId),
  progress: (t: TaskRow) => (t.progress === null ? null : Math.round(t.progress * 100) / 100),
  release: (t: TaskRow, _: Args, ctx: GqlContext) => releaseById(ctx, t.releaseId),
  // a visible task shows its service (REST lists services publicly too)
  taskService: (t: TaskRow, _: Args, ctx: GqlContext) => ctx.loaders.taskService(t.taskServiceId),
  events: (t: TaskRow, args: Args, ctx: GqlContext) =>
    eventConnection(ctx, args, and(eq(events.taskId, t.kfId), eqArg(events.eventType, str(args.eventType)))),
};

export const taskServiceNode = {
  id: nodeOf('TaskServiceNode'),
  uuid: (s: TaskServiceRecord) => uuidOf(s.kfId),
  tasks: (s: TaskServiceRecord, args: Args, ctx: GqlContext) =>
    taskConnection(ctx, args, and(eq(tasks.taskServiceId, s.kfId), eqArg(tasks.state, str(args.state)))),
  events: (s: TaskServiceRecord, args: Args, ctx: GqlContext) =>
    eventConnection(
      ctx,
      args,
      and(eq(events.taskServiceId, s.kfId), eqArg(events.eventType, str(args.eventType))),
    ),
};

export const eventNode = {
  id: nodeOf('EventNode'),
  uuid: (e: EventRow) => uuidOf(e.kfId),
  release: (e: EventRow, _: Args, ctx: GqlContext) => (e.releaseId ? releaseById(ctx, e.releaseId) : null),
  task: (e: EventRow, _: Args, ctx: GqlContext) => (e.taskId ? taskById(ctx, e.taskId) : null),
  taskService: (e: EventRow, _: Args, ctx: GqlContext) =>
    e.taskServiceId ? ctx.loaders.taskService(e.taskServiceId) : null,
};

export const studyNode = {
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
        eqArg(releases.state, str(args.state)),
      ),
    ),
  notes: (s: StudyRow, args: Args, ctx: GqlContext) =>
    noteConnection(ctx, args, eq(releaseNotes.studyId, s.kfId)),
};

export const releaseNoteNode = {
  id: nodeOf('ReleaseNoteNode'),
  uuid: (n: ReleaseNoteRow) => uuidOf(n.kfId),
  release: (n: ReleaseNoteRow, _: Args, ctx: GqlContext) => releaseById(ctx, n.releaseId),
  study: (n: ReleaseNoteRow, _: Args, ctx: GqlContext) => studyById(ctx, n.studyId),
};

export const userNode = {
  id: (u: { username: string }) => globalId('UserNode', u.username),
};

export const syncStudiesMutation = {
  new: (p: { newIds: string[] }, args: Args, ctx: GqlContext) =>
    studyConnection(ctx, args, p.newIds.length ? inIds(studies.kfId, p.newIds) : eq(studies.kfId, '')),
  deleted: (p: { deletedIds: string[] }, args: Args, ctx: GqlContext) =>
    studyConnection(
      ctx,
      args,
      p.deletedIds.length ? inIds(studies.kfId, p.deletedIds) : eq(studies.kfId, ''),
    ),
};
