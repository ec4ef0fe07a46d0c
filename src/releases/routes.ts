import { and, count, desc, eq, inArray } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import { hasRole, type Principal } from '../auth/principal';
import type { IntentReply } from '../bus/messages';
import { releases, studies } from '../db/schema';
import { type AppEnv, requireRole } from '../http/auth';
import { type GatewayDeps, urls } from '../http/context';
import { ApiError, Conflict, Forbidden, Invalid, NotFound, Unauthorized } from '../http/errors';
import { page, pagingQuery } from '../http/paging';
import { validate } from '../http/validation';
import { isFinalRelease, RELEASE_STATES, type ReleaseState } from '../lifecycle/states';
import { newKfId, newMessageId } from '../shared/ids';
import type { TaskRecord } from '../tasks/repo';
import { type ReleaseRow, releaseJson, withRelations } from './repo';

const tags = z.array(z.string().max(50, 'Ensure each tag has no more than 50 characters.')).max(100);

const createBody = z.object({
  name: z.string().trim().min(1, 'This field may not be blank.').max(256),
  description: z.string().max(5000).default(''),
  studies: z.array(z.string().min(1).max(100)).min(1, 'A release needs at least one study.').max(10_000),
  tags: tags.default([]),
  author: z.string().max(100).default(''),
  is_major: z.boolean().default(false),
});

const updateBody = z
  .object({
    name: z.string().trim().min(1, 'This field may not be blank.').max(256),
    description: z.string().max(5000),
    tags,
    is_major: z.boolean(),
  })
  .partial();

const idempotencyKey = z.string().min(1).max(200).optional();

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

  return new Hono<AppEnv>()
    .get(
      '/',
      validate('query', z.object({ ...pagingQuery, state: z.enum(RELEASE_STATES).optional() })),
      async (c) => {
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
        );
      },
    )
    .get('/:id', async (c) => c.json(await show(c.req.param('id'))))
    .post('/', validate('json', createBody), async (c) => {
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
    .patch('/:id', requireRole(['ADMIN']), validate('json', updateBody), async (c) => {
      const body = c.req.valid('json');
      const row = await findRow(c.req.param('id'));
      const set = {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
        ...(body.tags !== undefined ? { tags: body.tags } : {}),
        ...(body.is_major !== undefined ? { isMajor: body.is_major } : {}),
      };
      if (Object.keys(set).length > 0) await db.update(releases).set(set).where(eq(releases.kfId, row.kfId));
      return c.json(await show(row.kfId));
    })
    .delete('/:id', requireRole(['ADMIN']), async (c) => {
      const row = await findRow(c.req.param('id'));
      if (isFinalRelease(row.state as ReleaseState))
        throw Conflict(`The release in state ${row.state} may not be canceled.`);
      const reply = await intents.send({ type: 'release.cancel', id: newMessageId(), releaseId: row.kfId });
      if (!reply) return c.json({ ...(await show(row.kfId)), detail: 'Cancel accepted.' }, 202);
      failOn(reply);
      return c.json(await show(row.kfId));
    })
    .post('/:id/publish', requireRole(['ADMIN']), async (c) => {
      const row = await findRow(c.req.param('id'));
      if (row.state !== 'staged') throw Conflict(`The release in state ${row.state} may not be published.`);
      const reply = await intents.send({ type: 'release.publish', id: newMessageId(), releaseId: row.kfId });
      if (!reply) return c.json({ message: 'publishing', detail: 'Accepted.' }, 202);
      failOn(reply);
      return c.json({ message: 'publishing' });
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
