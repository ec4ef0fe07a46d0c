import { JetStreamApiCodes, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { sql } from 'drizzle-orm';
import { newMessageId } from '../domain/ids';
import { formatDuration } from '../domain/lifecycle/phases';
import {
  DEADLINE_RELEASE_STATES,
  PROGRESSING_TASK_STATES,
  WORKING_RELEASE_STATES,
} from '../domain/lifecycle/states';
import {
  COMMAND_CHUNK,
  type CommandChunk,
  type HealthCommand,
  type Intent,
  type TaskCommand,
} from '../infra/bus/messages';
import { publishWindowed } from '../infra/bus/publish-window';
import type { SentMarks } from '../infra/bus/sent-marks';
import { isApiError } from '../infra/bus/streams';
import type { BusNames } from '../infra/bus/subjects';
import type { Db } from '../infra/db/client';
import { inIds, inStates } from '../infra/db/raw-select';
import { queryRows } from '../infra/db/rows';
import { releaseStudies } from '../infra/db/schema';
import type { Logger } from '../infra/logger';
import type { Timing } from '../timing';
import type { Inbound } from './apply';

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

interface DuePoll {
  kf_id: string;
  release_id: string;
  task_service_id: string;
  url: string;
  token_audience: string | null;
  request_timeout_ms: number;
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
    const due = await queryRows<DuePoll>(
      this.db,
      sql`
      with due as (
        select kf_id from tasks
        where next_poll_at <= now()
        order by next_poll_at
        limit ${this.opts.batchSize}
        for update skip locked
      )
      update tasks t set poll_in_flight = true,
        next_poll_at = now() + (coalesce(s.request_timeout_ms, ${timing.deadlines.request}) + ${timing.pollLeaseMs(0)})
          * interval '1 millisecond'
      from due, task_services s
      where t.kf_id = due.kf_id and s.kf_id = t.task_service_id
      returning t.kf_id, t.release_id, t.task_service_id, s.url, s.token_audience,
        coalesce(s.request_timeout_ms, ${timing.deadlines.request}) as request_timeout_ms`,
    );
    if (due.length === 0) return 0;
    const releaseIds = [...new Set(due.map((d) => d.release_id))];
    const studyRows = await this.db
      .select()
      .from(releaseStudies)
      .where(inIds(releaseStudies.releaseId, releaseIds));
    const studies = new Map<string, string[]>();
    for (const s of studyRows) studies.set(s.releaseId, [...(studies.get(s.releaseId) ?? []), s.studyId]);
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
    const releasesDue = await queryRows<{ kf_id: string }>(
      this.db,
      sql`select kf_id from releases
          where deadline_at <= now() and ${inStates('state', DEADLINE_RELEASE_STATES)}
          limit 100`,
    );
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
    const tasksDue = await queryRows<{ kf_id: string; release_id: string; progress_at: string | Date }>(
      this.db,
      sql`select t.kf_id, t.release_id, t.progress_at from tasks t join releases r on r.kf_id = t.release_id
          where t.progress_at <= now() - ${this.opts.taskTimeoutMs} * interval '1 millisecond'
            and ${inStates('t.state', PROGRESSING_TASK_STATES)}
            and ${inStates('r.state', WORKING_RELEASE_STATES)}
          limit 100`,
    );
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
    const rows = await queryRows<{ id: string; body: Intent | string }>(
      this.db,
      sql`select id, body from intents
          where applied_at is null and created_at <= now() - interval '1 second'
          order by created_at limit ${this.opts.batchSize}`,
    );
    for (const r of rows) {
      const intent = (typeof r.body === 'string' ? JSON.parse(r.body) : r.body) as Intent;
      this.enqueue({ id: r.id, source: 'intent', intent });
    }
    if (rows.length > 0)
      this.log.info({ intents: rows.length }, 'applying intents found in Postgres (not brought by NATS)');
  }

  /**
   * Forgets what only guards against repeats, once no repeat can come: message ids applied (NATS
   * redelivers within minutes), answered intents and Idempotency-Keys (a client retries within
   * days at most). In bounded batches, so a large backlog never holds a long transaction.
   */
  async forgetOldRecords(): Promise<void> {
    const cutoff = sql`now() - make_interval(days => ${KEEP_APPLIED_DAYS}::int)`;
    const forget = async (table: string, where: ReturnType<typeof sql>) => {
      let total = 0;
      for (;;) {
        const gone = await queryRows<{ n: number }>(
          this.db,
          sql`with gone as (delete from ${sql.raw(table)} where ctid in (
                select ctid from ${sql.raw(table)} where ${where} limit ${HOUSEKEEPING_BATCH}) returning 1)
              select count(*)::int as n from gone`,
        );
        total += gone[0]?.n ?? 0;
        if ((gone[0]?.n ?? 0) < HOUSEKEEPING_BATCH) return total;
      }
    };
    const forgotten = {
      processed_messages: await forget('processed_messages', sql`created_at < ${cutoff}`),
      intents: await forget('intents', sql`applied_at < ${cutoff}`),
      idempotency_keys: await forget('idempotency_keys', sql`created_at < ${cutoff}`),
    };
    if (Object.values(forgotten).some((n) => n > 0)) this.log.info({ forgotten }, 'old records forgotten');
  }

  /** Claims enabled services whose health check is due and sends GET /status for each. */
  async sendDueHealthChecks(): Promise<number> {
    const due = await queryRows<{
      kf_id: string;
      url: string;
      token_audience: string | null;
      timeout: number;
    }>(
      this.db,
      sql`
      with due as (
        select kf_id from task_services
        where enabled and not deleted and (next_health_at is null or next_health_at <= now())
        order by next_health_at nulls first
        limit 500
        for update skip locked
      )
      update task_services s set next_health_at = now() + ${this.opts.healthIntervalMs} * interval '1 millisecond'
      from due where s.kf_id = due.kf_id
      returning s.kf_id, s.url, s.token_audience,
        coalesce(s.request_timeout_ms, ${this.opts.timing.deadlines.request}) as timeout`,
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
    const stale = await queryRows<{
      kf_id: string;
      release_id: string;
      task_service_id: string;
      awaiting: string;
      since: Date | string;
      awaiting_command: string | null;
      awaiting_marks: string | null;
    }>(
      this.db,
      sql`select kf_id, release_id, task_service_id, awaiting, awaiting_since as since,
            awaiting_command, awaiting_marks from tasks
          where awaiting is not null and awaiting_until <= now() - ${grace} * interval '1 millisecond'
          limit 100`,
    );
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
        await this.db.execute(
          sql`update tasks set awaiting_until = now() where kf_id = ${t.kf_id} and awaiting = ${t.awaiting}`,
        );
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
