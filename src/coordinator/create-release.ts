import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Intent, IntentReply } from '../bus/messages';
import type { Tx } from '../db/client';
import { releaseStudies, releases, studies, taskServices, tasks } from '../db/schema';
import { nextVersion, type ReleaseView } from '../lifecycle/lifecycle';
import { newKfId } from '../shared/ids';
import type { LoadedRelease } from './aggregate';

/** Serialises version assignment: two releases created at once never get the same version. */
const VERSION_LOCK = 72_610_002;

type CreateIntent = Extract<Intent, { type: 'release.create' }>;

export type CreateResult =
  | { kind: 'created'; loaded: LoadedRelease; reply: IntentReply }
  | { kind: 'done'; reply: IntentReply };

/**
 * Inserts the release in `waiting` with one `waiting` task per enabled service. The caller then
 * applies the lifecycle's `begin` event to it in the same transaction.
 */
export async function createRelease(
  tx: Tx,
  intent: CreateIntent,
  releaseTimeoutMs: number,
): Promise<CreateResult> {
  const r = intent.release;
  // reads in one round trip (pipelined in this order: the version lock is held before the latest version is read)
  const [existing, known, , latestRows, services] = await Promise.all([
    r.idempotencyKey
      ? tx.select({ kfId: releases.kfId }).from(releases).where(eq(releases.idempotencyKey, r.idempotencyKey))
      : Promise.resolve([]),
    tx
      .select({ kfId: studies.kfId })
      .from(studies)
      .where(and(inArray(studies.kfId, r.studies), eq(studies.deleted, false))),
    tx.execute(sql`select pg_advisory_xact_lock(${VERSION_LOCK})`),
    tx.select({ version: releases.version }).from(releases).orderBy(desc(releases.seq)).limit(1),
    tx
      .select({ kfId: taskServices.kfId, url: taskServices.url, name: taskServices.name })
      .from(taskServices)
      .where(and(eq(taskServices.enabled, true), eq(taskServices.deleted, false)))
      .orderBy(taskServices.createdAt),
  ]);
  if (existing[0]) {
    return { kind: 'done', reply: { status: 200, body: { releaseId: existing[0].kfId, replay: true } } };
  }
  const missing = r.studies.filter((s) => !known.some((k) => k.kfId === s));
  if (missing.length > 0) {
    return {
      kind: 'done',
      reply: { status: 400, body: { studies: missing.map((s) => `Study ${s} does not exist.`) } },
    };
  }
  const version = nextVersion(latestRows[0]?.version);
  const taskRows = services.map((s) => ({
    kfId: newKfId('TA'),
    releaseId: r.kfId,
    taskServiceId: s.kfId,
    state: 'waiting',
  }));
  // writes in one round trip (the release row first: the others reference it)
  const [[row], , insertedTasks] = await Promise.all([
    tx
      .insert(releases)
      .values({
        kfId: r.kfId,
        name: r.name,
        description: r.description,
        state: 'waiting',
        version,
        isMajor: r.isMajor,
        tags: r.tags,
        author: r.author,
        idempotencyKey: r.idempotencyKey ?? null,
        // database time, like the scheduler that compares it: a skewed process clock changes nothing
        deadlineAt: sql`now() + ${releaseTimeoutMs} * interval '1 millisecond'`,
      })
      .returning(),
    tx.insert(releaseStudies).values(r.studies.map((studyId) => ({ releaseId: r.kfId, studyId }))),
    taskRows.length > 0 ? tx.insert(tasks).values(taskRows).returning() : Promise.resolve([]),
  ]);
  const view: ReleaseView = {
    kfId: r.kfId,
    state: 'waiting',
    version,
    isMajor: r.isMajor,
    haltReason: null,
    tasks: taskRows.map((t) => ({
      kfId: t.kfId,
      taskServiceId: t.taskServiceId,
      state: 'waiting',
      progress: null,
      awaiting: null,
    })),
  };
  const serviceNames = new Map(services.map((s) => [s.kfId, s.name]));
  const loaded: LoadedRelease = {
    view,
    row: row!,
    taskMeta: new Map(
      insertedTasks.map((t) => [
        t.kfId,
        { createdAt: t.createdAt, serviceName: serviceNames.get(t.taskServiceId) ?? '' },
      ]),
    ),
    original: { ...view, tasks: view.tasks.map((t) => ({ ...t })) },
    serviceUrls: new Map(services.map((s) => [s.kfId, s.url])),
    studies: r.studies,
    notes: [],
    polled: new Set(),
  };
  return {
    kind: 'created',
    loaded,
    reply: {
      status: 201,
      body: {
        releaseId: r.kfId,
        snapshot: {
          release: row,
          studies: r.studies,
          tasks: insertedTasks.map((t) => ({ ...t, serviceName: serviceNames.get(t.taskServiceId) ?? '' })),
        },
      },
    },
  };
}
