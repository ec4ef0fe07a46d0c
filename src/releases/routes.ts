import { createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq, inArray } from 'drizzle-orm';
import { hasRole, type Principal } from '../auth/principal';
import type { IntentReply } from '../bus/messages';
import { releases, studies } from '../db/schema';
import { requireRole } from '../http/auth';
import { type GatewayDeps, urls } from '../http/context';
import { ApiError, Conflict, Forbidden, Invalid, NotFound, Unauthorized } from '../http/errors';
import {
  datetime,
  errorResponses,
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
import { isFinalRelease, RELEASE_STATES, type ReleaseState } from '../lifecycle/states';
import { ReleaseNoteSchema } from '../release-notes/routes';
import { newKfId, newMessageId } from '../shared/ids';
import type { TaskRecord } from '../tasks/repo';
import { TaskSchema } from '../tasks/routes';
import { type ReleaseRow, releaseJson, withRelations } from './repo';

const tags = z.array(z.string().max(50, 'Ensure each tag has no more than 50 characters.')).max(100);

const createBody = z
  .object({
    name: z.string().trim().min(1, 'This field may not be blank.').max(256),
    description: z.string().max(5000).default(''),
    studies: z
      .array(z.string().min(1).max(100))
      .min(1, 'A release needs at least one study.')
      .max(10_000)
      .openapi({ description: 'study kf_ids; each must exist', example: ['SD_ABCDEF12'] }),
    tags: tags.default([]),
    author: z.string().max(100).default(''),
    is_major: z.boolean().default(false),
  })
  .openapi('ReleaseCreate');

const updateBody = z
  .object({
    name: z.string().trim().min(1, 'This field may not be blank.').max(256),
    description: z.string().max(5000),
    tags,
    is_major: z.boolean(),
  })
  .partial()
  .openapi('ReleaseUpdate');

const idempotencyKey = z.string().min(1).max(200).optional();

/** A release, fields in the order of the original API. */
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
const get = createRoute({
  method: 'get',
  path: '/{id}',
  tags: tag,
  summary: 'One release',
  request: { params },
  responses: { 200: jsonContent(ReleaseSchema, 'The release'), ...errorResponses(401, 404, 503) },
});
const create = createRoute({
  method: 'post',
  path: '/',
  tags: tag,
  summary: 'Start a release (ADMIN, or a user whose groups hold every study)',
  description:
    'Creates the release in state `waiting`; the coordinator begins it at once. The same `Idempotency-Key` returns the same release.',
  security: needsToken,
  request: {
    headers: z.object({
      'idempotency-key': z
        .string()
        .optional()
        .openapi({ description: 'makes retries safe: the same key returns the same release' }),
    }),
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
    ...writeErrors(),
    ...errorResponses(404),
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
  const { db, config, intents } = deps;
  const u = urls(config);

  const findRow = async (id: string): Promise<ReleaseRow> => {
    const [row] = await db.select().from(releases).where(eq(releases.kfId, id));
    if (!row) throw NotFound();
    return row;
  };
  const show = async (id: string) => {
    const [record] = await withRelations(db, [await findRow(id)]);
    return releaseJson(record!, u);
  };
  const failOn = (reply: IntentReply) => {
    if (reply.status >= 400) throw new ApiError(reply.status as 400, reply.body as Record<string, unknown>);
  };

  return routes()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const where = q.state ? eq(releases.state, q.state) : undefined;
      const [rows, [total]] = await Promise.all([
        db.select().from(releases).where(where).orderBy(desc(releases.seq)).limit(q.limit).offset(q.offset),
        db.select({ n: count() }).from(releases).where(where),
      ]);
      const records = await withRelations(db, rows);
      return c.json(
        page(
          config.PUBLIC_URL,
          c.req.url,
          q,
          total!.n,
          records.map((r) => releaseJson(r, u)),
        ),
        200,
      );
    })
    .openapi(get, async (c) => c.json(await show(c.req.valid('param').id), 200))
    .openapi(create, async (c) => {
      const body = c.req.valid('json');
      const principal = c.get('principal');
      const key = idempotencyKey.safeParse(c.req.header('idempotency-key') || undefined);
      if (!key.success) throw Invalid({ 'Idempotency-Key': ['Must be 1 to 200 characters.'] });
      if (key.data) {
        const [existing] = await db.select().from(releases).where(eq(releases.idempotencyKey, key.data));
        if (existing) return c.json(await show(existing.kfId), 201);
      }
      const wanted = [...new Set(body.studies)];
      const known = await db
        .select({ kfId: studies.kfId })
        .from(studies)
        .where(and(inArray(studies.kfId, wanted), eq(studies.deleted, false)));
      const missing = wanted.filter((s) => !known.some((k) => k.kfId === s));
      if (missing.length > 0) throw Invalid({ studies: missing.map((s) => `Study ${s} does not exist.`) });
      mayStartRelease(principal, wanted);
      const kfId = newKfId('RE');
      const reply = await intents.send({
        type: 'release.create',
        id: key.data ? `create:${key.data}` : newMessageId(),
        release: {
          kfId,
          name: body.name,
          description: body.description,
          studies: wanted,
          tags: body.tags,
          author: body.author || principal?.username || '',
          isMajor: body.is_major,
          idempotencyKey: key.data,
        },
      });
      if (!reply) {
        return c.json(
          { kf_id: kfId, state: 'waiting', detail: 'Accepted; the coordinator will start it shortly.' },
          202,
        );
      }
      failOn(reply);
      const r = reply.body as {
        releaseId: string;
        snapshot?: { release: ReleaseRow; studies: string[]; tasks: TaskRecord[] };
      };
      if (!r.snapshot) return c.json(await show(r.releaseId), 201);
      return c.json(releaseJson({ ...r.snapshot, notes: [] }, u), 201);
    })
    .openapi(update, async (c) => {
      const body = c.req.valid('json');
      const row = await findRow(c.req.valid('param').id);
      const set = {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
        ...(body.tags !== undefined ? { tags: body.tags } : {}),
        ...(body.is_major !== undefined ? { isMajor: body.is_major } : {}),
      };
      if (Object.keys(set).length > 0) await db.update(releases).set(set).where(eq(releases.kfId, row.kfId));
      return c.json(await show(row.kfId), 200);
    })
    .openapi(cancel, async (c) => {
      const row = await findRow(c.req.valid('param').id);
      if (isFinalRelease(row.state as ReleaseState))
        throw Conflict(`The release in state ${row.state} may not be canceled.`);
      const reply = await intents.send({ type: 'release.cancel', id: newMessageId(), releaseId: row.kfId });
      if (!reply) return c.json({ ...(await show(row.kfId)), detail: 'Cancel accepted.' }, 202);
      failOn(reply);
      return c.json(await show(row.kfId), 200);
    })
    .openapi(publish, async (c) => {
      const row = await findRow(c.req.valid('param').id);
      if (row.state !== 'staged') throw Conflict(`The release in state ${row.state} may not be published.`);
      const reply = await intents.send({ type: 'release.publish', id: newMessageId(), releaseId: row.kfId });
      if (!reply) return c.json({ message: 'publishing' as const, detail: 'Accepted.' }, 202);
      failOn(reply);
      return c.json({ message: 'publishing' as const }, 200);
    });
}

/** ADMIN, or a user whose groups hold every study of the release. */
function mayStartRelease(p: Principal | null, studies: string[]) {
  if (!p) throw Unauthorized('Authentication credentials were not provided.');
  if (hasRole(p, 'ADMIN')) return;
  const missing = studies.filter((s) => !p.groups.includes(s));
  if (missing.length > 0) {
    throw Forbidden(
      `You may only start releases of your own studies (not a member of ${missing.join(', ')}).`,
    );
  }
}
