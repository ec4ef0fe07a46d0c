import { createRoute, z } from '@hono/zod-openapi';
import { count, desc, eq, sql } from 'drizzle-orm';
import { NotFound } from '../../domain/errors';
import { releaseJson } from '../../domain/representations';
import { iso, urls } from '../../domain/urls';
import type { Db, Tx } from '../../infra/db/client';
import { releaseStudies, releases, studies } from '../../infra/db/schema';
import { withRelations } from '../features/releases/queries';
import { requireRole } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { ApiError } from '../http/errors';
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
import { page, pagingQuery } from '../http/paging';
import { storableText } from '../http/validation';
import { ReleaseSchema } from './releases';

const STUDY_ID = /^SD_[0-9A-Z]{8}$/;

/** A study with the versions of the releases that contain it (newest, and newest published). */
function selectStudies(db: Db) {
  // the outer column is spelled out: drizzle renders ${studies.kfId} unqualified, which would bind to r.kf_id
  const newest = (extra: ReturnType<typeof sql>, column: ReturnType<typeof sql>) =>
    sql`(select ${column} from ${releases} r join ${releaseStudies} rs on rs.release_id = r.kf_id
         where rs.study_id = "studies"."kf_id" ${extra} order by r.seq desc limit 1)`;
  return db
    .select({
      study: studies,
      version: newest(sql``, sql`r.version`).mapWith(String),
      lastPubVersion: newest(sql`and r.state = 'published'`, sql`r.version`).mapWith(String),
      lastPubDate: newest(sql`and r.state = 'published'`, sql`r.published_at`),
    })
    .from(studies);
}

type StudyRecord = Awaited<ReturnType<ReturnType<typeof selectStudies>['where']>>[number];

function studyJson(s: StudyRecord) {
  return {
    kf_id: s.study.kfId,
    name: s.study.name,
    version: s.version ?? null,
    visible: s.study.visible,
    last_pub_version: s.lastPubVersion ?? null,
    last_pub_date: iso(s.lastPubDate as string | null),
    deleted: s.study.deleted,
    created_at: iso(s.study.createdAt),
  };
}

const createBody = z
  .object({
    kf_id: z
      .string()
      .regex(STUDY_ID, 'A study id looks like SD_ABCDEFGH.')
      .openapi({ example: 'SD_ABCDEF12' }),
    name: storableText(z.string().max(500)).default(''),
    visible: z.boolean().default(true),
  })
  .openapi('StudyCreate');

export const StudySchema = z
  .object({
    kf_id: z.string().openapi({ example: 'SD_ABCDEF12' }),
    name: z.string(),
    version: z.string().nullable().openapi({ description: 'version of the newest release containing it' }),
    visible: z.boolean(),
    last_pub_version: z
      .string()
      .nullable()
      .openapi({ description: 'version of the newest published release containing it' }),
    last_pub_date: datetime().nullable(),
    deleted: z.boolean(),
    created_at: datetime(),
  })
  .openapi('Study');

const tag = ['studies'];
const params = IdParam('SD_ABCDEF12');

const list = createRoute({
  method: 'get',
  path: '/',
  tags: tag,
  summary: 'List studies, newest first',
  request: { query: z.object(pagingQuery) },
  responses: {
    200: jsonContent(Page('StudyPage', StudySchema), 'A page of studies'),
    ...errorResponses(400),
    ...readErrors(),
  },
});
const get = getOneRoute({ tags: tag, what: 'study', schema: StudySchema, params: params });
const releasesOf = createRoute({
  method: 'get',
  path: '/{id}/releases',
  tags: tag,
  summary: 'The releases containing a study, newest first',
  request: { params, query: z.object(pagingQuery) },
  responses: {
    200: jsonContent(Page('ReleasePage', ReleaseSchema), 'A page of releases'),
    ...errorResponses(400, 401, 404, 503),
  },
});
const create = createRoute({
  method: 'post',
  path: '/',
  tags: tag,
  summary: 'Register a study by hand (ADMIN or DEV; an extension of the original API)',
  security: needsToken,
  middleware: requireRole(['ADMIN', 'DEV']),
  request: { headers: idempotencyHeader('study'), body: jsonBody(createBody) },
  responses: {
    201: jsonContent(StudySchema, 'The registered study (or the one registered earlier with the same key)'),
    ...writeErrors(),
    ...keyReused,
  },
});

export function studyRoutes(deps: GatewayDeps) {
  const { db, config } = deps;
  const u = urls(config);
  const find = async (id: string, from: Db | Tx = db) => {
    const [row] = await selectStudies(from).where(eq(studies.kfId, id));
    if (!row) throw NotFound();
    return row;
  };
  return routes()
    .openapi(list, async (c) => {
      const q = c.req.valid('query');
      const [rows, [total]] = await Promise.all([
        selectStudies(db)
          .orderBy(desc(studies.createdAt), desc(studies.kfId))
          .limit(q.limit)
          .offset(q.offset),
        db.select({ n: count() }).from(studies),
      ]);
      return c.json(page(config.PUBLIC_URL, c.req.url, q, total!.n, rows.map(studyJson)), 200);
    })
    .openapi(get, async (c) => c.json(studyJson(await find(c.req.valid('param').id)), 200))
    .openapi(releasesOf, async (c) => {
      const q = c.req.valid('query');
      const study = await find(c.req.valid('param').id);
      const where = eq(releaseStudies.studyId, study.study.kfId);
      const [rows, [total]] = await Promise.all([
        db
          .select({ release: releases })
          .from(releases)
          .innerJoin(releaseStudies, eq(releaseStudies.releaseId, releases.kfId))
          .where(where)
          .orderBy(desc(releases.seq))
          .limit(q.limit)
          .offset(q.offset),
        db.select({ n: count() }).from(releaseStudies).where(where),
      ]);
      const records = await withRelations(
        db,
        rows.map((r) => r.release),
      );
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
    .openapi(create, async (c) => {
      const body = c.req.valid('json');
      const created = await createOnce(
        db,
        { scope: 'studies', key: idempotencyKeyOf(c), body, caller: c.get('principal')?.subject },
        {
          create: async (tx) => {
            const inserted = await tx
              .insert(studies)
              .values({ kfId: body.kf_id, name: body.name, visible: body.visible })
              .onConflictDoNothing()
              .returning();
            if (inserted.length === 0)
              throw new ApiError(400, { kf_id: ['A study with this kf_id already exists.'] });
            return { id: body.kf_id, body: studyJson(await find(body.kf_id, tx)) };
          },
        },
      );
      return c.json(created.body, created.status as 201);
    });
}
