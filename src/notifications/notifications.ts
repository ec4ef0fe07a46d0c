import { type ReleaseView, type Transition, taskOf } from '../domain/lifecycle/lifecycle';
import { type ReleaseNoteRecord, type ReleaseRecord, releaseJson, taskJson } from '../domain/representations';
import type { Urls } from '../domain/urls';

/** What a notification tells besides the lifecycle view: the release as stored and what its tasks show. */
export interface NotifiedRelease {
  row: ReleaseRecord;
  taskMeta: ReadonlyMap<string, { createdAt: Date; serviceName: string; statesAt: Record<string, string> }>;
  studies: string[];
}

/**
 * What downstream subscribers receive on RC_EVENTS for every release and task transition
 * (JSON Schema: src/notifications/notification.schema.json). CloudEvents-shaped; `id` is unique, dedupe on it.
 */
export interface Notification {
  specversion: '1.0';
  id: string;
  type: `release.${string}` | `task.${string}`;
  time: string;
  source: string;
  subject: string;
  datacontenttype: 'application/json';
  data: Record<string, unknown> & { previous_state: string; version: string; studies: string[] };
}

/** The release row as it is after this transition (the row in `l` is as it was loaded). */
function releaseRowAsOf(l: NotifiedRelease, view: ReleaseView, t: Transition, time: string): ReleaseRecord {
  const halt = view.halt;
  return {
    ...l.row,
    state: t.to,
    version: view.version,
    haltReason: halt?.reason ?? null,
    haltTaskId: halt?.taskId ?? null,
    haltServiceId: halt?.serviceId ?? null,
    haltServiceName: halt?.serviceName ?? null,
    haltMessage: halt?.message ?? null,
    haltedBy: halt?.by ?? null,
    haltedAt: halt ? new Date(halt.at) : null,
    publishedBy: view.publish?.by ?? null,
    publishRequestedAt: view.publish ? new Date(view.publish.at) : null,
    publishedAt: t.to === 'published' ? new Date(time) : l.row.publishedAt,
    statesAt: { [t.to]: time, ...l.row.statesAt },
  };
}

/**
 * A release notification lists its tasks up to this many. A larger release says how many tasks it
 * has in each state instead (`tasks_total`, `tasks_by_state`; every task has its own notification):
 * NATS takes messages of 1 MiB, and 10,000 tasks are about 3 MiB of JSON.
 */
export const NOTIFIED_TASKS_MAX = 500;

/** What every notification of one batch shares. */
export interface NotificationBatch {
  urls: Urls;
  /** the notifications' `source` */
  source: string;
  /** when the batch was decided: the `time` of each of its notifications */
  time: string;
}

/**
 * The notification of one transition. For a task transition, `task` is the task as it was at the
 * transition (the caller keeps it: the batch's task list changes in place with later events);
 * without it the task is looked up in `view`.
 */
export function buildNotification(
  l: NotifiedRelease,
  view: ReleaseView,
  t: Transition,
  notes: readonly ReleaseNoteRecord[],
  batch: NotificationBatch,
  id: string,
  task?: ReleaseView['tasks'][number],
): Notification {
  const { time, urls, source } = batch;
  const record = (task: ReleaseView['tasks'][number]) => ({
    kfId: task.kfId,
    state: task.state,
    progress: task.progress,
    releaseId: view.kfId,
    taskServiceId: task.taskServiceId,
    createdAt: l.taskMeta.get(task.kfId)?.createdAt ?? new Date(0),
    serviceName: l.taskMeta.get(task.kfId)?.serviceName ?? '',
    statesAt: { [task.state]: time, ...l.taskMeta.get(task.kfId)?.statesAt },
  });
  const common = { previous_state: t.from, version: view.version, studies: l.studies };
  if (t.entity === 'release') {
    const listed = view.tasks.length <= NOTIFIED_TASKS_MAX;
    const release = releaseJson(
      {
        release: releaseRowAsOf(l, view, t, time),
        studies: l.studies,
        tasks: listed ? view.tasks.map(record) : [],
        notes: [...notes],
      },
      urls,
    );
    const counted = listed
      ? {}
      : { tasks_total: view.tasks.length, tasks_by_state: countByState(view.tasks) };
    return {
      specversion: '1.0',
      id,
      type: `release.${t.to}`,
      time,
      source,
      subject: view.kfId,
      datacontenttype: 'application/json',
      data: { ...release, ...counted, ...common },
    };
  }
  // only this task: building every task for each task transition is quadratic in a large release
  const shown = record(task ?? taskOf(view.tasks, t.kfId)!);
  return {
    specversion: '1.0',
    id,
    type: `task.${t.to}`,
    time,
    source,
    subject: t.kfId,
    datacontenttype: 'application/json',
    data: { ...taskJson({ ...shown, state: t.to }, urls), release_id: view.kfId, ...common },
  };
}

function countByState(tasks: ReleaseView['tasks']): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const t of tasks) counts[t.state] = (counts[t.state] ?? 0) + 1;
  return counts;
}
