import { newKfId } from '../domain/ids';
import { nextVersion, type ReleaseView } from '../domain/lifecycle/lifecycle';
import type { ActionDeadlines } from '../domain/lifecycle/timing';
import type { Intent, IntentReply } from '../infra/bus/messages';
import type { Tx } from '../infra/db/client';
import { insertRelease, type NewTask, readForCreate, type ServiceRow } from './store/creation';
import { copyView, type LoadedRelease } from './store/releases';

type CreateIntent = Extract<Intent, { type: 'release.create' }>;

export type CreateResult =
  | { kind: 'created'; loaded: LoadedRelease; reply: IntentReply }
  | { kind: 'done'; reply: IntentReply };

type Opts = { releaseTimeoutMs: number; deadlines: ActionDeadlines };

/**
 * Inserts the release in `waiting` with one `waiting` task per enabled service. The caller then
 * applies the lifecycle's `begin` event to it in the same transaction.
 */
export async function createRelease(tx: Tx, intent: CreateIntent, opts: Opts): Promise<CreateResult> {
  const r = intent.release;
  const { known, latestRows, services } = await readForCreate(tx, r.studies);
  const missing = r.studies.filter((s) => !known.some((k) => k.kf_id === s));
  if (missing.length > 0) {
    return {
      kind: 'done',
      reply: { status: 400, body: { studies: missing.map((s) => `Study ${s} does not exist.`) } },
    };
  }
  const version = nextVersion(latestRows[0]?.version);
  const taskRows: NewTask[] = services.map((s) => ({
    kfId: newKfId('TA'),
    releaseId: r.kfId,
    taskServiceId: s.kf_id,
    state: 'waiting',
  }));
  const [[row], , insertedTasks] = await insertRelease(tx, r, version, taskRows, opts.releaseTimeoutMs);
  const byId = new Map(services.map((s) => [s.kf_id, s]));
  const view = waitingView(r, version, taskRows, byId, opts);
  const loaded: LoadedRelease = {
    view,
    row: row!,
    taskMeta: new Map(
      insertedTasks.map((t) => [
        t.kfId,
        {
          createdAt: t.createdAt,
          serviceName: byId.get(t.taskServiceId)?.name ?? '',
          statesAt: t.statesAt,
        },
      ]),
    ),
    original: copyView(view),
    services: new Map(services.map((s) => [s.kf_id, { url: s.url, audience: s.token_audience }])),
    studies: r.studies,
    notes: [],
    polls: new Map(),
    entered: new Map(),
    awaited: new Map(),
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
          tasks: insertedTasks.map((t) => ({ ...t, serviceName: byId.get(t.taskServiceId)?.name ?? '' })),
        },
      },
    },
  };
}

/** The lifecycle's view of the new release: waiting, each task with its service's deadlines. */
function waitingView(
  r: CreateIntent['release'],
  version: string,
  taskRows: NewTask[],
  byId: Map<string, ServiceRow>,
  opts: Opts,
): ReleaseView {
  return {
    kfId: r.kfId,
    state: 'waiting',
    version,
    isMajor: r.isMajor,
    halt: null,
    publish: null,
    highestPublished: null,
    tasks: taskRows.map((t) => {
      const s = byId.get(t.taskServiceId)!;
      return {
        kfId: t.kfId,
        taskServiceId: t.taskServiceId,
        serviceName: s.name,
        state: 'waiting',
        progress: null,
        awaiting: null,
        awaitingUntil: null,
        unconfirmedUntil: null,
        unreachableSince: null,
        pollDelayMs: null,
        hintedAt: null,
        deadlines: {
          request: s.request_timeout_ms ?? opts.deadlines.request,
          start: s.start_timeout_ms ?? opts.deadlines.start,
          publish: s.publish_timeout_ms ?? opts.deadlines.publish,
        },
      };
    }),
  };
}
