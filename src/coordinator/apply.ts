import { newMessageId } from '../domain/ids';
import {
  type Context,
  decide,
  type Halt,
  type LifecycleEvent,
  type LogEntry,
  type Outcome,
  type ReleaseView,
  type TaskView,
  type Transition,
  taskOf,
} from '../domain/lifecycle/lifecycle';
import type { ActionDeadlines, LifecycleTiming } from '../domain/lifecycle/timing';
import { urls } from '../domain/urls';
import {
  COMMAND_CHUNK,
  type CommandChunk,
  type Intent,
  type IntentReply,
  isStoredIntent,
  type Result,
  type TaskCommand,
} from '../infra/bus/messages';
import type { BusNames } from '../infra/bus/subjects';
import type { Db, Tx } from '../infra/db/client';
import { buildNotification } from '../notifications/notifications';
import { createRelease } from './create-release';
import { type OutboxMessage, outboxMessage } from './store/outbox';
import {
  alreadyProcessed,
  commandsFor,
  highestPublishedVersion,
  type LoadedRelease,
  loadReleasesForUpdate,
  type PendingWrites,
  type PollTiming,
  persistReleases,
  writeSideEffects,
} from './store/releases';

/** One message for the coordinator: an intent from the gateway/scheduler or a worker's result. */
export type Inbound =
  | { id: string; source: 'intent'; intent: Intent; replyTo?: string }
  | { id: string; source: 'result'; result: Extract<Result, { kind: 'task' }> }
  | { id: string; source: 'health'; result: Extract<Result, { kind: 'health' }> };

export type { OutboxMessage } from './store/outbox';

export interface BatchOutcome {
  replies: Array<{ to: string; reply: IntentReply }>;
  outbox: OutboxMessage[];
  /** the outbox row holding `outbox` (deleted once they are all published) */
  outboxBatchId: string;
  aborts: string[];
  /** how many task commands the batch sends (each will come back as one result) */
  commands: number;
  /** every state change the batch made (metrics, logs) */
  transitions: Transition[];
  /** releases that entered canceling in this batch, with what halted them (logs) */
  halts: Array<{ releaseId: string; halt: Halt }>;
  /** warnings and errors recorded as events (failed calls, refused reports): logged too */
  notable: Array<LogEntry & { releaseId: string }>;
  applied: number;
  duplicates: number;
  /** milliseconds spent reading, deciding (lifecycle + notifications), writing and committing */
  timings: { read: number; decide: number; write: number; commit: number };
}

export interface ApplyOptions {
  names: BusNames;
  /** base of absolute URLs in notifications, and their `source` */
  publicUrl: { PUBLIC_URL: string };
  poll: PollTiming;
  releaseTimeoutMs: number;
  timing: LifecycleTiming;
  /** deadlines of calls to services that do not override them */
  deadlines: ActionDeadlines;
  /**
   * the epoch (creation time) of the sent-marks bucket as last seen, recorded with every start and
   * publish sent; null when unknown (then a lost one is never taken for unsent)
   */
  marksEpoch?: () => string | null;
}

type ReleaseInbound = Exclude<Inbound, { source: 'health' }>;

/**
 * A reply as the text NATS carries, at most maxBytes: a reply too large (the snapshot of a release
 * with thousands of tasks) goes without its snapshot; the gateway then reads the release itself.
 */
export function replyText(reply: IntentReply, maxBytes: number): string {
  const text = JSON.stringify(reply);
  return Buffer.byteLength(text) > maxBytes ? JSON.stringify(withoutSnapshot(reply)) : text;
}

/** The gateway keeps the answer of a stored intent; the release itself it reads from its table. */
function withoutSnapshot(r: IntentReply): IntentReply {
  if (!r.body || typeof r.body !== 'object' || !('snapshot' in r.body)) return r;
  const { snapshot: _, ...body } = r.body as Record<string, unknown>;
  return { status: r.status, body };
}

function releaseIdOf(item: ReleaseInbound): string {
  if (item.source === 'result') return item.result.releaseId;
  return item.intent.type === 'release.create' ? item.intent.release.kfId : item.intent.releaseId;
}

const isCreate = (i: ReleaseInbound) => i.source === 'intent' && i.intent.type === 'release.create';

export function toEvent(item: ReleaseInbound): LifecycleEvent | undefined {
  if (item.source === 'result') {
    const r = item.result;
    if (r.ok)
      return { kind: 'call_ok', taskId: r.taskId, action: r.action, state: r.state, progress: r.progress };
    // results of earlier versions carry no outcome: an HTTP status means the service answered
    const outcome = r.outcome ?? (r.status === undefined ? 'unknown' : 'refused');
    return {
      kind: 'call_failed',
      taskId: r.taskId,
      action: r.action,
      outcome,
      reason: r.error ?? `HTTP ${r.status}`,
    };
  }
  const i = item.intent;
  switch (i.type) {
    case 'release.cancel':
      return { kind: 'cancel', reason: i.reason, by: i.actor };
    case 'release.publish':
      return { kind: 'publish', by: i.actor };
    case 'release.amend':
      return { kind: 'amend', isMajor: i.isMajor, by: i.actor };
    case 'release.timeout':
      return { kind: 'timeout', what: i.what, taskId: i.taskId };
    case 'task.report':
      return { kind: 'report', taskId: i.taskId, state: i.state, progress: i.progress };
    case 'task.poll_hint':
      return { kind: 'poll_hint', taskId: i.taskId };
    case 'release.create':
      return { kind: 'begin' };
    case 'task_service.down':
      return { kind: 'service_down', taskServiceId: i.serviceId, reason: i.reason };
    case 'task.no_answer':
      return i.action === 'get_status'
        ? undefined
        : { kind: 'answer_lost', taskId: i.taskId, action: i.action, neverSent: i.neverSent };
  }
}

/** What one batch transaction accumulates while its messages are decided. */
class BatchState {
  readonly out: BatchOutcome;
  readonly writes: PendingWrites;
  readonly loaded = new Map<string, LoadedRelease>();
  /**
   * every transition with what its notification shows: the release as it was then (a release
   * transition), or the task as it was then (a task transition)
   */
  readonly changes: Array<{ l: LoadedRelease; view: ReleaseView; t: Transition; task?: TaskView }> = [];
  /** releases whose task list this batch copied once and now hands to the lifecycle to update in place */
  private readonly ownsTasks = new Set<LoadedRelease>();
  /** task commands of the batch by release and action: each fan-out travels in chunks */
  readonly fanouts = new Map<string, TaskCommand[]>();
  highestPublished: string | null = null;

  constructor(items: number, fresh: number) {
    this.out = {
      replies: [],
      outbox: [],
      outboxBatchId: newMessageId(),
      commands: 0,
      aborts: [],
      transitions: [],
      halts: [],
      notable: [],
      applied: fresh,
      duplicates: items - fresh,
      timings: { read: 0, decide: 0, write: 0, commit: 0 },
    };
    this.writes = {
      events: [],
      outbox: this.out.outbox,
      outboxBatchId: this.out.outboxBatchId,
      processed: [],
      intentReplies: [],
    };
  }

  /**
   * The release's view, its task list this batch's own: copied once per batch, then updated in place
   * by every event (copying a list of 10,000 tasks per event would be quadratic in a batch).
   */
  ownedView(l: LoadedRelease): ReleaseView {
    if (!this.ownsTasks.has(l)) {
      l.view = { ...l.view, tasks: l.view.tasks.slice() };
      this.ownsTasks.add(l);
    }
    return l.view;
  }

  reply(item: ReleaseInbound, r: IntentReply) {
    if (item.source !== 'intent') return;
    if (item.replyTo) this.out.replies.push({ to: item.replyTo, reply: r });
    if (isStoredIntent(item.intent))
      this.writes.intentReplies.push({ id: item.id, reply: withoutSnapshot(r) });
  }
}

/**
 * Applies a batch of messages in ONE transaction: releases locked in id order, every event run
 * through the pure lifecycle, then one write for all changed releases, one for all changed tasks,
 * one for all events, one for the outbox and one for the processed message ids.
 */
export async function applyBatch(db: Db, items: ReleaseInbound[], opts: ApplyOptions): Promise<BatchOutcome> {
  const outcome = await db.transaction(async (tx) => {
    const t0 = performance.now();
    // one round trip for all reads: processed ids, the clock, release locks, tasks, studies, notes
    const toLoad = [...new Set(items.filter((i) => !isCreate(i)).map(releaseIdOf))];
    const [seen, { loaded, now }] = await Promise.all([
      alreadyProcessed(
        tx,
        items.map((i) => i.id),
      ),
      loadReleasesForUpdate(tx, toLoad, opts.deadlines),
    ]);
    const fresh = freshItems(items, seen);
    const batch = new BatchState(items.length, fresh.length);
    for (const [id, l] of loaded) batch.loaded.set(id, l);
    if ([...loaded.values()].some((l) => l.view.state === 'staged' || l.view.state === 'publishing')) {
      batch.highestPublished = await highestPublishedVersion(tx);
    }
    const t1 = performance.now();
    const ctx: Context = { now, timing: opts.timing };
    for (const item of fresh) await applyOne(tx, batch, item, ctx, opts);
    addCommandChunks(batch, opts);
    addNotifications(batch.changes, batch.writes, opts);
    const t2 = performance.now();
    // one round trip for all writes
    await Promise.all([
      persistReleases(tx, batch.loaded.values(), opts.poll),
      writeSideEffects(tx, batch.writes),
    ]);
    const t3 = performance.now();
    batch.out.timings = { read: t1 - t0, decide: t2 - t1, write: t3 - t2, commit: t3 };
    return batch.out;
  });
  // the transaction callback stored when its writes finished; the rest is COMMIT
  outcome.timings.commit = performance.now() - outcome.timings.commit;
  return outcome;
}

function freshItems(items: ReleaseInbound[], seen: Set<string>): ReleaseInbound[] {
  const fresh: ReleaseInbound[] = [];
  const inBatch = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id) || inBatch.has(item.id)) continue;
    inBatch.add(item.id);
    fresh.push(item);
  }
  return fresh;
}

async function applyOne(tx: Tx, batch: BatchState, item: ReleaseInbound, ctx: Context, opts: ApplyOptions) {
  batch.writes.processed.push(item.id);
  if (item.source === 'intent' && item.intent.type === 'release.create') {
    const created = await createRelease(tx, item.intent, {
      releaseTimeoutMs: opts.releaseTimeoutMs,
      deadlines: opts.deadlines,
    });
    batch.reply(item, created.reply);
    if (created.kind === 'done') return;
    batch.loaded.set(item.intent.release.kfId, created.loaded);
  }
  const l = batch.loaded.get(releaseIdOf(item));
  if (!l) {
    batch.reply(item, { status: 404, body: { detail: 'Not found.' } });
    return;
  }
  const event = toEvent(item);
  if (!event) return;
  if (batch.highestPublished) l.view.highestPublished = batch.highestPublished;
  const outcome = decide(batch.ownedView(l), event, ctx, { tasksOwned: true });
  for (const e of outcome.log) batch.writes.events.push({ ...e, releaseId: l.view.kfId });
  recordRetries(batch, item, l);
  if (outcome.refused) {
    batch.reply(item, { status: 409, body: { detail: outcome.refused } });
    return;
  }
  takeOutcome(batch, l, outcome, item.id, opts);
  if (item.source === 'intent' && item.intent.type !== 'release.create') replyApplied(batch, item, l);
}

/** Failed attempts before a result's final outcome (cancel retries) are error events of their own. */
function recordRetries(batch: BatchState, item: ReleaseInbound, l: LoadedRelease) {
  if (item.source !== 'result' || !item.result.retryErrors?.length) return;
  const task = taskOf(l.view.tasks, item.result.taskId);
  for (const err of item.result.retryErrors) {
    batch.writes.events.push({
      type: 'error',
      message: `request to ${item.result.action} task ${item.result.taskId} of ${task?.serviceName ?? 'its service'} failed (will retry): ${err}`,
      releaseId: l.view.kfId,
      taskId: item.result.taskId,
      taskServiceId: task?.taskServiceId,
    });
  }
}

function takeOutcome(
  batch: BatchState,
  l: LoadedRelease,
  outcome: Outcome,
  sourceId: string,
  opts: ApplyOptions,
) {
  const before = l.view;
  l.view = outcome.release;
  for (const [taskId, delay] of outcome.polls) l.polls.set(taskId, delay);
  // the task list changes in place with the next event: keep what the notifications will show
  const released = outcome.transitions.some((t) => t.entity === 'release');
  const asNow = released ? { ...outcome.release, tasks: outcome.release.tasks.slice() } : outcome.release;
  for (const t of outcome.transitions) {
    const task = t.entity === 'task' ? taskOf(outcome.release.tasks, t.kfId) : undefined;
    batch.changes.push({ l, view: asNow, t, task });
    batch.out.transitions.push(t);
    l.entered.set(t.kfId, [...(l.entered.get(t.kfId) ?? []), t.to]);
  }
  if (outcome.release.state === 'published' && before.state !== 'published') {
    batch.highestPublished = outcome.release.version;
  }
  if (outcome.release.halt && !before.halt) {
    batch.out.halts.push({ releaseId: l.view.kfId, halt: outcome.release.halt });
  }
  for (const e of outcome.log) {
    if (e.type !== 'info') batch.out.notable.push({ ...e, releaseId: l.view.kfId });
  }
  if (outcome.abort) batch.out.aborts.push(l.view.kfId);
  for (const c of commandsFor(l, outcome.commands, sourceId)) {
    if (c.action === 'start' || c.action === 'publish')
      l.awaited.set(c.taskId, { command: c.id, marks: opts.marksEpoch?.() ?? null });
    const command: TaskCommand = {
      id: c.id,
      kind: 'task',
      action: c.action,
      taskId: c.taskId,
      releaseId: l.view.kfId,
      serviceId: c.serviceId,
      url: c.url,
      studies: l.studies,
      timeoutMs: c.timeoutMs,
      audience: c.audience,
    };
    batch.out.commands++;
    const key = `${c.action} ${l.view.kfId}`;
    const fanout = batch.fanouts.get(key);
    if (fanout) fanout.push(command);
    else batch.fanouts.set(key, [command]);
  }
}

/**
 * Every fan-out of the batch (one action to many tasks of one release) goes into the outbox as one
 * message per chunk of COMMAND_CHUNK commands, not one per task. Each command keeps its own id
 * (its sent-mark and its result are per command); the chunk's id is its first command's.
 */
function addCommandChunks(batch: BatchState, opts: ApplyOptions) {
  for (const commands of batch.fanouts.values()) {
    const first = commands[0]!;
    for (let i = 0; i < commands.length; i += COMMAND_CHUNK) {
      const part = commands.slice(i, i + COMMAND_CHUNK);
      const chunk: CommandChunk = { id: `chunk:${part[0]!.id}`, kind: 'chunk', commands: part };
      batch.writes.outbox.push(
        outboxMessage(chunk.id, opts.names.commandChunk(first.action, first.releaseId), chunk),
      );
    }
  }
}

/** A task report's answer carries the task as it now is, so the gateway need not read it again. */
function replyApplied(batch: BatchState, item: ReleaseInbound, l: LoadedRelease) {
  const intent = item.source === 'intent' ? item.intent : undefined;
  const reported = intent?.type === 'task.report' ? intent.taskId : undefined;
  const task = reported ? taskOf(l.view.tasks, reported) : undefined;
  batch.reply(item, {
    status: 200,
    body: {
      releaseId: l.view.kfId,
      state: l.view.state,
      ...(task ? { task: { state: task.state, progress: task.progress } } : {}),
    },
  });
}

/** One notification per transition, into the outbox of the same transaction (published after commit). */
function addNotifications(changes: BatchState['changes'], writes: PendingWrites, opts: ApplyOptions) {
  const shared = {
    urls: urls(opts.publicUrl),
    source: opts.publicUrl.PUBLIC_URL,
    time: new Date().toISOString(),
  };
  for (const { l, view, t, task } of changes) {
    const id = newMessageId();
    const n = buildNotification(l, view, t, l.notes, shared, id, task);
    const subject =
      t.entity === 'release'
        ? opts.names.releaseEvent(view.kfId, t.to)
        : opts.names.taskEvent(view.kfId, t.kfId, t.to);
    writes.outbox.push(outboxMessage(id, subject, n));
  }
}
