import { and, count, desc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import { events } from '../db/schema';
import type { AppEnv } from '../http/auth';
import { type GatewayDeps, iso, type Urls, urls } from '../http/context';
import { NotFound } from '../http/errors';
import { idFromRef, page, pagingQuery } from '../http/paging';
import { validate } from '../http/validation';

export function eventJson(e: typeof events.$inferSelect, u: Urls) {
  return {
    kf_id: e.kfId,
    event_type: e.eventType,
    message: e.message,
    release: u.release(e.releaseId),
    task_service: u.taskService(e.taskServiceId),
    task: u.task(e.taskId),
    created_at: iso(e.createdAt),
  };
}

export function eventRoutes(deps: GatewayDeps) {
  const { db, config } = deps;
  const u = urls(config);
  return new Hono<AppEnv>()
    .get(
      '/',
      validate(
        'query',
        z.object({
          ...pagingQuery,
          release: z.string().max(300).optional(),
          task: z.string().max(300).optional(),
          task_service: z.string().max(300).optional(),
          event_type: z.enum(['info', 'warning', 'error']).optional(),
        }),
      ),
      async (c) => {
        const q = c.req.valid('query');
        const where = and(
          q.release ? eq(events.releaseId, idFromRef(q.release)) : undefined,
          q.task ? eq(events.taskId, idFromRef(q.task)) : undefined,
          q.task_service ? eq(events.taskServiceId, idFromRef(q.task_service)) : undefined,
          q.event_type ? eq(events.eventType, q.event_type) : undefined,
        );
        const [rows, [total]] = await Promise.all([
          db.select().from(events).where(where).orderBy(desc(events.seq)).limit(q.limit).offset(q.offset),
          db.select({ n: count() }).from(events).where(where),
        ]);
        return c.json(
          page(
            config.PUBLIC_URL,
            c.req.url,
            q,
            total!.n,
            rows.map((r) => eventJson(r, u)),
          ),
        );
      },
    )
    .get('/:id', async (c) => {
      const [row] = await db
        .select()
        .from(events)
        .where(eq(events.kfId, c.req.param('id')));
      if (!row) throw NotFound();
      return c.json(eventJson(row, u));
    });
}
