import { sql } from 'drizzle-orm';
import { newKfId } from '../domain/ids';
import { nextVersion, type ReleaseView } from '../domain/lifecycle/lifecycle';
import type { ActionDeadlines } from '../domain/lifecycle/timing';
import type { Intent, IntentReply } from '../infra/bus/messages';
import type { Tx } from '../infra/db/client';
import { idList, mappedRows, rowMapper } from '../infra/db/raw-select';
import { type DriverRow, queryRows } from '../infra/db/rows';
import { type taskServices, tasks } from '../infra/db/schema';
import { copyView, type LoadedRelease, releaseRow } from './store/releases';

/** Serialises version assignment: two releases created at once never get the same version. */
const VERSION_LOCK = 72_610_002;

const taskRow = rowMapper(tasks);

type CreateIntent = Extract<Intent, { type: 'release.create' }>;

type ServiceRow = Pick<
  DriverRow<typeof taskServices>,
  | 'kf_id'
  | 'url'
  | 'name'
  | 'token_audience'
  | 'request_timeout_ms'
  | 'start_timeout_ms'
  | 'publish_timeout_ms'
>;

export type CreateResult =
  | { kind: 'created'; loaded: LoadedRelease; reply: IntentReply }
  | { kind: 'done'; reply: IntentReply };

type Opts = { releaseTimeoutMs: number; deadlines: ActionDeadlines };
type NewTask = { kfId: string; releaseId: string; taskServiceId: string; state: string };

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
  const [[row], , insertedTasks] = await insertRelease(tx, r, version, taskRows, opts);
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

/** The studies that exist, the latest version (under the version lock) and the enabled services. */
async function readForCreate(tx: Tx, studyIds: string[]) {
  // reads in one round trip (pipelined in this order: the version lock is held before the latest version is
  // read). Every query here starts when it is called, so the array order is the order they run in.
  const [known, , latestRows, services] = await Promise.all([
    queryRows<{ kf_id: string }>(
      tx,
      sql`select kf_id from studies where kf_id in ${idList(studyIds)} and not deleted`,
    ),
    queryRows(tx, sql`select pg_advisory_xact_lock(${VERSION_LOCK})`),
    queryRows<{ version: string }>(tx, sql`select version from releases order by seq desc limit 1`),
    queryRows<ServiceRow>(
      tx,
      sql`select kf_id, url, name, token_audience, request_timeout_ms, start_timeout_ms, publish_timeout_ms
          from task_services where enabled and not deleted order by created_at`,
    ),
  ]);
  return { known, latestRows, services };
}

/** The release row, its studies and its tasks, written in one round trip. */
function insertRelease(tx: Tx, r: CreateIntent['release'], version: string, taskRows: NewTask[], opts: Opts) {
  // the release row first: the others reference it
  return Promise.all([
    mappedRows(
      tx,
      releaseRow,
      // deadline in database time, like the scheduler that compares it: a skewed process clock changes nothing
      sql`insert into releases
          (kf_id, name, description, state, version, is_major, tags, author, deadline_at, states_at)
        values (${r.kfId}, ${r.name}, ${r.description ?? ''}, 'waiting', ${version}, ${r.isMajor ?? false},
          ${JSON.stringify(r.tags ?? [])}::jsonb, ${r.author ?? ''},
          now() + ${opts.releaseTimeoutMs}::float8 * interval '1 millisecond', jsonb_build_object('waiting', now()))
        returning ${releaseRow.columns}`,
    ),
    queryRows(
      tx,
      sql`insert into release_studies (release_id, study_id)
        select ${r.kfId}, jsonb_array_elements_text(${JSON.stringify(r.studies)}::jsonb)`,
    ),
    taskRows.length > 0
      ? mappedRows(
          tx,
          taskRow,
          sql`insert into tasks (kf_id, release_id, task_service_id, state, states_at)
            select "kfId", "releaseId", "taskServiceId", state, jsonb_build_object('waiting', now())
            from jsonb_to_recordset(${JSON.stringify(taskRows)}::jsonb)
              as x("kfId" text, "releaseId" text, "taskServiceId" text, state text)
            returning ${taskRow.columns}`,
        )
      : Promise.resolve([]),
  ]);
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
