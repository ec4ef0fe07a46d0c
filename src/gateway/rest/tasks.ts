import { createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq } from 'drizzle-orm';
import { Invalid, NotFound } from '../../domain/errors';
import { newMessageId } from '../../domain/ids';
import { mapServiceState, parseProgress, TASK_STATES } from '../../domain/lifecycle/states';
import { taskJson } from '../../domain/representations';
import { urls } from '../../domain/urls';
import { tasks } from '../../infra/db/schema';
import { deriveTiming } from '../../timing';
import { CallbackRules, noCredentials, taskInFlight } from '../features/tasks/callback-rules';
import type { KnownTasks } from '../features/tasks/known-tasks';
import { selectTasks, taskById } from '../features/tasks/queries';
import type { GatewayDeps } from '../http/context';
import { errorOfReply } from '../http/errors';
import {
  Detail,
  datetime,
  errorResponses,
  getOneRoute,
  IdParam,
  jsonBody,
  jsonContent,
  needsToken,
  Page,
  readErrors,
  ref,
  routes,
  writeErrors,
} from '../http/openapi';
import { idFromRef, pageOf, pagingQuery } from '../http/paging';
import { storableText } from '../http/validation';

const callbackBody = z
  .object({
    state: storableText(z.string().min(1).max(50))
      .optional()
      .openapi({ description: 'the state the task service reports', example: 'staged' }),
    progress: z
      .union([z.number(), storableText(z.string().max(20)), z.null()])
      .optional()
      .openapi({ description: '0 to 100, or a string like "50%"', example: 50 }),
  })
  .refine((b) => b.state !== undefined || b.progress !== undefined, {
    message: 'Give a state, a progress or both.',
    path: ['non_field_errors'],
  })
  .openapi('TaskReport');

/** When a record first entered each state. */
export const StatesAt = z.record(z.string(), z.string()).openapi({
  description: 'state → when it was first entered (ISO-8601)',
  example: { running: '2026-12-01T10:00:00Z' },
});

export const TaskSchema = z
  .object({
    kf_id: z.string().openapi({ example: 'TA_3G2409A2' }),
    state: z.string().openapi({ enum: [...TASK_STATES], example: 'running' }),
    progress: z.number().nullable(),
    release: ref('https://coordinator.example.org/releases/RE_3G2409A2'),
    task_service: ref('https://coordinator.example.org/task-services/TS_3G2409A2'),
    created_at: datetime(),
    service_name: z.string(),
    states_at: StatesAt,
  })
  .openapi('Task');

const tag = ['tasks'];
const params = IdParam('TA_3G2409A2');
const related = (what: string) =>
  z
    .string()
    .max(300)
    .optional()
    .openapi({ description: `${what}: absolute URL or bare kf_id` });

const list = createRoute({
  method: 'get',
  path: '/',
  tags: tag,
  summary: 'List tasks, newest first',
  request: {
    query: z.object({
      ...pagingQuery,
      release: related('release'),
      task_service: related('task service'),
      state: z.enum(TASK_STATES).optional(),
    }),
  },
  responses: {
    200: jsonContent(Page('TaskPage', TaskSchema), 'A page of tasks'),
    ...errorResponses(400),
    ...readErrors(),
  },
});
const get = getOneRoute({ tags: tag, what: 'task', schema: TaskSchema, params: params });
const report = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: tag,
  summary: 'Task-service callback: report state and/or progress (ADMIN or a task-service token)',
  description:
    'A callback without credentials for a task in flight is not applied: the coordinator polls the task at once instead (at most once a second) and answers 202 saying so. A service token may report only on tasks of the service bound to its subject (`token_subject`), or of any unbound service.',
  security: needsToken,
  request: { params, body: jsonBody(callbackBody) },
  responses: {
    200: jsonContent(TaskSchema, 'The task after the report was applied'),
    202: jsonContent(
      TaskSchema.extend({ detail: z.string() }).or(Detail),
      'Stored; the coordinator will apply it (or, without credentials: not applied, the task is polled now)',
    ),
    ...writeErrors(),
    ...errorResponses(404, 409),
  },
});

type TaskDeps = GatewayDeps & { knownTasks: KnownTasks };

/** A callback without credentials: not applied, but a reason for the coordinator to poll the task now. */
function pollHint({ db, intents }: TaskDeps, rules: CallbackRules) {
  return async (taskId: string) => {
    const task = await taskInFlight(db, taskId);
    if (!task) throw noCredentials();
    if (rules.shouldForwardHint(taskId)) {
      await intents.post({ type: 'task.poll_hint', id: newMessageId(), releaseId: task.releaseId, taskId });
    }
    return {
      detail:
        'Not applied: this callback carries no credentials. The coordinator polls the task now instead; send a task-service token to report directly.',
    };
  };
}

/** A task by kf_id or 404; a task reported on is looked up in the known tasks first. */
function taskFinders({ db, knownTasks: known }: TaskDeps) {
  const find = async (id: string) => {
    const row = await taskById(db, id);
    if (!row) throw NotFound();
    return row;
  };
  const findForReport = async (id: string) => {
    const hit = known.get(id);
    if (hit) return hit;
    const row = await find(id);
    known.remember([row]);
    return row;
  };
  return { find, findForReport };
}

/** A state or progress the coordinator cannot read is a 400 naming the field. */
function checkReport(body: z.infer<typeof callbackBody>) {
  if (body.state !== undefined && !mapServiceState(body.state)) {
    throw Invalid({ state: [`"${body.state}" is not a valid state.`] });
  }
  if (body.progress !== undefined && body.progress !== null && parseProgress(body.progress) === undefined) {
    throw Invalid({ progress: ['A number from 0 to 100, or a string like "50%".'] });
  }
}

export function taskRoutes(deps: TaskDeps) {
  const { db, config, intents } = deps;
  const u = urls(config);
  const timing = deriveTiming(config);
  const rules = deps.callbackRules ?? new CallbackRules(db, timing.lifecycle.hintIntervalMs);
  const hint = pollHint(deps, rules);
  const { find, findForReport } = taskFinders(deps);

  return routes()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const where = and(
        q.release ? eq(tasks.releaseId, idFromRef(q.release)) : undefined,
        q.task_service ? eq(tasks.taskServiceId, idFromRef(q.task_service)) : undefined,
        q.state ? eq(tasks.state, q.state) : undefined,
      );
      return c.json(
        await pageOf(
          config.PUBLIC_URL,
          c.req.url,
          q,
          selectTasks(db, where).orderBy(desc(tasks.seq)).limit(q.limit).offset(q.offset),
          db.select({ n: count() }).from(tasks).where(where),
          (r) => taskJson(r, u),
        ),
        200,
      );
    })
    .openapi(get, async (c) => c.json(taskJson(await find(c.req.valid('param').id), u), 200))
    .openapi(report, async (c) => {
      const received = performance.now();
      const body = c.req.valid('json');
      const principal = c.get('principal');
      if (!principal) return c.json(await hint(c.req.valid('param').id), 202);
      rules.mayReportAtAll(principal);
      const task = await findForReport(c.req.valid('param').id);
      await rules.mayReport(principal, task);
      checkReport(body);
      const reply = await intents.sendGathered(
        {
          type: 'task.report',
          id: newMessageId(),
          releaseId: task.releaseId,
          taskId: task.kfId,
          state: body.state,
          progress: body.progress,
        },
        // a service that calls back before answering its start must not be held until its own
        // deadline: the whole answer, the reads before included, stays within the callback wait
        { timeoutMs: Math.max(0, timing.callbackReplyTimeoutMs - (performance.now() - received)) },
      );
      // stored, not applied yet: the task as this request read it (no further read to wait for)
      if (!reply) return c.json({ ...taskJson(task, u), detail: 'Accepted.' }, 202);
      if (reply.status >= 400) throw errorOfReply(reply);
      const now = (reply.body as { task?: { state: string; progress: number | null } }).task;
      return c.json(taskJson(now ? { ...task, ...now } : await find(task.kfId), u), 200);
    });
}
