import { JetStreamApiCodes, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { newMessageId } from '../domain/ids';
import { formatDuration } from '../domain/lifecycle/phases';
import {
  COMMAND_CHUNK,
  type CommandChunk,
  type HealthCommand,
  type TaskCommand,
} from '../infra/bus/messages';
import { publishWindowed } from '../infra/bus/publish-window';
import type { SentMarks } from '../infra/bus/sent-marks';
import { isApiError } from '../infra/bus/streams';
import type { BusNames } from '../infra/bus/subjects';
import type { Db } from '../infra/db/client';
import type { Logger } from '../infra/logger';
import type { Timing } from '../timing';
import type { Inbound } from './apply';
import { forgetOlderThan, type KeptTable } from './store/housekeeping';
import { unsentIntents } from './store/intents';
import {
  claimDueHealthChecks,
  claimDuePolls,
  extendAwaiting,
  releasesPastDeadline,
  staleAwaitingTasks,
  studiesOfReleases,
  tasksWithoutProgress,
} from './store/scheduling';

/** how long applied message ids, answered intents and Idempotency-Keys are kept (docs/api.md) */
export const KEEP_APPLIED_DAYS = 7;
const HOUSEKEEPING_EVERY_MS = 3_600_000;
const HOUSEKEEPING_BATCH = 10_000;

export interface SchedulerOptions {
  tickMs: number;
  healthIntervalMs: number;
  timing: Timing;
  taskTimeoutMs: number;
  batchSize: number;
}

/**
 * Finds due work in Postgres with FOR UPDATE SKIP LOCKED, so several coordinators can run:
 * polls of running/publishing tasks, and releases or tasks past their deadline.
 */
export class Scheduler {
  private timer?: ReturnType<typeof setTimeout>;
  private running = false;
  private busy = false;
  /** monotonic (performance.now): a wall-clock jump must not stop or rush the scans */
  private lastTimeoutScan = Number.NEGATIVE_INFINITY;
  private lastHousekeeping = Number.NEGATIVE_INFINITY;
  /**
   * the sent-marks bucket's epoch as last read (refreshed every 5 s): recorded with every
   * start/publish sent, so a lost one is claimed as never sent only under the same bucket
   */
  marksEpoch: string | null = null;

  constructor(
    private readonly db: Db,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: BusNames,
    private readonly enqueue: (item: Inbound) => void,
    private readonly opts: SchedulerOptions,
    private readonly log: Logger,
    private readonly marks?: SentMarks,
  ) {}

  /** Reads the sent-marks bucket's epoch (kept as it was when NATS does not answer). */
  async refreshMarksEpoch(): Promise<string | null> {
    if (this.marks) this.marksEpoch = await this.marks.epoch();
    return this.marksEpoch;
  }

  private refreshing = false;
  private lastRefresh = Number.NEGATIVE_INFINITY;
  /**
   * Every 5 s, in the background: with NATS away the read waits for its timeout, and the scans that
   * need only Postgres must not wait with it. A bucket created again (NATS lost its store) is seen
   * within 5 s; commands sent meanwhile carry the old epoch and are only ever taken as possibly sent.
   */
  private refreshMarksEpochSoon() {
    if (this.refreshing || performance.now() - this.lastRefresh < 5_000) return;
    this.refreshing = true;
    this.lastRefresh = performance.now();
    void this.refreshMarksEpoch()
      .catch(() => undefined)
      .finally(() => {
        this.refreshing = false;
      });
  }

  start() {
    this.running = true;
    this.schedule(0);
  }

  stop() {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(ms: number) {
    if (!this.running) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      // each scan on its own: with NATS away, polls and health checks cannot be sent, but
      // intents stored in Postgres and timeouts must still be found
      let failed = false;
      const scan = async <T>(what: string, run: () => Promise<T>, otherwise: T): Promise<T> => {
        try {
          return await run();
        } catch (err) {
          failed = true;
          this.log.warn({ err: String(err), scan: what }, 'scheduler scan failed');
          return otherwise;
        }
      };
      // the scans that need only Postgres first: a NATS publish that waits must not hold them up
      if (performance.now() - this.lastTimeoutScan >= Math.max(this.opts.tickMs, 1_000)) {
        this.lastTimeoutScan = performance.now();
        await scan('stored intents', () => this.findUnsentIntents(), undefined);
        await scan('timeouts', () => this.findTimeouts(), undefined);
        this.refreshMarksEpochSoon();
        await scan('lost answers', () => this.findLostAnswers(), undefined);
      }
      if (performance.now() - this.lastHousekeeping >= HOUSEKEEPING_EVERY_MS) {
        this.lastHousekeeping = performance.now();
        await scan('housekeeping', () => this.forgetOldRecords(), undefined);
      }
      const polled = await scan('polls', () => this.sendDuePolls(), 0);
      await scan('health checks', () => this.sendDueHealthChecks(), 0);
      // a full batch means more is due right away
      this.schedule(
        failed ? Math.max(this.opts.tickMs, 1_000) : polled >= this.opts.batchSize ? 0 : this.opts.tickMs,
      );
    } finally {
      this.busy = false;
    }
  }

  /** Claims due polls (a lease, so a lost answer is re-polled later) and sends get_status for each. */
  async sendDuePolls(): Promise<number> {
    const timing = this.opts.timing;
    const due = await claimDuePolls(
      this.db,
      this.opts.batchSize,
      timing.deadlines.request,
      timing.pollLeaseMs(0),
    );
    if (due.length === 0) return 0;
    const studies = await studiesOfReleases(this.db, [...new Set(due.map((d) => d.release_id))]);
    const commands = due.map(
      (d): TaskCommand => ({
        id: `poll:${d.kf_id}:${newMessageId()}`,
        kind: 'task',
        action: 'get_status',
        taskId: d.kf_id,
        releaseId: d.release_id,
        serviceId: d.task_service_id,
        url: d.url,
        studies: studies.get(d.release_id) ?? [],
        timeoutMs: Number(d.request_timeout_ms),
        audience: d.token_audience,
      }),
    );
    // the round of polls travels in chunks, one message each; a lost one is polled again when its
    // lease (next_poll_at, set above) runs out
    const chunks: CommandChunk[] = [];
    for (let i = 0; i < commands.length; i += COMMAND_CHUNK) {
      const part = commands.slice(i, i + COMMAND_CHUNK);
      chunks.push({ id: `chunk:${part[0]!.id}`, kind: 'chunk', commands: part });
    }
    await publishWindowed(chunks, (chunk) =>
      this.js.publish(this.names.pollChunk, JSON.stringify(chunk), { msgID: chunk.id }),
    );
    return due.length;
  }

  /** Releases past their deadline, and tasks without progress for the task timeout, get a timeout event. */
  async findTimeouts(): Promise<void> {
    const releasesDue = await releasesPastDeadline(this.db);
    for (const r of releasesDue) {
      this.enqueue({
        id: `timeout:release:${r.kf_id}`,
        source: 'intent',
        intent: {
          type: 'release.timeout',
          id: `timeout:release:${r.kf_id}`,
          releaseId: r.kf_id,
          what: `release ${r.kf_id}`,
        },
      });
    }
    const tasksDue = await tasksWithoutProgress(this.db, this.opts.taskTimeoutMs);
    for (const t of tasksDue) {
      const id = `timeout:task:${t.kf_id}:${new Date(t.progress_at).getTime()}`;
      this.enqueue({
        id,
        source: 'intent',
        intent: {
          type: 'release.timeout',
          id,
          releaseId: t.release_id,
          what: `task ${t.kf_id} (no progress for ${formatDuration(this.opts.taskTimeoutMs)})`,
          taskId: t.kf_id,
        },
      });
    }
  }

  /**
   * Intents the gateway stored that NATS has not brought within a second (the gateway could not
   * publish them, or the bus lost them): applied from Postgres. One that NATS brings as well is
   * applied once (processed ids).
   */
  async findUnsentIntents(): Promise<void> {
    const rows = await unsentIntents(this.db, this.opts.batchSize);
    for (const { id, intent } of rows) this.enqueue({ id, source: 'intent', intent });
    if (rows.length > 0)
      this.log.info({ intents: rows.length }, 'applying intents found in Postgres (not brought by NATS)');
  }

  /**
   * Forgets what only guards against repeats, once no repeat can come: message ids applied (NATS
   * redelivers within minutes), answered intents and Idempotency-Keys (a client retries within
   * days at most). In bounded batches, so a large backlog never holds a long transaction.
   */
  async forgetOldRecords(): Promise<void> {
    const forget = async (table: KeptTable) => {
      let total = 0;
      for (;;) {
        const n = await forgetOlderThan(this.db, table, KEEP_APPLIED_DAYS, HOUSEKEEPING_BATCH);
        total += n;
        if (n < HOUSEKEEPING_BATCH) return total;
      }
    };
    const forgotten = {
      processed_messages: await forget('processed_messages'),
      intents: await forget('intents'),
      idempotency_keys: await forget('idempotency_keys'),
    };
    if (Object.values(forgotten).some((n) => n > 0)) this.log.info({ forgotten }, 'old records forgotten');
  }

  /** Claims enabled services whose health check is due and sends GET /status for each. */
  async sendDueHealthChecks(): Promise<number> {
    const due = await claimDueHealthChecks(
      this.db,
      this.opts.healthIntervalMs,
      this.opts.timing.deadlines.request,
    );
    await publishWindowed(due, (d) => {
      const command: HealthCommand = {
        id: `health:${d.kf_id}:${newMessageId()}`,
        kind: 'health',
        serviceId: d.kf_id,
        url: d.url,
        timeoutMs: Number(d.timeout),
        audience: d.token_audience,
      };
      return this.js.publish(this.names.healthCheck(d.kf_id), JSON.stringify(command), {
        msgID: command.id,
      });
    });
    return due.length;
  }

  /**
   * A task waiting for an answer past its deadline (and a grace) has lost it, unless that answer
   * can still come: the lifecycle then decides what a lost answer means (repeat an idempotent call,
   * find a start's outcome by polling), so no release ever waits forever and none fails because a
   * message was lost. A lost start or publish is first claimed in the sent marks: won, it was never
   * sent and is sent again (purged from NATS before any worker took it); lost, a worker may have
   * sent it (outcome unknown).
   *
   * Postgres is the record: the awaited action, its deadline and its command (`tasks.awaiting`,
   * `awaiting_until`, `awaiting_since`, `awaiting_command`) are written in the transaction that put
   * the command into the outbox. NATS is only asked whether the answer may still come, and only to
   * wait longer: while results wait unread in the result stream (a coordinator restarting or
   * behind), nothing is declared lost; a task whose release still has a chunk of that action queued
   * or being worked on gets a later deadline. A NATS that lost its store answers "no" to both.
   */
  async findLostAnswers(): Promise<void> {
    const grace = this.opts.timing.lostAnswerGraceMs;
    const stale = await staleAwaitingTasks(this.db, grace);
    if (stale.length === 0) return;
    // read once per scan (a claim is only made under the bucket the command was sent under); NATS
    // not answering here fails the scan at once instead of making every task below wait for it
    const epoch = await this.refreshMarksEpoch();
    // results stored in NATS but not read yet may hold the awaited answers: nothing is lost yet
    if (await this.resultsUnread()) return;
    const chunkQueued = new Map<string, Promise<boolean>>();
    for (const t of stale) {
      let queued: boolean;
      let neverSent = false;
      try {
        // a chunk of this release and action still queued or being worked on: only slow
        const subject = this.names.commandChunk(t.awaiting, t.release_id);
        let check = chunkQueued.get(subject);
        if (!check) {
          check = this.inStream(this.names.streams.commands, subject);
          chunkQueued.set(subject, check);
        }
        queued = await check;
        if (
          !queued &&
          (t.awaiting === 'start' || t.awaiting === 'publish') &&
          this.marks &&
          t.awaiting_command &&
          t.awaiting_marks !== null &&
          t.awaiting_marks === epoch
        )
          neverSent = (await this.marks.claimLost(t.awaiting_command)) === 'never-sent';
      } catch (err) {
        // NATS did not answer: nothing is known, look again at the next scan
        this.log.warn({ err: String(err), task: t.kf_id }, 'could not tell whether an answer is lost');
        continue;
      }
      if (queued) {
        await extendAwaiting(this.db, t.kf_id, t.awaiting);
        continue;
      }
      const id = `no_answer:${t.kf_id}:${t.awaiting}:${new Date(t.since).getTime()}`;
      this.log.warn({ task: t.kf_id, release: t.release_id, action: t.awaiting, neverSent }, 'answer lost');
      this.enqueue({
        id,
        source: 'intent',
        intent: {
          type: 'task.no_answer',
          id,
          releaseId: t.release_id,
          taskId: t.kf_id,
          action: t.awaiting as TaskCommand['action'],
          reason: neverSent
            ? `${t.awaiting} lost before any worker sent it`
            : `no answer to ${t.awaiting} (command and result lost)`,
          ...(neverSent ? { neverSent } : {}),
        },
      });
    }
  }

  /** results stored in NATS that no coordinator has read yet (they may hold the awaited answers) */
  private async resultsUnread(): Promise<boolean> {
    try {
      const info = await this.jsm.consumers.info(
        this.names.streams.results,
        this.names.consumers.coordinatorResults,
      );
      return info.num_pending > 0;
    } catch {
      return false;
    }
  }

  /** Whether a message on this subject is still in the stream (a stream that is gone holds none). */
  private async inStream(stream: string, subject: string): Promise<boolean> {
    try {
      return Boolean(await this.jsm.streams.getMessage(stream, { last_by_subj: subject }));
    } catch (err) {
      if (
        isApiError(err, JetStreamApiCodes.NoMessageFound) ||
        isApiError(err, JetStreamApiCodes.StreamNotFound)
      )
        return false;
      throw err;
    }
  }
}
