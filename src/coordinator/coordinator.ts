import {
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../config';
import { pullForever } from '../infra/bus/consume';
import { HaltedReleases } from '../infra/bus/halted';
import {
  type Intent,
  type IntentBatch,
  type IntentReply,
  isStoredIntent,
  REPLY_HEADER,
  type Result,
  type ResultBatch,
} from '../infra/bus/messages';
import { isResultBatch } from '../infra/bus/result-batcher';
import { SentMarks } from '../infra/bus/sent-marks';
import type { BusNames } from '../infra/bus/subjects';
import type { Db } from '../infra/db/client';
import { isUnavailable } from '../infra/errors';
import type { Logger } from '../infra/logger';
import type { Metrics } from '../infra/ops/metrics';
import { sleep } from '../infra/time';
import { deriveTiming, type Timing } from '../timing';
import { type ApplyOptions, applyBatch, type BatchOutcome, type Inbound, replyText } from './apply';
import { applyHealthResults } from './health';
import { OutboxRelay } from './outbox-relay';
import { Scheduler } from './scheduler';
import { answerStoredIntent } from './store/intents';
import { pingDatabase, recordParkedEvent } from './store/parking';

const MAX_BATCH = 500;
/** tries of a message on its own, while Postgres answers, before it is parked as unappliable */
const POISON_ATTEMPTS = 3;
/** pause before the second and third try (times the attempt): a lock conflict or a blip may pass */
const POISON_PAUSE_MS = 50;
/** a message NATS redelivers after a dependency was out of reach waits 1, 2, 4 … s, at most this */
const REDELIVERY_MAX_MS = 30_000;

/** One NATS message, which may carry many items (a batch of results). */
interface Delivery {
  msg: JsMsg;
  /** items it carries */
  size: number;
  /** items not yet settled */
  left: number;
  /** the longest redelivery delay asked for by an item that could not be applied, if any */
  retry: number | undefined;
}

interface Queued {
  item: Inbound;
  delivery?: Delivery;
}

/**
 * An item is done with: applied, parked, or to be redelivered after `retryMs`. When every item of
 * its message is done, the message is acked, or nak'd if any item must come again (the items that
 * were applied are then skipped as already processed).
 */
function settle(q: Queued, retryMs?: number) {
  const d = q.delivery;
  if (!d) return;
  if (retryMs !== undefined) d.retry = Math.max(d.retry ?? 0, retryMs);
  if (--d.left > 0) return;
  if (d.retry === undefined) d.msg.ack();
  else d.msg.nak(d.retry);
}

/**
 * Points where a caller may look in on a batch (the test harness arms fault points here, e.g.
 * test/support/main-with-faults.ts exits right after a commit to prove the outbox loses nothing).
 */
export interface CoordinatorHooks {
  /** the batch is committed; its `published` outbox messages are not sent yet */
  afterCommit?(batch: { published: number }): void;
}

/**
 * The single writer of release and task state. Consumes intents and worker results, applies
 * them in batched transactions, then publishes the resulting commands (via the outbox), aborts
 * and replies, and only then acks.
 */
export class Coordinator {
  private readonly queue: Queued[] = [];
  private readonly attached: ConsumerMessages[] = [];
  private wake?: () => void;
  private running = false;
  private loops: Promise<unknown>[] = [];
  private readonly js: JetStreamClient;
  private readonly relay: OutboxRelay;
  scheduler!: Scheduler;
  private readonly applyOptions: ApplyOptions;
  private readonly timing: Timing;
  private readonly gatherMs: number;
  /** task commands sent whose results have not been applied yet (a hint for gatherAnswers) */
  private outstanding = 0;
  private idle = Promise.resolve();
  stats = { batches: 0, applied: 0, duplicates: 0, failures: 0 };

  constructor(
    private readonly db: Db,
    private readonly nc: NatsConnection,
    private readonly names: BusNames,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
    private readonly ensureBus?: () => Promise<void>,
    private readonly hooks: CoordinatorHooks = {},
  ) {
    this.js = jetstream(nc);
    this.relay = new OutboxRelay(db, this.js, log);
    this.gatherMs = config.COORDINATOR_GATHER_MS;
    this.timing = deriveTiming(config);
    this.applyOptions = {
      names,
      publicUrl: config,
      poll: { jitter: config.POLL_JITTER },
      releaseTimeoutMs: config.RELEASE_TIMEOUT_MS,
      timing: this.timing.lifecycle,
      deadlines: this.timing.deadlines,
      marksEpoch: () => this.scheduler?.marksEpoch ?? null,
    };
  }

  private halted!: HaltedReleases;

  async start() {
    const config = this.config;
    const replicas = { replicas: config.NATS_REPLICAS };
    this.halted = await HaltedReleases.open(this.nc, this.names, replicas);
    const marks = await SentMarks.open(this.nc, this.names, replicas);
    this.scheduler = new Scheduler(
      this.db,
      this.js,
      await jetstreamManager(this.nc),
      this.names,
      (item) => this.enqueue({ item }),
      {
        tickMs: Math.min(config.SCHEDULER_TICK_MS, config.POLL_INTERVAL_MS),
        timing: this.timing,
        taskTimeoutMs: config.TASK_TIMEOUT_MS,
        batchSize: 1_000,
        healthIntervalMs: config.HEALTH_INTERVAL_MS,
      },
      this.log,
      marks,
    );
    await this.scheduler.refreshMarksEpoch();
    this.running = true;
    await this.relay.sweep(0);
    this.relay.start(2_000, 3_000);
    const pull = (stream: string, durable: string, parse: (m: JsMsg) => Parsed) =>
      pullForever({
        js: this.js,
        stream,
        durable,
        maxMessages: 1_000,
        expiresMs: this.timing.coordinatorPullExpiresMs,
        log: this.log,
        running: () => this.running,
        onMessage: (m) => {
          let items: Inbound[];
          try {
            const parsed = parse(m);
            items = parsed.items;
            this.dropUnreadable(m, parsed.unreadable);
          } catch (err) {
            this.log.error({ err: String(err), subject: m.subject }, 'unreadable message dropped');
            m.term();
            return;
          }
          if (items.length === 0) {
            m.ack();
            return;
          }
          // a batch of results is acked once every item in it is applied (or parked)
          const delivery: Delivery = { msg: m, size: items.length, left: items.length, retry: undefined };
          for (const item of items) this.enqueue({ item, delivery });
        },
        onAttach: (messages) => this.attached.push(messages),
        ensure: this.ensureBus,
      });
    this.loops.push(
      pull(this.names.streams.intents, this.names.consumers.coordinatorIntents, parseIntent),
      pull(this.names.streams.results, this.names.consumers.coordinatorResults, parseResult),
      this.applyLoop(),
    );
    this.scheduler.start();
    this.log.info({ prefix: this.names.prefix }, 'coordinator started');
  }

  /**
   * Items of a batch that cannot be read (no id, no type) are dropped one by one, never the batch
   * with them: one error line, and a caller still waiting (a callback's reply subject) gets a 422.
   */
  private dropUnreadable(m: JsMsg, unreadable: Unreadable[]) {
    if (unreadable.length === 0) return;
    this.log.error(
      { subject: m.subject, count: unreadable.length, err: unreadable[0]!.error },
      'unreadable items of a batch dropped; the rest is applied',
    );
    this.metrics?.messages.inc({ outcome: 'unreadable' }, unreadable.length);
    for (const u of unreadable) {
      if (!u.replyTo) continue;
      const reply: IntentReply = {
        status: 422,
        body: { detail: `The message could not be read: ${u.error}.` },
      };
      this.sendReply(u.replyTo, reply);
    }
  }

  /**
   * Answers a waiting gateway. Best effort: a gateway that gets no answer reads the intent's stored
   * answer or the release from Postgres. A reply over NATS's max_payload (the snapshot of a release
   * with thousands of tasks) goes without its snapshot, and the gateway reads the release instead.
   */
  private sendReply(to: string, reply: IntentReply) {
    try {
      this.nc.publish(to, replyText(reply, this.nc.info?.max_payload ?? 1024 * 1024));
    } catch (err) {
      this.log.warn(
        { err: rootMessage(err), to },
        'reply to the gateway not sent; it reads the answer from Postgres',
      );
    }
  }

  enqueue(q: Queued) {
    this.queue.push(q);
    this.wake?.();
  }

  private async applyLoop() {
    // Messages wait in the queue or in a batch; tell NATS they are being worked on so only a
    // dead coordinator's messages are redelivered.
    const heartbeat = setInterval(() => {
      const held = new Set<JsMsg>();
      for (const q of this.queue) if (q.delivery) held.add(q.delivery.msg);
      for (const q of this.inBatch) if (q.delivery) held.add(q.delivery.msg);
      for (const m of held) m.working();
    }, this.timing.coordinatorHeartbeatMs);
    try {
      await this.applyLoopInner();
    } finally {
      clearInterval(heartbeat);
    }
  }

  private inBatch: Queued[] = [];

  private async applyLoopInner() {
    while (this.running) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      await this.gatherAnswers();
      const batch = this.queue.splice(0, MAX_BATCH);
      this.inBatch = batch;
      const done = this.process(batch);
      this.idle = done.then(() => {});
      await done;
    }
  }

  /**
   * A fan-out's answers arrive within milliseconds of each other. When the queue holds answers and
   * more are outstanding, wait (at most COORDINATOR_GATHER_MS) so they share one transaction instead
   * of the first paying for a batch alone while the rest queue behind it. The count is a hint only:
   * answers can go to another coordinator, so a wait that runs out resets it.
   */
  private async gatherAnswers() {
    if (this.gatherMs <= 0 || this.outstanding <= this.queue.length) return;
    if (!this.queue.some((q) => q.item.source === 'result')) return;
    const until = performance.now() + this.gatherMs;
    while (this.running && this.queue.length < Math.min(this.outstanding, MAX_BATCH)) {
      const left = until - performance.now();
      if (left <= 0) {
        this.outstanding = this.queue.length;
        return;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
  }

  private async process(batch: Queued[]) {
    try {
      await this.applyAndPublish(batch);
    } catch (err) {
      if (batch.length === 1) return this.applyAlone(batch[0]!, err);
      this.log.warn(
        { err: String(err), size: batch.length },
        'batch failed; applying its messages one by one',
      );
      for (const q of batch) await this.applyAlone(q);
    }
  }

  /**
   * A message whose batch failed, tried on its own. Postgres or NATS out of reach is not the
   * message's fault: it goes back to NATS, to be redelivered later and later. Any other failure,
   * POISON_ATTEMPTS times in a row while Postgres answers, means the message cannot be applied at
   * all: it is parked instead of being redelivered until NATS gives up on it.
   */
  private async applyAlone(q: Queued, failedOnce?: unknown) {
    let attempts = failedOnce === undefined ? 0 : 1;
    let last = failedOnce;
    while (last === undefined || !isUnavailable(last)) {
      if (attempts >= POISON_ATTEMPTS) {
        if (await this.databaseAnswers()) return this.park(q, last, attempts);
        break;
      }
      if (attempts > 0) await sleep(POISON_PAUSE_MS * attempts);
      try {
        await this.applyAndPublish([q]);
        return;
      } catch (err) {
        last = err;
        attempts++;
      }
    }
    this.stats.failures++;
    this.metrics?.messages.inc({ outcome: 'failed' });
    const deliveries = q.delivery?.msg.info.deliveryCount ?? 1;
    const delayMs = Math.min(REDELIVERY_MAX_MS, 1_000 * 2 ** (deliveries - 1));
    this.log.warn(
      { err: rootMessage(last), id: q.item.id, deliveries, delayMs },
      'message not applied (a dependency is out of reach); NATS redelivers it',
    );
    settle(q, delayMs);
  }

  /**
   * Takes a message that cannot be applied out of circulation: terminated in NATS, an error
   * event, a metric, one error log line, and an answer to the request still waiting on it.
   */
  private async park(q: Queued, err: unknown, attempts: number) {
    const item = q.item;
    const type =
      item.source === 'intent'
        ? item.intent.type
        : item.source === 'result'
          ? `result.${item.result.action}`
          : 'health';
    const releaseId =
      item.source === 'health'
        ? null
        : item.source === 'result'
          ? item.result.releaseId
          : item.intent.type === 'release.create'
            ? item.intent.release.kfId
            : item.intent.releaseId;
    const taskId =
      item.source === 'result'
        ? item.result.taskId
        : item.source === 'intent' && 'taskId' in item.intent
          ? item.intent.taskId
          : null;
    const reason = rootMessage(err);
    this.stats.failures++;
    this.metrics?.poisoned.inc({ type });
    this.log.error(
      { err: reason, id: item.id, type, releaseId, attempts },
      'message cannot be applied; parked (terminated in NATS, not retried)',
    );
    // no reason text: nats-server before 2.10 ignores a "+TERM <reason>" it does not recognise.
    // An item of a batch of results is set aside alone: its message is acked with the others.
    if (q.delivery?.size === 1) q.delivery.msg.term();
    else settle(q);
    await recordParkedEvent(this.db, {
      message: printable(`${type} ${item.id} could not be applied and was set aside: ${reason}`),
      releaseId,
      taskId,
    }).catch((e) =>
      this.log.warn({ err: rootMessage(e), id: item.id }, 'error event of a parked message not written'),
    );
    if (item.source !== 'intent') return;
    const reply: IntentReply = {
      status: isBadData(err) ? 422 : 500,
      body: { detail: `The coordinator could not apply this request: ${reason}` },
    };
    if (item.replyTo) this.sendReply(item.replyTo, reply);
    if (isStoredIntent(item.intent)) {
      // answered for good: the sweep of stored intents must not bring it back every second
      await answerStoredIntent(this.db, item.id, reply).catch((e) =>
        this.log.warn({ err: rootMessage(e), id: item.id }, 'answer of a parked intent not stored'),
      );
    }
  }

  /** Postgres answers a trivial query (within two seconds): a failure was not about reaching it. */
  private async databaseAnswers(): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        pingDatabase(this.db),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), 2_000);
        }),
      ]);
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private async applyAndPublish(batch: Queued[]) {
    const started = performance.now();
    const health = batch.flatMap((q) => (q.item.source === 'health' ? [q.item.result] : []));
    const downs = await applyHealthResults(this.db, health, this.config.HEALTH_FAILURE_THRESHOLD);
    const outcome = await applyBatch(
      this.db,
      batch.flatMap((q) => (q.item.source === 'health' ? [] : [q.item])),
      this.applyOptions,
    );
    for (const intent of downs) this.enqueue({ item: { id: intent.id, source: 'intent', intent } });
    const answers = batch.filter((q) => q.item.source === 'result').length;
    this.outstanding = Math.max(0, this.outstanding - answers) + outcome.commands;
    this.stats.batches++;
    this.metrics?.batches.inc();
    this.metrics?.messages.inc({ outcome: 'applied' }, outcome.applied);
    this.metrics?.messages.inc({ outcome: 'duplicate' }, outcome.duplicates);
    for (const t of outcome.transitions) this.metrics?.transitions.inc({ entity: t.entity, to: t.to });
    this.stats.applied += outcome.applied;
    this.stats.duplicates += outcome.duplicates;
    this.logChanges(outcome);
    this.hooks.afterCommit?.({ published: outcome.outbox.length });
    for (const releaseId of outcome.aborts) {
      await this.halted.mark(releaseId);
      this.nc.publish(this.names.abort(releaseId));
    }
    const published = performance.now();
    await this.relay.publish(outcome.outboxBatchId, outcome.outbox);
    const publishMs = performance.now() - published;
    for (const r of outcome.replies) this.sendReply(r.to, r.reply);
    for (const q of batch) settle(q);
    this.log.debug(
      {
        size: batch.length,
        applied: outcome.applied,
        published: outcome.outbox.length,
        ms: Math.round((performance.now() - started) * 10) / 10,
        phases: Object.fromEntries(
          Object.entries({ ...outcome.timings, publish: publishMs }).map(([k, v]) => [
            k,
            Math.round(v * 10) / 10,
          ]),
        ),
      },
      'batch applied',
    );
  }

  /**
   * What operators read in the process log: every release transition at info, every halt and every
   * failed call or refused report at warn (the same facts are events in Postgres).
   */
  private logChanges(outcome: BatchOutcome) {
    for (const t of outcome.transitions) {
      if (t.entity === 'release')
        this.log.info({ release: t.kfId, from: t.from, to: t.to }, 'release changed state');
    }
    for (const { releaseId, halt } of outcome.halts) {
      this.log.warn(
        {
          release: releaseId,
          reason: halt.reason,
          task: halt.taskId ?? undefined,
          service: halt.serviceName ?? halt.serviceId ?? undefined,
          by: halt.by ?? undefined,
          message: halt.message,
        },
        'release halted',
      );
    }
    for (const e of outcome.notable) {
      this.log.warn(
        { release: e.releaseId, task: e.taskId, service: e.taskServiceId, type: e.type },
        e.message,
      );
    }
  }

  /**
   * Graceful stop: pull nothing more, finish the batch being applied (its transaction and its
   * publishes), and hand every message still queued back to NATS for another coordinator.
   */
  async stop() {
    this.running = false;
    this.scheduler?.stop();
    this.relay.stop();
    for (const m of this.attached.splice(0)) m.stop();
    this.wake?.();
    await this.idle;
    for (const q of this.queue.splice(0)) settle(q, 0);
  }
}

/** An item of a batch message that cannot be applied: who may be waiting for it, and why. */
interface Unreadable {
  replyTo?: string;
  error: string;
}

/** What a message holds: the items to apply, and those of a batch that cannot be read. */
interface Parsed {
  items: Inbound[];
  unreadable: Unreadable[];
}

/** Reads every item of a batch on its own, so one bad item never takes the good ones with it. */
function eachItem<T>(list: T[], read: (x: T) => Inbound, replyOf: (x: T) => unknown): Parsed {
  const out: Parsed = { items: [], unreadable: [] };
  for (const x of list) {
    try {
      out.items.push(read(x));
    } catch (err) {
      const replyTo = replyOf(x);
      out.unreadable.push({
        replyTo: typeof replyTo === 'string' && replyTo ? replyTo : undefined,
        error: (err as Error).message,
      });
    }
  }
  return out;
}

function parseIntent(m: JsMsg): Parsed {
  const body = m.json<Intent | IntentBatch>();
  if (body && 'kind' in body && body.kind === 'batch' && Array.isArray(body.intents))
    return eachItem(
      body.intents,
      (x) => inboundOfIntent(x?.intent, x?.replyTo),
      (x) => x?.replyTo,
    );
  return {
    items: [inboundOfIntent(body as Intent, m.headers?.get(REPLY_HEADER) || undefined)],
    unreadable: [],
  };
}

function inboundOfIntent(intent: Intent | undefined, replyTo: string | undefined): Inbound {
  if (
    !intent ||
    typeof intent !== 'object' ||
    typeof intent.id !== 'string' ||
    typeof intent.type !== 'string'
  )
    throw new Error('not an intent');
  return { id: intent.id, source: 'intent', intent, replyTo: replyTo || undefined };
}

function parseResult(m: JsMsg): Parsed {
  const body = m.json<Result | ResultBatch>();
  if (isResultBatch(body)) return eachItem(body.results, inboundOfResult, () => undefined);
  return { items: [inboundOfResult(body)], unreadable: [] };
}

function inboundOfResult(result: Result): Inbound {
  if (!result || typeof result !== 'object' || typeof result.id !== 'string') throw new Error('not a result');
  if (result.kind === 'health') return { id: result.id, source: 'health', result };
  return { id: result.id, source: 'result', result };
}

/** The innermost error's message (Drizzle wraps the driver's, with the statement and its values), printable. */
function rootMessage(err: unknown): string {
  let e = err as { cause?: unknown; message?: unknown } | undefined;
  for (let depth = 0; depth < 5 && e?.cause; depth++) e = e.cause as typeof e;
  return printable(typeof e?.message === 'string' ? e.message : String(err));
}

/** text a log line and an event can hold: no NUL, no unpaired surrogate, at most 500 characters */
function printable(text: string): string {
  return text
    .replaceAll('\u0000', '')
    .replace(/\p{Cs}/gu, '\uFFFD')
    .slice(0, 500);
}

/** SQLSTATE class 22 (data exception) or 23 (integrity constraint): the message's content was refused */
function isBadData(err: unknown): boolean {
  for (let e = err as { cause?: unknown; code?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.code === 'string' && /^2[23][0-9A-Z]{3}$/.test(e.code)) return true;
    e = e.cause as typeof e;
  }
  return false;
}
