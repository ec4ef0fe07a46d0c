import { and, count, desc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import { tasks } from '../db/schema';
import { type AppEnv, requireRole } from '../http/auth';
import { type GatewayDeps, urls } from '../http/context';
import { ApiError, Invalid, NotFound } from '../http/errors';
import { idFromRef, page, pagingQuery } from '../http/paging';
import { validate } from '../http/validation';
import { mapServiceState, parseProgress, TASK_STATES } from '../lifecycle/states';
import { newMessageId } from '../shared/ids';
import { selectTasks, taskJson } from './repo';

const callbackBody = z
  .object({
    state: z.string().min(1).max(50).optional(),
    progress: z.union([z.number(), z.string().max(20), z.null()]).optional(),
  })
  .refine((b) => b.state !== undefined || b.progress !== undefined, {
    message: 'Give a state, a progress or both.',
    path: ['non_field_errors'],
  });

export function taskRoutes(deps: GatewayDeps) {
  const { db, config, intents } = deps;
  const u = urls(config);
  const find = async (id: string) => {
    const [row] = await selectTasks(db, eq(tasks.kfId, id));
    if (!row) throw NotFound();
    return row;
  };

  return new Hono<AppEnv>()
    .get(
      '/',
      validate(
        'query',
        z.object({
          ...pagingQuery,
          release: z.string().max(300).optional(),
          task_service: z.string().max(300).optional(),
          state: z.enum(TASK_STATES).optional(),
        }),
      ),
      async (c) => {
        const q = c.req.valid('query');
        const where = and(
          q.release ? eq(tasks.releaseId, idFromRef(q.release)) : undefined,
          q.task_service ? eq(tasks.taskServiceId, idFromRef(q.task_service)) : undefined,
          q.state ? eq(tasks.state, q.state) : undefined,
        );
        const [rows, [total]] = await Promise.all([
          selectTasks(db, where).orderBy(desc(tasks.seq)).limit(q.limit).offset(q.offset),
          db.select({ n: count() }).from(tasks).where(where),
        ]);
        return c.json(
          page(
            config.PUBLIC_URL,
            c.req.url,
            q,
            total!.n,
            rows.map((r) => taskJson(r, u)),
          ),
        );
      },
    )
    .get('/:id', async (c) => c.json(taskJson(await find(c.req.param('id')), u)))
    .patch('/:id', requireRole(['ADMIN'], { service: true }), validate('json', callbackBody), async (c) => {
      const body = c.req.valid('json');
      const task = await find(c.req.param('id'));
      if (body.state !== undefined && !mapServiceState(body.state)) {
        throw Invalid({ state: [`"${body.state}" is not a valid state.`] });
      }
      if (
        body.progress !== undefined &&
        body.progress !== null &&
        parseProgress(body.progress) === undefined
      ) {
        throw Invalid({ progress: ['A number from 0 to 100, or a string like "50%".'] });
      }
      const reply = await intents.send({
        type: 'task.report',
        id: newMessageId(),
        releaseId: task.releaseId,
        taskId: task.kfId,
        state: body.state,
        progress: body.progress,
      });
      if (!reply) return c.json({ ...taskJson(task, u), detail: 'Accepted.' }, 202);
      if (reply.status >= 400) throw new ApiError(reply.status as 409, reply.body as Record<string, unknown>);
      return c.json(taskJson(await find(task.kfId), u));
    });
}
