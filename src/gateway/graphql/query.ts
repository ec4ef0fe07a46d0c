/** The GraphQL Query fields: node lookups and the filtered root lists, each behind its read rule. */
import { and, ilike } from 'drizzle-orm';
import { AUTH_REFUSALS } from '../../domain/errors';
import { events, releaseNotes, releases, studies, taskServices, tasks } from '../../infra/db/schema';
import { VERSION } from '../../version';

import { type GqlContext, gqlError, reader, requireRoles } from './context';
import { kfIdOf, parseGlobalId } from './ids';
import {
  type Args,
  bool,
  eqArg,
  eventById,
  eventConnection,
  idArg,
  likeEscape,
  noteById,
  noteConnection,
  plainIdArg,
  releaseById,
  releaseConnection,
  str,
  studyById,
  studyConnection,
  taskById,
  taskConnection,
  taskServiceById,
  taskServiceConnection,
} from './reads';

export const queryResolvers = {
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
        eqArg(releases.state, str(a.state)),
        eqArg(releases.name, str(a.name)),
        str(a.nameContains) ? ilike(releases.name, likeEscape(str(a.nameContains)!)) : undefined,
        eqArg(releases.author, str(a.author)),
        eqArg(releases.version, str(a.version)),
        eqArg(releases.isMajor, bool(a.isMajor)),
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
        eqArg(tasks.releaseId, release),
        eqArg(tasks.taskServiceId, service),
        eqArg(tasks.state, str(a.state)),
        eqArg(tasks.kfId, str(a.kfId)),
      ),
    );
  },
  allTaskServices: (_: unknown, a: Args, ctx: GqlContext) => {
    requireRoles(ctx, ['ADMIN', 'DEV']);
    return taskServiceConnection(
      ctx,
      a,
      and(
        eqArg(taskServices.name, str(a.name)),
        str(a.nameContains) ? ilike(taskServices.name, likeEscape(str(a.nameContains)!)) : undefined,
        eqArg(taskServices.url, str(a.url)),
        eqArg(taskServices.author, str(a.author)),
        eqArg(taskServices.enabled, bool(a.enabled)),
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
        eqArg(events.releaseId, release),
        eqArg(events.taskServiceId, service),
        eqArg(events.taskId, task),
        eqArg(events.eventType, str(a.eventType)),
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
        eqArg(releaseNotes.releaseId, release),
        eqArg(releaseNotes.studyId, study),
        eqArg(releaseNotes.author, str(a.author)),
      ),
    );
  },
  allStudies: (_: unknown, a: Args, ctx: GqlContext) => {
    reader(ctx);
    return studyConnection(
      ctx,
      a,
      and(
        eqArg(studies.kfId, str(a.kfId)),
        eqArg(studies.visible, bool(a.visible)),
        eqArg(studies.deleted, bool(a.deleted)),
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
};
