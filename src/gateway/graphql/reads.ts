/**
 * The read side of the GraphQL resolvers: the visibility rules (ADMIN/DEV see everything, others
 * published releases and what belongs to them), filter-argument helpers, one connection per table
 * and the node lookups by kf_id.
 */
import { and, type Column, count, eq, inArray, type SQL } from 'drizzle-orm';
import { events, releaseNotes, releases, studies, taskServices, tasks } from '../../infra/db/schema';
import { type ReleaseRow, releaseList } from '../features/releases/queries';
import { connection, ordering, type PageArgs } from './connection';
import { type GqlContext, requireRoles, type Viewer } from './context';
import { globalId, kfIdOf, type NodeType, parseGlobalId } from './ids';

type Db = GqlContext['deps']['db'];
export type ReleaseNoteRow = typeof releaseNotes.$inferSelect;
export type TaskRow = typeof tasks.$inferSelect;
export type EventRow = typeof events.$inferSelect;
export type StudyRow = typeof studies.$inferSelect;
export type Args = Record<string, unknown> & PageArgs;

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

export const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
export const bool = (v: unknown) => (typeof v === 'boolean' ? v : undefined);
/** `column = value` when the argument was given (not absent, not an empty string), else no condition. */
export const eqArg = (column: Column, value: string | boolean | undefined) =>
  value === undefined || value === '' ? undefined : eq(column, value);
export const likeEscape = (s: string) => `%${s.replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
/** a Relay id (or bare kf_id) filter argument → kf_id */
export const idArg = (v: unknown, type: NodeType) =>
  typeof v === 'string' && v ? kfIdOf(v, type) : undefined;
/** a plain kf_id filter argument (a Relay id is accepted too) */
export const plainIdArg = (v: unknown) => {
  if (typeof v !== 'string' || !v) return undefined;
  return parseGlobalId(v)?.kfId ?? v;
};

// --- connections per table ---

export function releaseConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
  const list = releaseList(ctx.deps.db, { where: and(releaseVisibility(ctx.viewer), where) });
  const order = ordering(args.orderBy, releases.createdAt, releases.seq);
  return connection(args, { count: list.count, rows: (limit, offset) => list.rows(limit, offset, order) });
}

export function taskConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
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

export function taskServiceConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
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

export function eventConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
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

export function noteConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
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

export function studyConnection(ctx: GqlContext, args: Args, where: SQL | undefined) {
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

export async function releaseById(ctx: GqlContext, kfId: string) {
  return canSeeRelease(ctx.viewer, await ctx.loaders.release(kfId));
}
export async function taskById(ctx: GqlContext, kfId: string) {
  const task = await ctx.loaders.task(kfId);
  if (!task || !(await releaseById(ctx, task.releaseId))) return null;
  return task;
}
export async function eventById(ctx: GqlContext, kfId: string) {
  const [event] = await ctx.deps.db.select().from(events).where(eq(events.kfId, kfId));
  if (!event) return null;
  if (!ctx.viewer.privileged && (!event.releaseId || !(await releaseById(ctx, event.releaseId)))) return null;
  return event;
}
export async function noteById(ctx: GqlContext, kfId: string) {
  const [note] = await ctx.deps.db.select().from(releaseNotes).where(eq(releaseNotes.kfId, kfId));
  if (!note || !(await releaseById(ctx, note.releaseId))) return null;
  return note;
}
export async function studyById(ctx: GqlContext, kfId: string) {
  return canSeeStudy(ctx.viewer, await ctx.loaders.study(kfId));
}
/** task services are listed for ADMIN and DEV only */
export async function taskServiceById(ctx: GqlContext, kfId: string) {
  requireRoles(ctx, ['ADMIN', 'DEV']);
  const s = await ctx.loaders.taskService(kfId);
  return s && !s.deleted ? s : null;
}

export const nodeOf = (type: NodeType) => (row: { kfId: string }) => globalId(type, row.kfId);
