import { and, count, desc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import { releaseNotes, releaseStudies, releases } from '../db/schema';
import { type AppEnv, requireRole } from '../http/auth';
import { type GatewayDeps, urls } from '../http/context';
import { Invalid, NotFound } from '../http/errors';
import { idFromRef, page, pagingQuery } from '../http/paging';
import { validate } from '../http/validation';
import { newKfId } from '../shared/ids';
import { releaseNoteJson } from './repo';

const ref = z.string().min(1).max(300).transform(idFromRef);
const createBody = z.object({
  description: z.string().trim().min(1, 'This field may not be blank.').max(20_000),
  release: ref,
  study: ref,
  author: z.string().max(100).default(''),
});
const updateBody = z.object({ description: z.string().trim().min(1).max(20_000) }).partial();

export function releaseNoteRoutes(deps: GatewayDeps) {
  const { db, config } = deps;
  const u = urls(config);
  const find = async (id: string) => {
    const [row] = await db.select().from(releaseNotes).where(eq(releaseNotes.kfId, id));
    if (!row) throw NotFound();
    return row;
  };
  return new Hono<AppEnv>()
    .get(
      '/',
      validate('query', z.object({ ...pagingQuery, release: ref.optional(), study: ref.optional() })),
      async (c) => {
        const q = c.req.valid('query');
        const where = and(
          q.release ? eq(releaseNotes.releaseId, q.release) : undefined,
          q.study ? eq(releaseNotes.studyId, q.study) : undefined,
        );
        const [rows, [total]] = await Promise.all([
          db
            .select()
            .from(releaseNotes)
            .where(where)
            .orderBy(desc(releaseNotes.createdAt))
            .limit(q.limit)
            .offset(q.offset),
          db.select({ n: count() }).from(releaseNotes).where(where),
        ]);
        return c.json(
          page(
            config.PUBLIC_URL,
            c.req.url,
            q,
            total!.n,
            rows.map((r) => releaseNoteJson(r, u)),
          ),
        );
      },
    )
    .get('/:id', async (c) => c.json(releaseNoteJson(await find(c.req.param('id')), u)))
    .post('/', requireRole(['ADMIN']), validate('json', createBody), async (c) => {
      const body = c.req.valid('json');
      const [release] = await db
        .select({ kfId: releases.kfId })
        .from(releases)
        .where(eq(releases.kfId, body.release));
      if (!release) throw Invalid({ release: [`Release ${body.release} does not exist.`] });
      const [member] = await db
        .select()
        .from(releaseStudies)
        .where(and(eq(releaseStudies.releaseId, body.release), eq(releaseStudies.studyId, body.study)));
      if (!member) throw Invalid({ study: [`Study ${body.study} is not in release ${body.release}.`] });
      const [row] = await db
        .insert(releaseNotes)
        .values({
          kfId: newKfId('RN'),
          description: body.description,
          author: body.author,
          releaseId: body.release,
          studyId: body.study,
        })
        .returning();
      return c.json(releaseNoteJson(row!, u), 201);
    })
    .patch('/:id', requireRole(['ADMIN']), validate('json', updateBody), async (c) => {
      const body = c.req.valid('json');
      const note = await find(c.req.param('id'));
      if (body.description === undefined) return c.json(releaseNoteJson(note, u));
      const [row] = await db
        .update(releaseNotes)
        .set({ description: body.description })
        .where(eq(releaseNotes.kfId, note.kfId))
        .returning();
      return c.json(releaseNoteJson(row!, u));
    })
    .delete('/:id', requireRole(['ADMIN']), async (c) => {
      const note = await find(c.req.param('id'));
      await db.delete(releaseNotes).where(eq(releaseNotes.kfId, note.kfId));
      return c.body(null, 204);
    });
}
