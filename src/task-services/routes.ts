import { and, count, desc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import { taskServices } from '../db/schema';
import { type AppEnv, requireRole } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { Invalid, NotFound } from '../http/errors';
import { page, pagingQuery } from '../http/paging';
import { validate } from '../http/validation';
import { newKfId } from '../shared/ids';
import { taskServiceJson } from './repo';
import { checkServiceUrl } from './url-check';

const boolParam = z
  .enum(['true', 'false', 'True', 'False', '1', '0'])
  .transform((v) => v === 'true' || v === 'True' || v === '1');

const createBody = z.object({
  name: z.string().trim().min(1).max(100),
  url: z.string().trim().min(1).max(500),
  description: z.string().max(500).default(''),
  author: z.string().max(100).default(''),
  enabled: z.boolean().default(true),
});
const updateBody = createBody.partial();

export function taskServiceRoutes(deps: GatewayDeps) {
  const { db, config } = deps;
  const check = async (url: string) => {
    const reason = await checkServiceUrl(url, {
      allowPrivate: config.ALLOW_PRIVATE_SERVICE_URLS,
      timeoutMs: Math.min(config.REQUEST_TIMEOUT_MS, 10_000),
      fetch: deps.fetch,
      lookup: deps.lookup,
      headers: { authorization: await deps.auth.outbound.authorization(url) },
    });
    if (reason) throw Invalid({ url: [reason] });
  };
  const find = async (id: string) => {
    const [row] = await db
      .select()
      .from(taskServices)
      .where(and(eq(taskServices.kfId, id), eq(taskServices.deleted, false)));
    if (!row) throw NotFound();
    return row;
  };

  return new Hono<AppEnv>()
    .get('/', validate('query', z.object({ ...pagingQuery, enabled: boolParam.optional() })), async (c) => {
      const q = c.req.valid('query');
      const where = and(
        eq(taskServices.deleted, false),
        q.enabled === undefined ? undefined : eq(taskServices.enabled, q.enabled),
      );
      const [rows, [total]] = await Promise.all([
        db
          .select()
          .from(taskServices)
          .where(where)
          .orderBy(desc(taskServices.createdAt))
          .limit(q.limit)
          .offset(q.offset),
        db.select({ n: count() }).from(taskServices).where(where),
      ]);
      return c.json(
        page(
          config.PUBLIC_URL,
          c.req.url,
          q,
          total!.n,
          rows.map((r) => taskServiceJson(r)),
        ),
      );
    })
    .get('/:id', async (c) => c.json(taskServiceJson(await find(c.req.param('id')))))
    .post('/', requireRole(['ADMIN', 'DEV']), validate('json', createBody), async (c) => {
      const body = c.req.valid('json');
      await check(body.url);
      const [row] = await db
        .insert(taskServices)
        .values({ kfId: newKfId('TS'), ...body, nextHealthAt: new Date() })
        .returning();
      return c.json(taskServiceJson(row!), 201);
    })
    .patch('/:id', requireRole(['ADMIN', 'DEV']), validate('json', updateBody), async (c) => {
      const body = c.req.valid('json');
      const current = await find(c.req.param('id'));
      if (body.url !== undefined && body.url !== current.url) await check(body.url);
      if (Object.keys(body).length === 0) return c.json(taskServiceJson(current));
      const [row] = await db
        .update(taskServices)
        .set(body)
        .where(eq(taskServices.kfId, current.kfId))
        .returning();
      return c.json(taskServiceJson(row!));
    })
    .delete('/:id', requireRole(['ADMIN', 'DEV']), async (c) => {
      const current = await find(c.req.param('id'));
      // tasks of past releases keep pointing at it, so it is hidden rather than removed
      await db
        .update(taskServices)
        .set({ deleted: true, enabled: false })
        .where(eq(taskServices.kfId, current.kfId));
      return c.body(null, 204);
    });
}
