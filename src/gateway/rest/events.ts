import { createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq } from 'drizzle-orm';
import { NotFound } from '../../domain/errors';
import { eventJson } from '../../domain/representations';
import { urls } from '../../domain/urls';
import { events } from '../../infra/db/schema';
import type { GatewayDeps } from '../http/context';
import {
  datetime,
  errorResponses,
  getOneRoute,
  IdParam,
  jsonContent,
  Page,
  readErrors,
  ref,
  routes,
} from '../http/openapi';
import { idFromRef, pageOf, pagingQuery } from '../http/paging';

const EVENT_TYPES = ['info', 'warning', 'error'] as const;

export const EventSchema = z
  .object({
    kf_id: z.string().openapi({ example: 'EV_3G2409A2' }),
    event_type: z.string().openapi({ enum: [...EVENT_TYPES] }),
    message: z
      .string()
      .openapi({ example: 'release RE_3G2409A2, version 0.1.1 changed from running to staged' }),
    release: ref('https://coordinator.example.org/releases/RE_3G2409A2').nullable(),
    task_service: ref('https://coordinator.example.org/task-services/TS_3G2409A2').nullable(),
    task: ref('https://coordinator.example.org/tasks/TA_3G2409A2').nullable(),
    created_at: datetime(),
  })
  .openapi('Event');

const tag = ['events'];
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
  summary: 'List events, newest first (read-only)',
  request: {
    query: z.object({
      ...pagingQuery,
      release: related('release'),
      task: related('task'),
      task_service: related('task service'),
      event_type: z.enum(EVENT_TYPES).optional(),
    }),
  },
  responses: {
    200: jsonContent(Page('EventPage', EventSchema), 'A page of events'),
    ...errorResponses(400),
    ...readErrors(),
  },
});
const get = getOneRoute({ tags: tag, what: 'event', schema: EventSchema, params: IdParam('EV_3G2409A2') });

export function eventRoutes(deps: GatewayDeps) {
  const { db, config } = deps;
  const u = urls(config);
  return routes()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const where = and(
        q.release ? eq(events.releaseId, idFromRef(q.release)) : undefined,
        q.task ? eq(events.taskId, idFromRef(q.task)) : undefined,
        q.task_service ? eq(events.taskServiceId, idFromRef(q.task_service)) : undefined,
        q.event_type ? eq(events.eventType, q.event_type) : undefined,
      );
      return c.json(
        await pageOf(
          config.PUBLIC_URL,
          c.req.url,
          q,
          db.select().from(events).where(where).orderBy(desc(events.seq)).limit(q.limit).offset(q.offset),
          db.select({ n: count() }).from(events).where(where),
          (r) => eventJson(r, u),
        ),
        200,
      );
    })
    .openapi(get, async (c) => {
      const [row] = await db
        .select()
        .from(events)
        .where(eq(events.kfId, c.req.valid('param').id));
      if (!row) throw NotFound();
      return c.json(eventJson(row, u), 200);
    });
}
