import { sql } from 'drizzle-orm';
import { newKfId } from '../../domain/ids';
import type { Command, Halt, LogEntry, ReleaseView, TaskView } from '../../domain/lifecycle/lifecycle';
import { taskOf, wantsPolling } from '../../domain/lifecycle/lifecycle';
import type { ReleaseState, TaskState } from '../../domain/lifecycle/states';
import type { ActionDeadlines } from '../../domain/lifecycle/timing';
import type { IntentReply } from '../../infra/bus/messages';
import type { Tx } from '../../infra/db/client';
import { idList, mappedRows, rowMapper } from '../../infra/db/raw-select';
import { type DriverRow, queryRows, type RawTaskRow, taskRecordOf } from '../../infra/db/rows';
import { releaseNotes, releases, type taskServices, type tasks } from '../../infra/db/schema';
import { type OutboxMessage, outboxRowText } from './outbox';

/** A release loaded for update: the lifecycle view plus what commands need (URLs, studies). */
export interface LoadedRelease {
  view: ReleaseView;
  /** the release row as loaded (name, author, tags, ... for notifications) */
  row: typeof releases.$inferSelect;
  /** per task: what the API shows besides the state */
  taskMeta: Map<string, { createdAt: Date; serviceName: string; statesAt: Record<string, string> }>;
  /** the view as loaded, to persist only what changed */
  original: ReleaseView;
  /** per task service: where to call it and with which token audience */
  services: Map<string, { url: string; audience: string | null }>;
  studies: string[];
  /** release notes (notifications carry the release as the API shows it) */
  notes: Array<typeof releaseNotes.$inferSelect>;
  /** polls the lifecycle asked for in this batch: task id → delay (the last instruction wins) */
  polls: Map<string, number>;
  /** states each release and task entered in this batch (their first-entered times are recorded) */
  entered: Map<string, string[]>;
  /**
   * start/publish commands sent in this batch whose answer the task now awaits: task id → the
   * command's id and the sent-marks bucket's epoch (stored with the task, see tasks.awaiting_command)
   */
  awaited: Map<string, { command: string; marks: string | null }>;
}

export const releaseRow = rowMapper(releases);
const noteRow = rowMapper(releaseNotes);

export type LockedTaskRow = RawTaskRow &
  Pick<
    DriverRow<typeof tasks>,
    | 'awaiting'
    | 'awaiting_until'
    | 'unconfirmed_until'
    | 'unreachable_since'
    | 'poll_delay_ms'
    | 'hinted_at'
    | 'states_at'
  > &
  Pick<
    DriverRow<typeof taskServices>,
    'url' | 'token_audience' | 'request_timeout_ms' | 'start_timeout_ms' | 'publish_timeout_ms'
  >;

/** Serialises the versions releases publish as (they never go backwards). */
const PUBLISHED_VERSION_LOCK = 72_610_003;

const epoch = (v: string | Date | null | undefined): number | null =>
  v === null || v === undefined ? null : new Date(v).getTime();
const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

/**
 * Locks the releases (in id order, so two coordinators never deadlock) and loads their tasks.
 * Returns the database clock too: every deadline the lifecycle computes is in database time.
 */
export async function loadReleasesForUpdate(
  tx: Tx,
  ids: string[],
  defaults: ActionDeadlines,
): Promise<{ loaded: Map<string, LoadedRelease>; now: number }> {
  const out = new Map<string, LoadedRelease>();
  // One round trip: the queries are pipelined on the transaction's connection and run in this
  // order, so the tasks are read (and locked) only once the release locks are held.
  const list = idList(ids);
  const none = Promise.resolve([]);
  const [[clock], rels, taskRows, studyRows, noteRows] = await Promise.all([
    queryRows<{ now: string }>(tx, sql`select (extract(epoch from now()) * 1000)::float8 as now`),
    ids.length === 0
      ? none
      : mappedRows(
          tx,
          releaseRow,
          sql`select ${releaseRow.columns} from releases where kf_id in ${list} order by kf_id for update`,
        ),
    ids.length === 0
      ? none
      : queryRows<LockedTaskRow>(
          tx,
          sql`select t.kf_id, t.release_id, t.task_service_id, t.state, t.progress, t.awaiting, t.created_at,
          t.awaiting_until, t.unconfirmed_until, t.unreachable_since, t.poll_delay_ms, t.hinted_at, t.states_at,
          s.url, s.name as service_name, s.token_audience, s.request_timeout_ms, s.start_timeout_ms, s.publish_timeout_ms
        from tasks t join task_services s on s.kf_id = t.task_service_id
        where t.release_id in ${list} order by t.seq for update of t`,
        ),
    ids.length === 0
      ? none
      : queryRows<{ release_id: string; study_id: string }>(
          tx,
          sql`select release_id, study_id from release_studies where release_id in ${list}`,
        ),
    ids.length === 0
      ? none
      : mappedRows(
          tx,
          noteRow,
          sql`select ${noteRow.columns} from release_notes where release_id in ${list} order by created_at`,
        ),
  ]);
  for (const r of rels) out.set(r.kfId, loadedOf(r));
  for (const row of taskRows) {
    const loaded = out.get(row.release_id);
    if (!loaded) continue;
    loaded.view.tasks.push(taskViewOf(row, defaults));
    loaded.services.set(row.task_service_id, { url: row.url, audience: row.token_audience });
    const t = taskRecordOf(row);
    loaded.taskMeta.set(t.kfId, {
      createdAt: t.createdAt,
      serviceName: t.serviceName,
      statesAt: json<Record<string, string>>(row.states_at ?? {}),
    });
  }
  for (const s of studyRows) out.get(s.release_id)?.studies.push(s.study_id);
  for (const n of noteRows) out.get(n.releaseId)?.notes.push(n);
  for (const loaded of out.values()) loaded.original = copyView(loaded.view);
  return { loaded: out, now: Number(clock!.now) };
}

export function loadedOf(r: typeof releases.$inferSelect): LoadedRelease {
  const view: ReleaseView = {
    kfId: r.kfId,
    state: r.state as ReleaseState,
    version: r.version,
    isMajor: r.isMajor,
    halt: haltOf(r),
    publish: r.publishRequestedAt ? { by: r.publishedBy, at: r.publishRequestedAt.getTime() } : null,
    highestPublished: null,
    tasks: [],
  };
  return {
    view,
    original: view,
    row: r,
    taskMeta: new Map(),
    services: new Map(),
    studies: [],
    notes: [],
    polls: new Map(),
    entered: new Map(),
    awaited: new Map(),
  };
}

function haltOf(r: typeof releases.$inferSelect): Halt | null {
  if (!r.haltReason) return null;
  return {
    reason: r.haltReason as Halt['reason'],
    taskId: r.haltTaskId,
    serviceId: r.haltServiceId,
    serviceName: r.haltServiceName,
    message: r.haltMessage ?? '',
    by: r.haltedBy,
    at: r.haltedAt?.getTime() ?? 0,
  };
}

export function taskViewOf(row: LockedTaskRow, defaults: ActionDeadlines): TaskView {
  return {
    kfId: row.kf_id,
    taskServiceId: row.task_service_id,
    serviceName: row.service_name,
    state: row.state as TaskState,
    progress: row.progress === null ? null : Number(row.progress),
    awaiting: (row.awaiting as TaskView['awaiting']) ?? null,
    awaitingUntil: epoch(row.awaiting_until),
    unconfirmedUntil: epoch(row.unconfirmed_until),
    unreachableSince: epoch(row.unreachable_since),
    pollDelayMs: row.poll_delay_ms,
    hintedAt: epoch(row.hinted_at),
    deadlines: {
      request: row.request_timeout_ms ?? defaults.request,
      start: row.start_timeout_ms ?? defaults.start,
      publish: row.publish_timeout_ms ?? defaults.publish,
    },
  };
}

export function copyView(v: ReleaseView): ReleaseView {
  return {
    ...v,
    halt: v.halt && { ...v.halt },
    publish: v.publish && { ...v.publish },
    tasks: v.tasks.map((t) => ({ ...t })),
  };
}

/**
 * The highest version published so far, read under a lock that serialises publishing (two
 * releases published at once never get the same version). Only needed when a release may publish.
 */
export async function highestPublishedVersion(tx: Tx): Promise<string | null> {
  const [, rows] = await Promise.all([
    queryRows(tx, sql`select pg_advisory_xact_lock(${PUBLISHED_VERSION_LOCK})`),
    queryRows<{ version: string }>(
      tx,
      sql`select version from releases where state = 'published' and version ~ '^[0-9]+\\.[0-9]+\\.[0-9]+$'
          order by string_to_array(version, '.')::int[] desc limit 1`,
    ),
  ]);
  return rows[0]?.version ?? null;
}

export async function alreadyProcessed(tx: Tx, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await queryRows<{ id: string }>(
    tx,
    sql`select id from processed_messages where id in ${idList(ids)}`,
  );
  return new Set(rows.map((r) => r.id));
}

export interface PendingWrites {
  events: Array<LogEntry & { releaseId: string | null }>;
  outbox: OutboxMessage[];
  /** the outbox row of this batch (all its messages in one row) */
  outboxBatchId: string;
  processed: string[];
  /** answers to intents the gateway stored in Postgres (the intents table) */
  intentReplies: Array<{ id: string; reply: IntentReply }>;
}

export interface PollTiming {
  jitter: number;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Writes every changed release and task of the batch: one statement for all releases, one for all tasks. */
export async function persistReleases(tx: Tx, loaded: Iterable<LoadedRelease>, poll: PollTiming) {
  const taskRows: TaskWrite[] = [];
  const releaseRows: ReleaseWrite[] = [];
  for (const l of loaded) {
    const release = releaseWrite(l);
    if (release) releaseRows.push(release);
    const previous = new Map(l.original.tasks.map((t) => [t.kfId, t]));
    for (const t of l.view.tasks) {
      const write = taskWrite(l, previous.get(t.kfId)!, t);
      if (write) taskRows.push(write);
    }
  }
  await Promise.all([
    releaseRows.length > 0 ? updateReleasesGuarded(tx, releaseRows) : undefined,
    taskRows.length > 0 ? updateTasks(tx, taskRows, poll) : undefined,
  ]);
}

function releaseWrite(l: LoadedRelease): ReleaseWrite | undefined {
  const before = l.original;
  const after = l.view;
  if (before.state === after.state && before.version === after.version && before.isMajor === after.isMajor)
    return undefined;
  return {
    kf_id: after.kfId,
    expected: before.state,
    state: after.state,
    version: after.version,
    is_major: after.isMajor,
    halt_reason: after.halt?.reason ?? null,
    halt_task_id: after.halt?.taskId ?? null,
    halt_service_id: after.halt?.serviceId ?? null,
    halt_service_name: after.halt?.serviceName ?? null,
    halt_message: after.halt?.message ?? null,
    halted_by: after.halt?.by ?? null,
    halted_at: iso(after.halt?.at ?? null),
    published_by: after.publish?.by ?? null,
    publish_requested_at: iso(after.publish?.at ?? null),
    entered: l.entered.get(after.kfId) ?? [],
  };
}

function taskWrite(l: LoadedRelease, b: TaskView, t: TaskView): TaskWrite | undefined {
  const instructed = l.polls.get(t.kfId);
  const pollsAfter = wantsPolling(l.view, t);
  const pollMode: TaskWrite['poll_mode'] = !pollsAfter
    ? wantsPolling(l.original, b) || instructed !== undefined
      ? 'clear'
      : 'keep'
    : instructed !== undefined
      ? 'schedule'
      : 'keep';
  const changed =
    b.state !== t.state ||
    b.progress !== t.progress ||
    b.awaiting !== t.awaiting ||
    b.awaitingUntil !== t.awaitingUntil ||
    b.unconfirmedUntil !== t.unconfirmedUntil ||
    b.unreachableSince !== t.unreachableSince ||
    b.pollDelayMs !== t.pollDelayMs ||
    b.hintedAt !== t.hintedAt;
  if (!changed && pollMode === 'keep') return undefined;
  const awaited = t.awaiting === 'start' || t.awaiting === 'publish' ? l.awaited.get(t.kfId) : undefined;
  return {
    kf_id: t.kfId,
    state: t.state,
    progress: t.progress,
    awaiting: t.awaiting,
    awaiting_until: iso(t.awaitingUntil),
    awaiting_changed: b.awaiting !== t.awaiting || b.awaitingUntil !== t.awaitingUntil,
    awaiting_command: awaited?.command ?? null,
    awaiting_marks: awaited?.marks ?? null,
    unconfirmed_until: iso(t.unconfirmedUntil),
    unreachable_since: iso(t.unreachableSince),
    poll_delay_ms: t.pollDelayMs,
    hinted_at: iso(t.hintedAt),
    poll_mode: pollMode,
    poll_in: instructed ?? 0,
    progressed: b.state !== t.state || b.progress !== t.progress,
    entered: l.entered.get(t.kfId) ?? [],
  };
}

interface ReleaseWrite {
  kf_id: string;
  /** the state the release was loaded in: the update is refused if it moved since */
  expected: string;
  state: string;
  version: string;
  is_major: boolean;
  halt_reason: string | null;
  halt_task_id: string | null;
  halt_service_id: string | null;
  halt_service_name: string | null;
  halt_message: string | null;
  halted_by: string | null;
  halted_at: string | null;
  published_by: string | null;
  publish_requested_at: string | null;
  entered: string[];
}

/** Every changed release of the batch in one statement, each guarded by the state it was loaded in. */
async function updateReleasesGuarded(tx: Tx, rows: ReleaseWrite[]) {
  const updated = await queryRows<{ kf_id: string }>(
    tx,
    sql`update releases as r set
      state = v.state,
      version = v.version,
      is_major = v.is_major,
      halt_reason = v.halt_reason,
      halt_task_id = v.halt_task_id,
      halt_service_id = v.halt_service_id,
      halt_service_name = v.halt_service_name,
      halt_message = v.halt_message,
      halted_by = v.halted_by,
      halted_at = v.halted_at,
      published_by = v.published_by,
      publish_requested_at = v.publish_requested_at,
      state_changed_at = case when v.state = r.state then r.state_changed_at else now() end,
      published_at = case when v.state = 'published' then now() else r.published_at end,
      states_at = coalesce((select jsonb_object_agg(s, now()) from jsonb_array_elements_text(v.entered) s), '{}'::jsonb)
        || r.states_at
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as v(kf_id text, expected text, state text, version text, is_major boolean, halt_reason text, halt_task_id text,
           halt_service_id text, halt_service_name text, halt_message text, halted_by text,
           halted_at timestamptz, published_by text, publish_requested_at timestamptz, entered jsonb)
    where r.kf_id = v.kf_id and r.state = v.expected
    returning r.kf_id`,
  );
  if (updated.length !== rows.length) {
    const done = new Set(updated.map((u) => u.kf_id));
    const moved = rows.filter((r) => !done.has(r.kf_id)).map((r) => `${r.kf_id} (expected ${r.expected})`);
    throw new Error(`release ${moved.join(', ')} changed under us`);
  }
}

interface TaskWrite {
  kf_id: string;
  state: string;
  progress: number | null;
  awaiting: string | null;
  awaiting_until: string | null;
  awaiting_changed: boolean;
  awaiting_command: string | null;
  awaiting_marks: string | null;
  unconfirmed_until: string | null;
  unreachable_since: string | null;
  poll_delay_ms: number | null;
  hinted_at: string | null;
  poll_mode: 'clear' | 'schedule' | 'keep';
  /** with poll_mode 'schedule': ms until the next poll (jitter is added here) */
  poll_in: number;
  progressed: boolean;
  entered: string[];
}

function updateTasks(tx: Tx, rows: TaskWrite[], poll: PollTiming) {
  return tx.execute(sql`
    update tasks as t set
      state = v.state,
      progress = v.progress,
      awaiting = v.awaiting,
      awaiting_until = v.awaiting_until,
      awaiting_since = case when v.awaiting_changed then (case when v.awaiting is null then null else now() end) else t.awaiting_since end,
      awaiting_command = case when v.awaiting_changed then v.awaiting_command else t.awaiting_command end,
      awaiting_marks = case when v.awaiting_changed then v.awaiting_marks else t.awaiting_marks end,
      unconfirmed_until = v.unconfirmed_until,
      unreachable_since = v.unreachable_since,
      poll_delay_ms = v.poll_delay_ms,
      hinted_at = v.hinted_at,
      next_poll_at = case v.poll_mode
        when 'clear' then null
        when 'schedule' then now() + (v.poll_in * (1 + ${poll.jitter}::float8 * (random() * 2 - 1))) * interval '1 millisecond'
        else t.next_poll_at end,
      poll_in_flight = case when v.poll_mode = 'keep' then t.poll_in_flight else false end,
      progress_at = case when v.progressed then now() else t.progress_at end,
      states_at = coalesce((select jsonb_object_agg(s, now()) from jsonb_array_elements_text(v.entered) s), '{}'::jsonb)
        || t.states_at
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as v(kf_id text, state text, progress real, awaiting text, awaiting_until timestamptz, awaiting_changed boolean,
           awaiting_command text, awaiting_marks text, unconfirmed_until timestamptz, unreachable_since timestamptz, poll_delay_ms integer, hinted_at timestamptz,
           poll_mode text, poll_in float8, progressed boolean, entered jsonb)
    where t.kf_id = v.kf_id`);
}

export async function writeSideEffects(tx: Tx, w: PendingWrites) {
  // Each insert is one statement with ONE parameter (a JSON array expanded by jsonb_to_recordset):
  // no per-row parameter building, whatever the batch size.
  const work: Promise<unknown>[] = [];
  if (w.events.length > 0) {
    const rows = w.events.map((e) => ({
      kf_id: newKfId('EV'),
      event_type: e.type,
      message: e.message,
      release_id: e.releaseId,
      task_id: e.taskId ?? null,
      task_service_id: e.taskServiceId ?? null,
    }));
    work.push(
      tx.execute(sql`insert into events (kf_id, event_type, message, release_id, task_id, task_service_id)
        select kf_id, event_type, message, release_id, task_id, task_service_id
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
          as x(kf_id text, event_type text, message text, release_id text, task_id text, task_service_id text)`),
    );
  }
  if (w.processed.length > 0) {
    work.push(
      tx.execute(sql`insert into processed_messages (id)
        select jsonb_array_elements_text(${JSON.stringify(w.processed)}::jsonb) on conflict do nothing`),
    );
  }
  if (w.intentReplies.length > 0) {
    work.push(
      tx.execute(sql`update intents set applied_at = now(), reply = x.reply
        from jsonb_to_recordset(${JSON.stringify(w.intentReplies)}::jsonb) as x(id text, reply jsonb)
        where intents.id = x.id`),
    );
  }
  if (w.outbox.length > 0) {
    work.push(
      tx.execute(
        sql`insert into outbox_batches (id, messages) values (${w.outboxBatchId}, ${outboxRowText(w.outbox)})`,
      ),
    );
  }
  await Promise.all(work);
}

export interface CommandTarget {
  id: string;
  action: Command['action'];
  taskId: string;
  serviceId: string;
  url: string;
  audience: string | null;
  timeoutMs: number;
}

export function commandsFor(l: LoadedRelease, commands: Command[], sourceId: string): CommandTarget[] {
  return commands.map((c) => {
    const task = taskOf(l.view.tasks, c.taskId)!;
    const service = l.services.get(task.taskServiceId)!;
    return {
      id: `${sourceId}:${c.action}:${c.taskId}`,
      action: c.action,
      taskId: c.taskId,
      serviceId: task.taskServiceId,
      url: service.url,
      audience: service.audience,
      timeoutMs: c.timeoutMs,
    };
  });
}
