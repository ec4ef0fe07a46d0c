import { createRoute, z } from '@hono/zod-openapi';
import { and, count, desc, eq } from 'drizzle-orm';
import { releaseNoteJson } from '../../domain/representations';
import { urls } from '../../domain/urls';
import { releaseNotes } from '../../infra/db/schema';
import {
  createReleaseNote,
  findReleaseNote,
  removeReleaseNote,
  updateReleaseNote,
} from '../features/release-notes/commands';
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
  ref,
  routes,
  writeErrors,
} from '../http/openapi';
import { idFromRef, pageOf, pagingQuery } from '../http/paging';
import { storableText } from '../http/validation';

const related = (example: string) =>
  storableText(z.string().min(1).max(300))
    .transform(idFromRef)
    .openapi({ description: 'absolute URL or bare kf_id', example });
const description = storableText(z.string().trim().min(1, 'This field may not be blank.').max(20_000));
export const createBody = z
  .object({
    description,
    release: related('RE_3G2409A2'),
    study: related('SD_ABCDEF12'),
    author: storableText(z.string().max(100)).default(''),
  })
  .openapi('ReleaseNoteCreate');
export const updateBody = z.object({ description }).partial().openapi('ReleaseNoteUpdate');

export const ReleaseNoteSchema = z
  .object({
    kf_id: z.string().openapi({ example: 'RN_3G2409A2' }),
    description: z.string(),
    author: z.string(),
    created_at: datetime(),
    release: ref('https://coordinator.example.org/releases/RE_3G2409A2'),
    study: ref('https://coordinator.example.org/studies/SD_ABCDEF12'),
  })
  .openapi('ReleaseNote');

const tag = ['release-notes'];
const params = IdParam('RN_3G2409A2');
const admin = requireRole(['ADMIN']);

const list = createRoute({
  method: 'get',
  path: '/',
  tags: tag,
  summary: 'List release notes, newest first',
  request: {
    query: z.object({
      ...pagingQuery,
      release: related('RE_3G2409A2').optional(),
      study: related('SD_ABCDEF12').optional(),
    }),
  },
  responses: {
    200: jsonContent(Page('ReleaseNotePage', ReleaseNoteSchema), 'A page of release notes'),
    ...errorResponses(400),
    ...readErrors(),
  },
});
const get = getOneRoute({ tags: tag, what: 'release note', schema: ReleaseNoteSchema, params: params });
const create = createRoute({
  method: 'post',
  path: '/',
  tags: tag,
  summary: 'Write a note on a study of a release (ADMIN)',
  security: needsToken,
  middleware: admin,
  request: { headers: idempotencyHeader('note'), body: jsonBody(createBody) },
  responses: {
    201: jsonContent(ReleaseNoteSchema, 'The new note (or the one written earlier with the same key)'),
    ...writeErrors(),
    ...keyReused,
  },
});
const update = createRoute({
  method: 'patch',
  path: '/{id}',
  tags: tag,
  summary: 'Change the text of a note (ADMIN)',
  security: needsToken,
  middleware: admin,
  request: { params, body: jsonBody(updateBody) },
  responses: {
    200: jsonContent(ReleaseNoteSchema, 'The changed note'),
    ...writeErrors(),
    ...errorResponses(404),
  },
});
const remove = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: tag,
  summary: 'Delete a note (ADMIN)',
  security: needsToken,
  middleware: admin,
  request: { params },
  responses: { 204: { description: 'Deleted' }, ...errorResponses(401, 403, 404, 503) },
});

export function releaseNoteRoutes(deps: GatewayDeps) {
  const { db, config } = deps;
  const u = urls(config);
  return routes()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const where = and(
        q.release ? eq(releaseNotes.releaseId, q.release) : undefined,
        q.study ? eq(releaseNotes.studyId, q.study) : undefined,
      );
      return c.json(
        await pageOf(
          config.PUBLIC_URL,
          c.req.url,
          q,
          db
            .select()
            .from(releaseNotes)
            .where(where)
            .orderBy(desc(releaseNotes.createdAt), desc(releaseNotes.kfId))
            .limit(q.limit)
            .offset(q.offset),
          db.select({ n: count() }).from(releaseNotes).where(where),
          (r) => releaseNoteJson(r, u),
        ),
        200,
      );
    })
    .openapi(get, async (c) =>
      c.json(releaseNoteJson(await findReleaseNote(deps, c.req.valid('param').id), u), 200),
    )
    .openapi(create, async (c) => {
      const body = c.req.valid('json');
      const created = await createOnce(
        db,
        { scope: 'release-notes', key: idempotencyKeyOf(c), body, caller: c.get('principal')?.subject },
        {
          create: async (tx) => {
            const row = await createReleaseNote({ db: tx }, body);
            return { id: row.kfId, body: releaseNoteJson(row, u) };
          },
        },
      );
      return c.json(created.body, created.status as 201);
    })
    .openapi(update, async (c) => {
      const row = await updateReleaseNote(deps, c.req.valid('param').id, c.req.valid('json'));
      return c.json(releaseNoteJson(row, u), 200);
    })
    .openapi(remove, async (c) => {
      await removeReleaseNote(deps, c.req.valid('param').id);
      return c.body(null, 204);
    });
}
