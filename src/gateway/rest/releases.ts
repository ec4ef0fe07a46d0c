import { createRoute, z } from '@hono/zod-openapi';
import { RELEASE_STATES } from '../../domain/lifecycle/states';
import { releaseJson } from '../../domain/representations';
import { urls } from '../../domain/urls';
import {
  cancelRelease,
  publishRelease,
  releaseRecord,
  startRelease,
  updateRelease,
} from '../features/releases/commands';
import { listReleases } from '../features/releases/queries';
import { requireRole } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { idempotencyHeader, idempotencyKeyOf } from '../http/idempotency';
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
import { page, pagingQuery } from '../http/paging';
import { storableText } from '../http/validation';
import { ReleaseNoteSchema } from './release-notes';
import { StatesAt, TaskSchema } from './tasks';

const tags = z
  .array(storableText(z.string().max(50, 'Ensure each tag has no more than 50 characters.')))
  .max(100);
const name = storableText(z.string().trim().min(1, 'This field may not be blank.').max(256));
const description = storableText(z.string().max(5000));

export const createBody = z
  .object({
    name,
    description: description.default(''),
    studies: z
      .array(storableText(z.string().min(1).max(100)))
      .min(1, 'A release needs at least one study.')
      .max(10_000)
      .openapi({ description: 'study kf_ids; each must exist', example: ['SD_ABCDEF12'] }),
    tags: tags.default([]),
    author: storableText(z.string().max(100)).default(''),
    is_major: z.boolean().default(false),
  })
  .openapi('ReleaseCreate');

export const updateBody = z
  .object({
    name,
    description,
    tags,
    is_major: z.boolean(),
  })
  .partial()
  .openapi('ReleaseUpdate');

const Halt = z
  .object({
    reason: z.enum(['failed', 'canceled']),
    task: z.string().nullable().openapi({ description: 'the task that halted it (URL), if one did' }),
    task_service: z.string().nullable().openapi({ description: 'its task service (URL)' }),
    service_name: z.string().nullable(),
    message: z.string().openapi({ description: "the service's answer or the error, trimmed" }),
    canceled_by: z.string().nullable().openapi({ description: 'who asked for the cancel' }),
    at: datetime(),
  })
  .openapi('ReleaseHalt');

/** A release, fields in the order of the original API (then the ones this coordinator adds). */
export const ReleaseSchema = z
  .object({
    kf_id: z.string().openapi({ example: 'RE_3G2409A2' }),
    name: z.string(),
    description: z.string(),
    notes: z.array(ReleaseNoteSchema),
    state: z.string().openapi({ enum: [...RELEASE_STATES], example: 'waiting' }),
    studies: z.array(z.string()).openapi({ example: ['SD_ABCDEF12'] }),
    tasks: z.array(TaskSchema),
    version: z.string().openapi({ example: '0.1.1', description: 'read-only' }),
    created_at: datetime(),
    tags: z.array(z.string()),
    author: z.string(),
    is_major: z.boolean(),
    halt: Halt.nullable().openapi({
      description: 'why the release halted; null unless it was canceled or failed',
    }),
    published_by: z.string().nullable().openapi({ description: 'who asked to publish it' }),
    publish_requested_at: datetime().nullable(),
    published_at: datetime().nullable(),
    states_at: StatesAt,
  })
  .openapi('Release');

const Accepted = z
  .object({ kf_id: z.string(), state: z.string(), detail: z.string() })
  .openapi('ReleaseAccepted');
const Publishing = z.object({ message: z.literal('publishing'), detail: z.string().optional() });
const CancelAccepted = ReleaseSchema.extend({ detail: z.string() });

const tag = ['releases'];
const params = IdParam('RE_3G2409A2');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: tag,
  summary: 'List releases, newest first',
  request: { query: z.object({ ...pagingQuery, state: z.enum(RELEASE_STATES).optional() }) },
  responses: {
    200: jsonContent(Page('ReleasePage', ReleaseSchema), 'A page of releases'),
    400: errorResponses(400)[400],
    ...readErrors(),
  },
});
const get = getOneRoute({ tags: tag, what: 'release', schema: ReleaseSchema, params: params });
const create = createRoute({
  method: 'post',
  path: '/',
  tags: tag,
  summary: 'Start a release (ADMIN, or a user whose groups hold every study)',
  description:
    'Creates the release in state `waiting`; the coordinator begins it at once. The same `Idempotency-Key` returns the same release.',
  security: needsToken,
  request: {
    headers: idempotencyHeader('release'),
    body: jsonBody(createBody),
  },
  responses: {
    201: jsonContent(ReleaseSchema, 'The new release (or the one created earlier with the same key)'),
    202: jsonContent(Accepted, 'Stored; the coordinator did not answer in time and will start it'),
    ...writeErrors(),
  },
});
const update = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: tag,
  summary: 'Change name, description, tags or is_major (ADMIN)',
  security: needsToken,
  middleware: requireRole(['ADMIN']),
  request: { params, body: jsonBody(updateBody) },
  responses: {
    200: jsonContent(ReleaseSchema, 'The changed release'),
    202: jsonContent(
      ReleaseSchema.extend({ detail: z.string() }),
      'Name, description and tags changed; the is_major change is stored and the coordinator will apply it',
    ),
    ...writeErrors(),
    ...errorResponses(404, 409),
  },
});
const cancel = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: tag,
  summary: 'Cancel a release (ADMIN); releases are never deleted',
  security: needsToken,
  middleware: requireRole(['ADMIN']),
  request: { params },
  responses: {
    200: jsonContent(ReleaseSchema, 'The release, now canceling'),
    202: jsonContent(CancelAccepted, 'Cancel stored; the coordinator will apply it'),
    ...errorResponses(401, 403, 404, 409, 503),
  },
});
const publish = createRoute({
  method: 'post',
  path: '/{id}/publish',
  tags: tag,
  summary: 'Publish a staged release (ADMIN)',
  security: needsToken,
  middleware: requireRole(['ADMIN']),
  request: { params },
  responses: {
    200: jsonContent(Publishing, 'Publishing has begun'),
    202: jsonContent(Publishing, 'Stored; the coordinator will apply it'),
    ...errorResponses(401, 403, 404, 409, 503),
  },
});

export function releaseRoutes(deps: GatewayDeps) {
  const { db, config } = deps;
  const u = urls(config);

  const show = async (id: string) => releaseJson(await releaseRecord(deps, id), u);

  return routes()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const { total, records } = await listReleases(db, { state: q.state }, q);
      return c.json(
        page(
          config.PUBLIC_URL,
          c.req.url,
          q,
          total,
          records.map((r) => releaseJson(r, u)),
        ),
        200,
      );
    })
    .openapi(get, async (c) => c.json(await show(c.req.valid('param').id), 200))
    .openapi(create, async (c) => {
      const body = c.req.valid('json');
      const result = await startRelease(
        deps,
        c.get('principal'),
        {
          name: body.name,
          description: body.description,
          studies: body.studies,
          tags: body.tags,
          author: body.author,
          isMajor: body.is_major,
        },
        { idempotencyKey: idempotencyKeyOf(c) },
      );
      if (result.status === 'accepted') {
        return c.json(
          {
            kf_id: result.releaseId,
            state: 'waiting',
            detail: 'Accepted; the coordinator will start it shortly.',
          },
          202,
        );
      }
      return c.json(releaseJson(result.record, u), 201);
    })
    .openapi(update, async (c) => {
      const body = c.req.valid('json');
      const result = await updateRelease(
        deps,
        c.req.valid('param').id,
        { name: body.name, description: body.description, tags: body.tags, isMajor: body.is_major },
        c.get('principal')?.username,
      );
      // 202: is_major is stored and the coordinator will apply it; the release shows it once applied
      if (result.accepted)
        return c.json({ ...(await show(result.releaseId)), detail: 'is_major change accepted.' }, 202);
      return c.json(await show(result.releaseId), 200);
    })
    .openapi(cancel, async (c) => {
      const result = await cancelRelease(deps, c.req.valid('param').id, c.get('principal')?.username);
      if (result.accepted)
        return c.json({ ...(await show(result.releaseId)), detail: 'Cancel accepted.' }, 202);
      return c.json(await show(result.releaseId), 200);
    })
    .openapi(publish, async (c) => {
      const result = await publishRelease(deps, c.req.valid('param').id, c.get('principal')?.username);
      if (result.accepted) return c.json({ message: 'publishing' as const, detail: 'Accepted.' }, 202);
      return c.json({ message: 'publishing' as const }, 200);
    });
}
