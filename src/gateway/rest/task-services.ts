import { createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq } from 'drizzle-orm';
import { taskServiceJson } from '../../domain/representations';
import { taskServices } from '../../infra/db/schema';
import {
  checkNewTaskService,
  findTaskService,
  insertTaskService,
  removeTaskService,
  updateTaskService,
} from '../features/task-services/commands';
import { requireRole } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { createOnce, idempotencyHeader, idempotencyKeyOf, keyReused } from '../http/idempotency';
import {
  datetime,
  errorResponses,
  getOneRoute,
  IdParam,
  jsonBody,
  jsonContent,
  needsToken,
  Page,
  readErrors,
  routes,
  writeErrors,
} from '../http/openapi';
import { pageOf, pagingQuery } from '../http/paging';
import { storableText } from '../http/validation';

function deadline(what: string) {
  return z
    .number()
    .int('Enter a whole number of milliseconds.')
    .min(100)
    .max(86_400_000)
    .nullable()
    .openapi({ description: `deadline in ms of a call of ${what}` });
}

const boolParam = z
  .enum(['true', 'false', 'True', 'False', '1', '0'])
  .transform((v) => v === 'true' || v === 'True' || v === '1');

export const fields = {
  name: storableText(z.string().trim().min(1).max(100)),
  url: storableText(z.string().trim().min(1).max(500)).openapi({
    description:
      'base URL of the service; http(s) only, no credentials, no query string or fragment, never link-local or cloud-metadata addresses; checked live with GET {url}/status (409 when an enabled service has this URL, compared up to the case of scheme and host, a default port and trailing slashes)',
    example: 'https://search.example.org/task-service',
  }),
  description: storableText(z.string().max(500)),
  author: storableText(z.string().max(100)),
  enabled: z.boolean(),
  request_timeout_ms: deadline('initialize, get_status, cancel and GET /status (default REQUEST_TIMEOUT_MS)'),
  start_timeout_ms: deadline('start (default START_TIMEOUT_MS)'),
  publish_timeout_ms: deadline('publish (default PUBLISH_TIMEOUT_MS)'),
  token_subject: storableText(z.string().trim().min(1).max(500)).nullable().openapi({
    description:
      'bind the service to the subject (`sub`) of its service token: callbacks on its tasks are then accepted only from that token (null: any service token)',
  }),
  token_audience: storableText(z.string().trim().min(1).max(500)).nullable().openapi({
    description:
      'audience of the tokens the coordinator sends this service (null: its URL, or OAUTH_AUDIENCE with client credentials)',
  }),
};
const optionalSettings = {
  request_timeout_ms: fields.request_timeout_ms.default(null),
  start_timeout_ms: fields.start_timeout_ms.default(null),
  publish_timeout_ms: fields.publish_timeout_ms.default(null),
  token_subject: fields.token_subject.default(null),
  token_audience: fields.token_audience.default(null),
};
export const createBody = z
  .object({
    ...fields,
    description: fields.description.default(''),
    author: fields.author.default(''),
    enabled: fields.enabled.default(true),
    ...optionalSettings,
  })
  .openapi('TaskServiceCreate');
export const updateBody = z.object(fields).partial().openapi('TaskServiceUpdate');

export const TaskServiceSchema = z
  .object({
    kf_id: z.string().openapi({ example: 'TS_3G2409A2' }),
    name: z.string(),
    description: z.string(),
    last_ok_status: z.number().int().openapi({ description: 'consecutive failed health checks' }),
    author: z.string(),
    health_status: z.string().openapi({ enum: ['ok', 'down'] }),
    url: z.string(),
    created_at: datetime(),
    enabled: z.boolean(),
    request_timeout_ms: z.number().int().nullable(),
    start_timeout_ms: z.number().int().nullable(),
    publish_timeout_ms: z.number().int().nullable(),
    token_subject: z.string().nullable(),
    token_audience: z.string().nullable(),
  })
  .openapi('TaskService');

const tag = ['task-services'];
const params = IdParam('TS_3G2409A2');
const writer = requireRole(['ADMIN', 'DEV']);

const list = createRoute({
  method: 'get',
  path: '/',
  tags: tag,
  summary: 'List task services, newest first',
  request: { query: z.object({ ...pagingQuery, enabled: boolParam.optional() }) },
  responses: {
    200: jsonContent(Page('TaskServicePage', TaskServiceSchema), 'A page of task services'),
    ...errorResponses(400),
    ...readErrors(),
  },
});
const get = getOneRoute({ tags: tag, what: 'task service', schema: TaskServiceSchema, params: params });
const create = createRoute({
  method: 'post',
  path: '/',
  tags: tag,
  summary: 'Register a task service (ADMIN or DEV)',
  security: needsToken,
  middleware: writer,
  request: { headers: idempotencyHeader('service'), body: jsonBody(createBody) },
  responses: {
    201: jsonContent(
      TaskServiceSchema,
      'The registered service (or the one registered earlier with the same key)',
    ),
    ...writeErrors(),
    ...keyReused,
    ...errorResponses(409),
  },
});
const update = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: tag,
  summary: 'Change a task service (ADMIN or DEV); a new URL is checked like on registration',
  security: needsToken,
  middleware: writer,
  request: { params, body: jsonBody(updateBody) },
  responses: {
    200: jsonContent(TaskServiceSchema, 'The changed service'),
    ...writeErrors(),
    ...errorResponses(404, 409),
  },
});
const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: tag,
  summary: 'Remove a task service (ADMIN or DEV); past tasks keep pointing at it',
  security: needsToken,
  middleware: writer,
  request: { params },
  responses: { 204: { description: 'Removed' }, ...errorResponses(401, 403, 404, 503) },
});

export function taskServiceRoutes(deps: GatewayDeps) {
  const { db, config } = deps;

  return routes()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const where = and(
        eq(taskServices.deleted, false),
        q.enabled === undefined ? undefined : eq(taskServices.enabled, q.enabled),
      );
      return c.json(
        await pageOf(
          config.PUBLIC_URL,
          c.req.url,
          q,
          db
            .select()
            .from(taskServices)
            .where(where)
            .orderBy(desc(taskServices.createdAt), desc(taskServices.kfId))
            .limit(q.limit)
            .offset(q.offset),
          db.select({ n: count() }).from(taskServices).where(where),
          (r) => taskServiceJson(r),
        ),
        200,
      );
    })
    .openapi(get, async (c) =>
      c.json(taskServiceJson(await findTaskService(deps, c.req.valid('param').id)), 200),
    )
    .openapi(create, async (c) => {
      const body = c.req.valid('json');
      const created = await createOnce(
        db,
        { scope: 'task-services', key: idempotencyKeyOf(c), body, caller: c.get('principal')?.subject },
        {
          prepare: () => checkNewTaskService(deps, body),
          create: async (tx) => {
            const row = await insertTaskService(tx, body);
            return { id: row.kfId, body: taskServiceJson(row) };
          },
        },
      );
      return c.json(created.body, created.status as 201);
    })
    .openapi(update, async (c) => {
      const row = await updateTaskService(deps, c.req.valid('param').id, c.req.valid('json'));
      return c.json(taskServiceJson(row), 200);
    })
    .openapi(remove, async (c) => {
      await removeTaskService(deps, c.req.valid('param').id);
      return c.body(null, 204);
    });
}
