import { sql } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { idList, mappedRows, rowMapper } from '../db/raw-select';
import { queryRows } from '../db/rows';
import { releaseNotes, releases } from '../db/schema';
import type { Command, LogEntry, ReleaseView, TaskView } from '../lifecycle/lifecycle';
import { wantsPolling } from '../lifecycle/lifecycle';
import type { ReleaseState, TaskState } from '../lifecycle/states';
import { newKfId } from '../shared/ids';
import { type RawTaskRow, taskRecordOf } from '../tasks/repo';

/** A release loaded for update: the lifecycle view plus what commands need (URLs, studies). */
export interface LoadedRelease {
  view: ReleaseView;
  /** the release row as loaded (name, author, tags, ... for notifications) */
  row: typeof releases.$inferSelect;
  /** per task: what the API shows besides the state */
  taskMeta: Map<string, { createdAt: Date; serviceName: string }>;
  /** the view as loaded, to persist only what changed */
  original: ReleaseView;
  serviceUrls: Map<string, string>;
  studies: string[];
  /** release notes (notifications carry the release as the API shows it) */
  notes: Array<typeof releaseNotes.$inferSelect>;
  /** tasks whose poll answer was applied in this batch (their next poll is rescheduled) */
  polled: Set<string>;
}

export const releaseRow = rowMapper(releases);
const noteRow = rowMapper(releaseNotes);

interface LockedTaskRow extends RawTaskRow {
  awaiting: string | null;
  url: string;
}

/** Locks the releases (in id order, so two coordinators never deadlock) and loads their tasks. */
export async function loadReleasesForUpdate(tx: Tx, ids: string[]): Promise<Map<string, LoadedRelease>> {
  const out = new Map<string, LoadedRelease>();
  if (ids.length === 0) return out;
  // One round trip: the queries are pipelined on the transaction's connection and run in this
  // order, so the tasks are read (and locked) only once the release locks are held.
  const list = idList(ids);
  const [rels, taskRows, studyRows, noteRows] = await Promise.all([
    mappedRows(
      tx,
      releaseRow,
      sql`select ${releaseRow.columns} from releases where kf_id in ${list} order by kf_id for update`,
    ),
    queryRows<LockedTaskRow>(
      tx,
      sql`select t.kf_id, t.release_id, t.task_service_id, t.state, t.progress, t.awaiting, t.created_at,
          s.url, s.name as service_name
        from tasks t join task_services s on s.kf_id = t.task_service_id
        where t.release_id in ${list} order by t.seq for update of t`,
    ),
    queryRows<{ release_id: string; study_id: string }>(
      tx,
      sql`select release_id, study_id from release_studies where release_id in ${list}`,
    ),
    mappedRows(
      tx,
      noteRow,
      sql`select ${noteRow.columns} from release_notes where release_id in ${list} order by created_at`,
    ),
  ]);
  for (const r of rels) {
    const view: ReleaseView = {
      kfId: r.kfId,
      state: r.state as ReleaseState,
      version: r.version,
      isMajor: r.isMajor,
      haltReason: (r.haltReason as ReleaseView['haltReason']) ?? null,
      tasks: [],
    };
    out.set(r.kfId, {
      view,
      original: view,
      row: r,
      taskMeta: new Map(),
      serviceUrls: new Map(),
      studies: [],
      notes: [],
      polled: new Set(),
    });
  }
  for (const row of taskRows) {
    const t = taskRecordOf(row);
    const loaded = out.get(t.releaseId);
    if (!loaded) continue;
    loaded.view.tasks.push({
      kfId: t.kfId,
      taskServiceId: t.taskServiceId,
      state: t.state as TaskState,
      progress: t.progress,
      awaiting: (row.awaiting as TaskView['awaiting']) ?? null,
    });
    loaded.serviceUrls.set(t.taskServiceId, row.url);
    loaded.taskMeta.set(t.kfId, { createdAt: t.createdAt, serviceName: t.serviceName });
  }
  for (const s of studyRows) out.get(s.release_id)?.studies.push(s.study_id);
  for (const n of noteRows) out.get(n.releaseId)?.notes.push(n);
  for (const loaded of out.values()) {
    loaded.original = { ...loaded.view, tasks: loaded.view.tasks.map((t) => ({ ...t })) };
  }
  return out;
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
  outbox: Array<{ id: string; subject: string; payload: unknown }>;
  /** the outbox row of this batch (all its messages in one row) */
  outboxBatchId: string;
  processed: string[];
}

export interface PollTiming {
  intervalMs: number;
  jitter: number;
}

/** Writes every changed release and task of the batch: one statement per changed release, one for all tasks. */
export async function persistReleases(tx: Tx, loaded: Iterable<LoadedRelease>, poll: PollTiming) {
  const taskRows: TaskWrite[] = [];
  const releaseRows: ReleaseWrite[] = [];
  const work: Promise<unknown>[] = [];
  for (const l of loaded) {
    const before = l.original;
    const after = l.view;
    if (
      before.state !== after.state ||
      before.version !== after.version ||
      before.haltReason !== after.haltReason
    ) {
      releaseRows.push({
        kf_id: after.kfId,
        expected: before.state,
        state: after.state,
        version: after.version,
        halt_reason: after.haltReason,
      });
    }
    const previous = new Map(before.tasks.map((t) => [t.kfId, t]));
    for (const t of after.tasks) {
      const b = previous.get(t.kfId)!;
      const polledNow = l.polled.has(t.kfId);
      const pollsAfter = wantsPolling(after, t);
      const pollsBefore = wantsPolling(before, b);
      const pollMode = !pollsAfter
        ? pollsBefore || polledNow
          ? 'clear'
          : 'keep'
        : !pollsBefore || polledNow
          ? 'schedule'
          : 'keep';
      const changed = b.state !== t.state || b.progress !== t.progress || b.awaiting !== t.awaiting;
      if (!changed && pollMode === 'keep' && !polledNow) continue;
      taskRows.push({
        kf_id: t.kfId,
        state: t.state,
        progress: t.progress,
        awaiting: t.awaiting,
        awaiting_changed: b.awaiting !== t.awaiting,
        poll_mode: pollMode,
        polled: polledNow,
        progressed: b.state !== t.state || b.progress !== t.progress,
      });
    }
  }
  if (releaseRows.length > 0) work.push(updateReleasesGuarded(tx, releaseRows));
  if (taskRows.length === 0) {
    await Promise.all(work);
    return;
  }
  const interval = poll.intervalMs;
  const jitter = poll.jitter;
  work.push(
    tx.execute(sql`
    update tasks as t set
      state = v.state,
      progress = v.progress,
      awaiting = v.awaiting,
      awaiting_since = case when v.awaiting_changed then (case when v.awaiting is null then null else now() end) else t.awaiting_since end,
      next_poll_at = case v.poll_mode
        when 'clear' then null
        when 'schedule' then now() + (${interval}::float8 * (1 + ${jitter}::float8 * (random() * 2 - 1))) * interval '1 millisecond'
        else t.next_poll_at end,
      poll_in_flight = case when v.polled or v.poll_mode = 'clear' then false else t.poll_in_flight end,
      progress_at = case when v.progressed then now() else t.progress_at end
    from jsonb_to_recordset(${JSON.stringify(taskRows)}::jsonb)
      as v(kf_id text, state text, progress real, awaiting text, awaiting_changed boolean, poll_mode text, polled boolean, progressed boolean)
    where t.kf_id = v.kf_id`),
  );
  await Promise.all(work);
}

interface ReleaseWrite {
  kf_id: string;
  /** the state the release was loaded in: the update is refused if it moved since */
  expected: string;
  state: string;
  version: string;
  halt_reason: string | null;
}

/** Every changed release of the batch in one statement, each guarded by the state it was loaded in. */
async function updateReleasesGuarded(tx: Tx, rows: ReleaseWrite[]) {
  const updated = await queryRows<{ kf_id: string }>(
    tx,
    sql`update releases as r set
      state = v.state,
      version = v.version,
      halt_reason = v.halt_reason,
      state_changed_at = now(),
      published_at = case when v.state = 'published' then now() else r.published_at end
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as v(kf_id text, expected text, state text, version text, halt_reason text)
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
  awaiting_changed: boolean;
  poll_mode: 'clear' | 'schedule' | 'keep';
  polled: boolean;
  progressed: boolean;
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
  if (w.outbox.length > 0) {
    work.push(
      tx.execute(
        sql`insert into outbox_batches (id, messages) values (${w.outboxBatchId}, ${JSON.stringify(w.outbox)})`,
      ),
    );
  }
  await Promise.all(work);
}

export function commandsFor(
  l: LoadedRelease,
  commands: Command[],
  sourceId: string,
): Array<{ id: string; action: Command['action']; taskId: string; serviceId: string; url: string }> {
  return commands.map((c) => {
    const task = l.view.tasks.find((t) => t.kfId === c.taskId)!;
    return {
      id: `${sourceId}:${c.action}:${c.taskId}`,
      action: c.action,
      taskId: c.taskId,
      serviceId: task.taskServiceId,
      url: l.serviceUrls.get(task.taskServiceId)!,
    };
  });
}
