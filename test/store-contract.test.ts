import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { eq, sql } from 'drizzle-orm';
import { type ApplyOptions, applyBatch, type Inbound } from '../src/coordinator/apply';
import {
  highestPublishedVersion,
  loadReleasesForUpdate,
  persistReleases,
} from '../src/coordinator/store/releases';
import { newKfId, newMessageId } from '../src/domain/ids';
import { nextVersion } from '../src/domain/lifecycle/lifecycle';
import { listReleases } from '../src/gateway/features/releases/queries';
import { insertTaskService } from '../src/gateway/features/task-services/commands';
import { taskById } from '../src/gateway/features/tasks/queries';
import { createOnce } from '../src/gateway/http/idempotency';
import type { Intent, StoredIntent } from '../src/infra/bus/messages';
import { busNames } from '../src/infra/bus/subjects';
import { type Db, openDatabase } from '../src/infra/db/client';
import { queryRows } from '../src/infra/db/rows';
import { intents, releases, studies, taskServices } from '../src/infra/db/schema';
import { createTestDatabase } from './support/database';
import { pgliteDatabase } from './support/in-process';

/*
 * The statements the coordinator store and the gateway read model use most, run the same way
 * against Postgres and against PGlite (the embedded database, and the one of the in-process API
 * tests): a release inserted with its tasks, state changes guarded by the state they were loaded
 * in, answers of stored intents, processed ids, version locks, lists with filters. A statement one
 * of them reads differently (a type, a cast, a JSON function) fails here, not in production.
 * With RC_TEST_SERVICES=none (npm run test:unit) only PGlite runs.
 */

interface Backend {
  name: string;
  /** why this backend does not run here, if it does not */
  skip?: string;
  open(): Promise<{ db: Db; close(): Promise<void> }>;
}

const BACKENDS: Backend[] = [
  { name: 'PGlite', open: pgliteDatabase },
  {
    name: 'Postgres',
    skip:
      process.env.RC_TEST_SERVICES === 'none'
        ? 'RC_TEST_SERVICES=none, unit mode has no Postgres; npm test runs it'
        : undefined,
    async open() {
      const test = await createTestDatabase('store_contract');
      const database = await openDatabase({ url: test.url, dataDir: '/nonexistent', poolSize: 4 });
      await database.migrate();
      return {
        db: database.db,
        async close() {
          await database.close();
          await test.drop();
        },
      };
    },
  },
];

const OPTIONS: ApplyOptions = {
  names: busNames('contract'),
  publicUrl: { PUBLIC_URL: 'http://rc.test' },
  poll: { jitter: 0.1 },
  releaseTimeoutMs: 3_600_000,
  timing: { firstPollMs: 1_000, pollIntervalMs: 30_000, outageToleranceMs: 90_000, hintIntervalMs: 1_000 },
  deadlines: { request: 15_000, start: 300_000, publish: 300_000 },
};
const STUDY = 'SD_00000001';

for (const backend of BACKENDS) {
  if (backend.skip) {
    // one line in the report saying why, instead of every test of the suite marked skipped
    test.skip(`${backend.name}: not run (${backend.skip})`, () => {});
    continue;
  }
  describe(backend.name, () => {
    let db: Db;
    let close: () => Promise<void>;

    beforeAll(async () => {
      ({ db, close } = await backend.open());
      await db.insert(studies).values({ kfId: STUDY, name: 'study' });
      for (const name of ['search', 'portal'])
        await insertTaskService(db, {
          name,
          url: `https://${name}.example.org`,
          description: '',
          author: '',
          enabled: true,
        });
    });
    afterAll(async () => {
      await close?.();
    });

    /** As the gateway does it: the intent stored, then applied by the coordinator. */
    async function applyStored(intent: StoredIntent) {
      await db.insert(intents).values({
        id: intent.id,
        type: intent.type,
        releaseId: intent.type === 'release.create' ? intent.release.kfId : intent.releaseId,
        body: intent,
      });
      return applyBatch(db, [{ id: intent.id, source: 'intent', intent, replyTo: 'contract' }], OPTIONS);
    }

    async function create(name: string) {
      const kfId = newKfId('RE');
      const outcome = await applyStored({
        type: 'release.create',
        id: newMessageId(),
        release: {
          kfId,
          name,
          description: '',
          studies: [STUDY],
          tags: ['t'],
          author: 'ann',
          isMajor: false,
        },
      });
      return { kfId, outcome };
    }

    test('a release is inserted with a task per enabled service, then begun in the same transaction', async () => {
      const { kfId, outcome } = await create('first');
      expect(outcome.replies[0]!.reply.status).toBe(201);
      expect(outcome.transitions.map((t) => `${t.entity}:${t.to}`)).toContain('release:initializing');
      const [row] = await db.select().from(releases).where(eq(releases.kfId, kfId));
      expect(row).toMatchObject({ name: 'first', state: 'initializing', version: '0.0.0', tags: ['t'] });
      expect(row!.createdAt).toBeInstanceOf(Date);
      expect(Object.keys(row!.statesAt).sort()).toEqual(['initializing', 'waiting']);
      expect(row!.deadlineAt!.getTime()).toBeGreaterThan(row!.createdAt.getTime());
      // commands (one chunk: the release's initialize fan-out) and notifications wait in one outbox row
      const chunks = outcome.outbox
        .map((m) => JSON.parse(m.data) as { kind?: string; commands?: Array<{ action: string }> })
        .filter((p) => p.kind === 'chunk');
      expect(chunks).toHaveLength(1);
      expect(chunks[0]!.commands!.map((c) => c.action)).toEqual(['initialize', 'initialize']);
    });

    test('a refused callback leaves its task row as it was (nothing of the refused event is written)', async () => {
      const { kfId } = await create('refused report');
      // the release runs; its first task has an unconfirmed state and a service unreachable since a while
      await db.execute(sql`update releases set state = 'running' where kf_id = ${kfId}`);
      await db.execute(sql`update tasks set state = 'running', awaiting = null where release_id = ${kfId}`);
      const [first] = await queryRows<{ kf_id: string }>(
        db,
        sql`update tasks set unconfirmed_until = now() + interval '1 hour', unreachable_since = now() - interval '10 seconds'
            where kf_id = (select kf_id from tasks where release_id = ${kfId} order by seq limit 1) returning kf_id`,
      );
      const taskId = first!.kf_id;
      const rows = () => queryRows(db, sql`select * from tasks where release_id = ${kfId} order by seq`);
      const before = await rows();
      const id = newMessageId();
      const report: Intent = { type: 'task.report', id, releaseId: kfId, taskId, state: 'published' };
      const out = await applyBatch(db, [{ id, source: 'intent', intent: report, replyTo: 'gw' }], OPTIONS);
      expect(out.replies[0]!.reply.status).toBe(409);
      expect(await rows()).toEqual(before);
    });

    test('versions follow each other (the version lock serialises them)', async () => {
      const a = await create('a');
      const b = await create('b');
      const versions = await db.select({ kfId: releases.kfId, version: releases.version }).from(releases);
      const of = (id: string) => versions.find((v) => v.kfId === id)!.version;
      expect(of(b.kfId)).toBe(nextVersion(of(a.kfId)));
    });

    test('the answer of a stored intent is kept with it, without the snapshot', async () => {
      const { kfId, outcome } = await create('answered');
      expect(outcome.replies[0]!.reply.body).toMatchObject({ releaseId: kfId, snapshot: expect.any(Object) });
      const [stored] = await db.select().from(intents).where(eq(intents.releaseId, kfId));
      expect(stored!.appliedAt).toBeInstanceOf(Date);
      expect(stored!.reply).toEqual({ status: 201, body: { releaseId: kfId } });
    });

    test('a message applied once is a duplicate the second time', async () => {
      const { kfId } = await create('cancel me');
      const cancel: Intent = { type: 'release.cancel', id: newMessageId(), releaseId: kfId, actor: 'ann' };
      const item: Inbound = { id: cancel.id, source: 'intent', intent: cancel };
      const first = await applyBatch(db, [item], OPTIONS);
      const second = await applyBatch(db, [item], OPTIONS);
      expect([first.applied, first.duplicates]).toEqual([1, 0]);
      expect([second.applied, second.duplicates]).toEqual([0, 1]);
      const [row] = await db.select().from(releases).where(eq(releases.kfId, kfId));
      expect(row).toMatchObject({ state: 'canceling', haltReason: 'cancel', haltedBy: 'ann' });
    });

    test('a state change is written only if the release is still in the state it was loaded in', async () => {
      const { kfId } = await create('guarded');
      // loaded as initializing, but another writer moved it meanwhile: the update touches nothing and throws
      await expect(
        db.transaction(async (tx) => {
          const { loaded } = await loadReleasesForUpdate(tx, [kfId], OPTIONS.deadlines);
          const l = loaded.get(kfId)!;
          l.original = { ...l.original, state: 'running' };
          l.view = { ...l.view, state: 'canceling' };
          await persistReleases(tx, [l], OPTIONS.poll);
        }),
      ).rejects.toThrow('changed under us');
      expect((await db.select().from(releases).where(eq(releases.kfId, kfId)))[0]!.state).toBe(
        'initializing',
      );

      // loaded in the state it is in: written, with the time it entered the new state
      await db.transaction(async (tx) => {
        const { loaded, now } = await loadReleasesForUpdate(tx, [kfId], OPTIONS.deadlines);
        expect(Math.abs(now - Date.now())).toBeLessThan(60_000); // the database clock, in ms
        const l = loaded.get(kfId)!;
        expect(l.view.tasks).toHaveLength(2);
        expect(l.studies).toEqual([STUDY]);
        l.view = { ...l.view, state: 'canceling' };
        l.entered.set(kfId, ['canceling']);
        await persistReleases(tx, [l], OPTIONS.poll);
      });
      const [row] = await db.select().from(releases).where(eq(releases.kfId, kfId));
      expect(row!.state).toBe('canceling');
      expect(Object.keys(row!.statesAt)).toContain('canceling');
    });

    test('the highest published version compares numbers, not text', async () => {
      expect(await db.transaction((tx) => highestPublishedVersion(tx))).toBeNull();
      const a = await create('published a');
      const b = await create('published b');
      await db
        .update(releases)
        .set({ state: 'published', version: '0.9.0' })
        .where(eq(releases.kfId, a.kfId));
      await db
        .update(releases)
        .set({ state: 'published', version: '0.10.0' })
        .where(eq(releases.kfId, b.kfId));
      expect(await db.transaction((tx) => highestPublishedVersion(tx))).toBe('0.10.0');
      await db.update(releases).set({ state: 'canceled' }).where(eq(releases.kfId, a.kfId));
      await db.update(releases).set({ state: 'canceled' }).where(eq(releases.kfId, b.kfId));
    });

    test('the read model lists releases newest first with studies, tasks and notes, filtered by state', async () => {
      const older = await create('list older');
      const newer = await create('list newer');
      const all = await listReleases(db, {}, { limit: 2, offset: 0 });
      expect(all.records.map((r) => r.release.kfId)).toEqual([newer.kfId, older.kfId]);
      expect(all.total).toBeGreaterThanOrEqual(2);
      const record = all.records[0]!;
      expect(record.studies).toEqual([STUDY]);
      expect(record.notes).toEqual([]);
      expect(record.tasks.map((t) => t.serviceName).sort()).toEqual(['portal', 'search']);
      expect(record.tasks[0]!.createdAt).toBeInstanceOf(Date);

      const canceling = await listReleases(db, { state: 'canceling' }, { limit: 100, offset: 0 });
      expect(canceling.records.every((r) => r.release.state === 'canceling')).toBe(true);
      expect(canceling.total).toBe(canceling.records.length);
      expect(canceling.records.map((r) => r.release.kfId)).not.toContain(newer.kfId);
      expect((await listReleases(db, { state: 'staged' }, { limit: 10, offset: 0 })).total).toBe(0);
      expect((await listReleases(db, {}, { limit: 1, offset: 1 })).records[0]!.release.kfId).toBe(older.kfId);
    });

    test('one task by id through raw SQL maps like the builder does', async () => {
      const { kfId } = await create('task by id');
      const [listed] = (await listReleases(db, {}, { limit: 1, offset: 0 })).records;
      expect(listed!.release.kfId).toBe(kfId);
      const fromBuilder = listed!.tasks[0]!;
      const fromRaw = await taskById(db, fromBuilder.kfId);
      expect(fromRaw).toEqual(fromBuilder);
      expect(await taskById(db, 'TA_00000000')).toBeUndefined();
    });

    test('a keyed create happens once; the key answers the first body again', async () => {
      let made = 0;
      const once = () =>
        createOnce(
          db,
          { scope: 'contract', key: 'k1', body: { name: 'x' }, caller: 'ann' },
          {
            create: async (tx) => {
              made++;
              const row = await insertTaskService(tx, {
                name: 'keyed',
                url: 'https://keyed.example.org',
                description: '',
                author: '',
                enabled: false,
              });
              return { id: row.kfId, body: { kf_id: row.kfId } };
            },
          },
        );
      const first = await once();
      const again = await once();
      expect(made).toBe(1);
      expect(again).toEqual(first);
      expect(await db.select().from(taskServices).where(eq(taskServices.name, 'keyed'))).toHaveLength(1);
    });
  });
}
