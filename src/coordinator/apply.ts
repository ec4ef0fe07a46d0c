import type { Intent, IntentReply, Result, TaskCommand } from '../bus/messages';
import type { BusNames } from '../bus/subjects';
import type { Db } from '../db/client';
import { buildNotification } from '../events/notifications';
import { urls } from '../http/context';
import { decide, type LifecycleEvent, type ReleaseView, type Transition } from '../lifecycle/lifecycle';
import { newMessageId } from '../shared/ids';
import {
  alreadyProcessed,
  commandsFor,
  type LoadedRelease,
  loadReleasesForUpdate,
  type PendingWrites,
  type PollTiming,
  persistReleases,
  writeSideEffects,
} from './aggregate';
import { createRelease } from './create-release';

/** One message for the coordinator: an intent from the gateway/scheduler or a worker's result. */
export type Inbound =
  | { id: string; source: 'intent'; intent: Intent; replyTo?: string }
  | { id: string; source: 'result'; result: Extract<Result, { kind: 'task' }> }
  | { id: string; source: 'health'; result: Extract<Result, { kind: 'health' }> };

export interface OutboxMessage {
  id: string;
  subject: string;
  payload: unknown;
}

export interface BatchOutcome {
  replies: Array<{ to: string; reply: IntentReply }>;
  outbox: OutboxMessage[];
  /** the outbox row holding `outbox` (deleted once they are all published) */
  outboxBatchId: string;
  aborts: string[];
  /** how many task commands the batch sends (each will come back as one result) */
  commands: number;
  /** every state change the batch made (metrics) */
  transitions: Transition[];
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
}

type ReleaseInbound = Exclude<Inbound, { source: 'health' }>;

function releaseIdOf(item: ReleaseInbound): string {
  if (item.source === 'result') return item.result.releaseId;
  return item.intent.type === 'release.create' ? item.intent.release.kfId : item.intent.releaseId;
}

function toEvent(item: ReleaseInbound): LifecycleEvent | undefined {
  if (item.source === 'result') {
    const r = item.result;
    return r.ok
      ? { kind: 'call_ok', taskId: r.taskId, action: r.action, state: r.state, progress: r.progress }
      : { kind: 'call_failed', taskId: r.taskId, action: r.action, reason: r.error ?? `HTTP ${r.status}` };
  }
  const i = item.intent;
  switch (i.type) {
    case 'release.cancel':
      return { kind: 'cancel', reason: i.reason };
    case 'release.publish':
      return { kind: 'publish' };
    case 'release.timeout':
      return { kind: 'timeout', what: i.what };
    case 'task.report':
      return { kind: 'report', taskId: i.taskId, state: i.state, progress: i.progress };
    case 'release.create':
      return { kind: 'begin' };
    case 'task_service.down':
      return { kind: 'service_down', taskServiceId: i.serviceId, reason: i.reason };
    case 'task.no_answer':
      return { kind: 'call_failed', taskId: i.taskId, action: i.action, reason: i.reason };
  }
}

/**
 * Applies a batch of messages in ONE transaction: releases locked in id order, every event run
 * through the pure lifecycle, then one write per changed release, one for all changed tasks, one
 * for all events, one for the outbox and one for the processed message ids.
 */
export async function applyBatch(db: Db, items: ReleaseInbound[], opts: ApplyOptions): Promise<BatchOutcome> {
  const outcome = await db.transaction(async (tx) => {
    // one round trip for all reads: processed ids, release locks, tasks, studies, notes
    const toLoad = [
      ...new Set(
        items.filter((i) => !(i.source === 'intent' && i.intent.type === 'release.create')).map(releaseIdOf),
      ),
    ];
    const t0 = performance.now();
    const [seen, preloaded] = await Promise.all([
      alreadyProcessed(
        tx,
        items.map((i) => i.id),
      ),
      loadReleasesForUpdate(tx, toLoad),
    ]);
    const t1 = performance.now();
    const fresh: ReleaseInbound[] = [];
    const inBatch = new Set<string>();
    for (const item of items) {
      if (seen.has(item.id) || inBatch.has(item.id)) continue;
      inBatch.add(item.id);
      fresh.push(item);
    }
    const out: BatchOutcome = {
      replies: [],
      outbox: [],
      outboxBatchId: newMessageId(),
      commands: 0,
      aborts: [],
      transitions: [],
      applied: fresh.length,
      duplicates: items.length - fresh.length,
      timings: { read: 0, decide: 0, write: 0, commit: 0 },
    };
    const writes: PendingWrites = {
      events: [],
      outbox: out.outbox,
      outboxBatchId: out.outboxBatchId,
      processed: [],
    };
    const loaded = new Map<string, LoadedRelease>();
    const changes: Array<{ l: LoadedRelease; view: ReleaseView; t: Transition }> = [];
    const reply = (item: ReleaseInbound, r: IntentReply) => {
      if (item.source === 'intent' && item.replyTo) out.replies.push({ to: item.replyTo, reply: r });
    };

    for (const [id, l] of preloaded) loaded.set(id, l);

    for (const item of fresh) {
      writes.processed.push(item.id);
      if (item.source === 'intent' && item.intent.type === 'release.create') {
        const created = await createRelease(tx, item.intent, opts.releaseTimeoutMs);
        reply(item, created.reply);
        if (created.kind === 'done') continue;
        loaded.set(item.intent.release.kfId, created.loaded);
      }
      const l = loaded.get(releaseIdOf(item));
      if (!l) {
        reply(item, { status: 404, body: { detail: 'Not found.' } });
        continue;
      }
      const event = toEvent(item);
      if (!event) continue;
      const outcome = decide(l.view, event);
      for (const e of outcome.log) writes.events.push({ ...e, releaseId: l.view.kfId });
      if (item.source === 'result' && item.result.action === 'get_status') l.polled.add(item.result.taskId);
      if (item.source === 'result' && item.result.retryErrors?.length) {
        for (const err of item.result.retryErrors) {
          writes.events.push({
            type: 'error',
            message: `request to ${item.result.action} task failed (will retry): ${err}`,
            releaseId: l.view.kfId,
            taskId: item.result.taskId,
          });
        }
      }
      if (outcome.refused) {
        reply(item, { status: 409, body: { detail: outcome.refused } });
        continue;
      }
      l.view = outcome.release;
      for (const t of outcome.transitions) {
        changes.push({ l, view: outcome.release, t });
        out.transitions.push(t);
      }
      if (outcome.abort) out.aborts.push(l.view.kfId);
      for (const c of commandsFor(l, outcome.commands, item.id)) {
        const command: TaskCommand = {
          id: c.id,
          kind: 'task',
          action: c.action,
          taskId: c.taskId,
          releaseId: l.view.kfId,
          serviceId: c.serviceId,
          url: c.url,
          studies: l.studies,
        };
        out.commands++;
        writes.outbox.push({
          id: c.id,
          subject: opts.names.command(c.action, c.serviceId, c.taskId),
          payload: command,
        });
      }
      if (item.source === 'intent' && item.intent.type !== 'release.create') {
        // a task report's answer carries the task as it now is, so the gateway need not read it again
        const reported = item.intent.type === 'task.report' ? item.intent.taskId : undefined;
        const task = reported ? l.view.tasks.find((t) => t.kfId === reported) : undefined;
        reply(item, {
          status: 200,
          body: {
            releaseId: l.view.kfId,
            state: l.view.state,
            ...(task ? { task: { state: task.state, progress: task.progress } } : {}),
          },
        });
      }
    }
    addNotifications(changes, writes, opts);
    const t2 = performance.now();
    // one round trip for all writes
    await Promise.all([persistReleases(tx, loaded.values(), opts.poll), writeSideEffects(tx, writes)]);
    const t3 = performance.now();
    out.timings = { read: t1 - t0, decide: t2 - t1, write: t3 - t2, commit: t3 };
    return out;
  });
  // the transaction callback stored when its writes finished; the rest is COMMIT
  outcome.timings.commit = performance.now() - outcome.timings.commit;
  return outcome;
}

/** One notification per transition, into the outbox of the same transaction (published after commit). */
function addNotifications(
  changes: Array<{ l: LoadedRelease; view: ReleaseView; t: Transition }>,
  writes: PendingWrites,
  opts: ApplyOptions,
) {
  const u = urls(opts.publicUrl);
  for (const { l, view, t } of changes) {
    const id = newMessageId();
    const n = buildNotification(l, view, t, l.notes, u, opts.publicUrl.PUBLIC_URL, id);
    const subject =
      t.entity === 'release'
        ? opts.names.releaseEvent(view.kfId, t.to)
        : opts.names.taskEvent(view.kfId, t.kfId, t.to);
    writes.outbox.push({ id, subject, payload: n });
  }
}
