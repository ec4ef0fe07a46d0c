import { type ConsumerMessages, type JetStreamClient, type JsMsg, jetstream } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { newMessageId } from '../domain/ids';
import type { Action } from '../domain/lifecycle/states';
import { cancelRetryPause } from '../domain/lifecycle/timing';
import { TokenError } from '../infra/auth/outbound';
import { pullForever } from '../infra/bus/consume';
import { HaltedReleases } from '../infra/bus/halted';
import type {
  Command,
  CommandChunk,
  CommandMessage,
  HealthCommand,
  HealthResult,
  TaskCommand,
  TaskResult,
} from '../infra/bus/messages';
import { ResultBatcher } from '../infra/bus/result-batcher';
import { SentMarks } from '../infra/bus/sent-marks';
import type { BusNames } from '../infra/bus/subjects';
import type { Logger } from '../infra/logger';
import type { Metrics } from '../infra/ops/metrics';
import { cachedLookup, checkedAddresses, type Lookup } from '../infra/task-service/address-policy';
import { type CallOutcome, getStatus, postTask } from '../infra/task-service/client';
import { sleep } from '../infra/time';

export interface WorkerOptions {
  concurrency: number;
  /** deadline of a call whose command names none (commands of earlier versions, health checks) */
  requestTimeoutMs: number;
  /** a failed cancel is tried again, with growing pauses, for this long (the outage tolerance) */
  cancelRetryWindowMs: number;
  /** how often a long call tells NATS it is still being worked on (well under the consumer's ack wait) */
  heartbeatMs: number;
  fetch?: typeof fetch;
  allowPrivate: boolean;
  /** resolver used by the address policy (tests stub it; never resolves off-machine names there) */
  lookup?: Lookup;
  /**
   * Authorization header value for a call to this service URL (audience: the service's own, if it
   * has one). May throw TokenError (src/infra/auth/outbound.ts) when an OAuth token cannot be had.
   */
  authorization?: (serviceUrl: string, audience?: string | null) => Promise<string>;
  /**
   * how long a task call waits for a token the endpoint cannot give now (out of reach, 5xx, 429)
   * before it is reported as not sent (OAUTH_OUTAGE_TOLERANCE_MS; a cancel waits at most
   * `cancelRetryWindowMs`, a health check not at all)
   */
  tokenWaitMs?: number;
  /** copies of the KV buckets on a NATS cluster (NATS_REPLICAS), should this worker create them */
  replicas?: number;
}

/** Actions that must never be sent twice blindly. */
const NOT_IDEMPOTENT = new Set(['start', 'publish']);
/** a call cut short by this worker's own shutdown: its command goes back to NATS */
const HAND_BACK = Symbol('hand back');
/** a command the coordinator gave up as lost (and sent anew): nothing to report */
const DROPPED = Symbol('dropped');

/**
 * Stateless: takes commands from the command stream, makes one HTTP call each (many at once,
 * each with a deadline), and publishes the outcome as a result for the coordinator.
 */
export class Worker {
  private readonly js: JetStreamClient;
  private running = false;
  private inFlight = 0;
  /** command messages being handled (until acked, nak'd or handed back) */
  private active = 0;
  private results!: ResultBatcher;
  private readonly slotFreed: Array<() => void> = [];
  private readonly controllers = new Map<string, Set<AbortController>>();
  private abortSub?: Subscription;
  private consumerMessages?: ConsumerMessages;
  /** fires when a graceful stop runs out of time: calls still in flight are abandoned and redelivered */
  private readonly shutdown = new AbortController();
  /** fires when a graceful stop begins: calls still waiting for a token (never sent) go back at once */
  private readonly stopping = new AbortController();
  /** calls waiting for a token: they hold no slot meanwhile, but a graceful stop waits for them */
  private waitingForToken = 0;
  stats = { calls: 0, failures: 0 };
  private readonly lookup: Lookup;

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: BusNames,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
    private readonly ensureBus?: () => Promise<void>,
  ) {
    this.js = jetstream(nc);
    this.lookup = cachedLookup(opts.lookup);
  }

  private halted!: HaltedReleases;
  private sent!: SentMarks;

  async start() {
    this.running = true;
    const replicas = this.opts.replicas ?? 1;
    this.halted = await HaltedReleases.open(this.nc, this.names, { replicas });
    this.sent = await SentMarks.open(this.nc, this.names, { replicas });
    this.results = new ResultBatcher(this.js, this.names.resultBatch, `results:${newMessageId()}`);
    this.abortSub = this.nc.subscribe(this.names.aborts, {
      callback: (_err, msg) => {
        const releaseId = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        this.halted.noteAbort(releaseId);
        for (const c of this.controllers.get(releaseId) ?? []) c.abort();
      },
    });
    void pullForever({
      js: this.js,
      stream: this.names.streams.commands,
      durable: this.names.consumers.workers,
      maxMessages: this.opts.concurrency,
      expiresMs: Math.min(5_000, this.opts.heartbeatMs * 3),
      log: this.log,
      running: () => this.running,
      onMessage: (m) => void this.handle(m),
      onAttach: (messages) => {
        this.consumerMessages = messages;
      },
      ensure: this.ensureBus,
    });
    this.log.info({ concurrency: this.opts.concurrency }, 'worker started');
  }

  private async handle(m: JsMsg) {
    let message: CommandMessage;
    try {
      message = m.json<CommandMessage>();
    } catch {
      this.log.error({ subject: m.subject }, 'unreadable command dropped');
      m.term();
      return;
    }
    this.active++;
    // the message is ours from now until it is acked: NATS must not hand it to another worker
    const heartbeat = setInterval(() => m.working(), this.opts.heartbeatMs);
    try {
      if (message.kind === 'chunk') await this.runChunk(m, message);
      else await this.runSingle(m, message);
    } catch (err) {
      this.log.warn(
        { err: String(err), id: message.id },
        'command failed before its result was published; redelivering',
      );
      m.nak(500);
    } finally {
      clearInterval(heartbeat);
      this.active--;
    }
  }

  /** One command per message (health checks; task commands of earlier versions). */
  private async runSingle(m: JsMsg, command: Command) {
    await this.acquire();
    try {
      if (!this.running) {
        // stopping: leave it to another worker
        m.nak();
        return;
      }
      if (command.kind === 'health') return await this.checkHealth(m, command);
      const result = await this.runTask(command, new Map());
      if (result === HAND_BACK) {
        m.nak();
        return;
      }
      if (result !== DROPPED) await this.results.send(result);
      m.ack();
    } finally {
      this.release();
    }
  }

  /**
   * A chunk of task commands: the calls run concurrently (each takes one of the worker's slots),
   * each result is reported as soon as it is known (batched per tick), and the chunk is acked once
   * every result is published. Calls cut short by a graceful stop, or never begun, go back to NATS
   * as a new chunk (a start/publish that may have left is never sent again: its sent-mark is claimed).
   */
  private async runChunk(m: JsMsg, chunk: CommandChunk) {
    const haltedChecks = new Map<string, Promise<boolean>>();
    const handBack: TaskCommand[] = [];
    const settled = await Promise.allSettled(
      chunk.commands.map(async (c) => {
        await this.acquire();
        try {
          if (!this.running) {
            handBack.push(c);
            return;
          }
          const result = await this.runTask(c, haltedChecks);
          if (result === HAND_BACK) handBack.push(c);
          else if (result !== DROPPED) await this.results.send(result);
        } finally {
          this.release();
        }
      }),
    );
    // a result that could not be published: the whole chunk comes back, each command as redelivered
    const failed = settled.find((x) => x.status === 'rejected');
    if (failed) throw failed.reason;
    if (handBack.length > 0) {
      const rest: CommandChunk = {
        id: `${chunk.id}:back:${newMessageId()}`,
        kind: 'chunk',
        commands: handBack,
      };
      await this.js.publish(m.subject, JSON.stringify(rest), { msgID: rest.id });
      this.log.info({ chunk: chunk.id, commands: handBack.length }, 'commands handed back to NATS');
    }
    m.ack();
  }

  /** Makes one task call (or decides it must not be made) and returns its result, or HAND_BACK. */
  private async runTask(
    c: TaskCommand,
    haltedChecks: Map<string, Promise<boolean>>,
  ): Promise<TaskResult | typeof HAND_BACK | typeof DROPPED> {
    const abort = c.action === 'cancel' ? undefined : this.track(c.releaseId);
    const signal = abort ? AbortSignal.any([abort.signal, this.shutdown.signal]) : this.shutdown.signal;
    let outcome: WorkerOutcome;
    const retryErrors: string[] = [];
    try {
      const before = await this.haltedBefore(c, haltedChecks);
      outcome = before ?? (await this.callWithRetries(c, signal, retryErrors));
    } finally {
      if (abort) this.untrack(c.releaseId, abort);
    }
    if (outcome.superseded) {
      // the coordinator found this command lost and sent a new one: nothing to report
      this.log.info(
        { task: c.taskId, release: c.releaseId, action: c.action },
        'command given up as lost by the coordinator (a new one was sent); dropped unsent',
      );
      return DROPPED;
    }
    if (!outcome.ok && (this.shutdown.signal.aborted || outcome.handBack)) {
      // cut short by our own shutdown, not by the service: another worker takes it (see claimForSending)
      return HAND_BACK;
    }
    if (!outcome.ok) this.stats.failures++;
    this.metrics?.calls.observe(
      { action: c.action, outcome: outcomeLabel(outcome) },
      outcome.latencyMs / 1000,
    );
    const result: TaskResult = {
      id: `${c.id}:result`,
      kind: 'task',
      commandId: c.id,
      action: c.action,
      taskId: c.taskId,
      releaseId: c.releaseId,
      ok: outcome.ok,
      outcome: outcome.ok ? undefined : classify(c.action, outcome),
      status: outcome.status,
      state: outcome.body?.state,
      progress: outcome.body?.progress,
      error: outcome.error,
      retryErrors: retryErrors.length > 0 ? retryErrors : undefined,
      latencyMs: outcome.latencyMs,
    };
    this.log.debug(
      {
        task: c.taskId,
        release: c.releaseId,
        action: c.action,
        ok: result.ok,
        status: result.status,
        ms: result.latencyMs,
      },
      'task-service call done',
    );
    return result;
  }

  /** A command still queued when its release halted is not sent (cancel always is). */
  private async haltedBefore(
    c: TaskCommand,
    /** one shared (KV) check per release and chunk */
    checks: Map<string, Promise<boolean>>,
  ): Promise<WorkerOutcome | undefined> {
    if (c.action === 'cancel') return undefined;
    // the shared (KV) check costs a round trip: only for the actions that must not outlive a halt
    let halted = this.halted.knownHalted(c.releaseId);
    if (!halted && NOT_IDEMPOTENT.has(c.action)) {
      let check = checks.get(c.releaseId);
      if (!check) {
        check = this.halted.isHalted(c.releaseId);
        checks.set(c.releaseId, check);
      }
      halted = await check;
    }
    if (!halted) return undefined;
    return {
      ok: false,
      transport: false,
      notSent: true,
      error: 'the release was halted',
      latencyMs: 0,
    };
  }

  /**
   * Right before a start/publish request goes out: the command is claimed in the sent marks (once,
   * compare-and-set), so that it is sent at most once whatever happens. Already claimed as sent (it
   * came back after the worker that had it stopped, or a copy was published twice): the service may
   * have it, so it is not sent again and its outcome is unknown (the coordinator polls). Claimed as
   * lost by the coordinator (it was purged from NATS and has been sent anew): dropped.
   */
  private async claimForSending(c: TaskCommand): Promise<WorkerOutcome | undefined> {
    const claim = await this.sent.claimForSending(c.id);
    if (claim === 'send') return undefined;
    if (claim === 'superseded')
      return {
        ok: false,
        transport: false,
        notSent: true,
        superseded: true,
        error: 'superseded',
        latencyMs: 0,
      };
    this.log.info({ task: c.taskId, action: c.action }, 'command may have been sent already; not resent');
    return {
      ok: false,
      transport: true,
      error: 'no answer: the worker that sent it stopped before the answer came',
      latencyMs: 0,
    };
  }

  /**
   * One call; only a cancel is retried here (with growing pauses), for any failure. A start or
   * publish is never sent twice; a poll that got no answer is rescheduled by the coordinator, whose
   * backoff survives a restart of this process.
   */
  private async callWithRetries(c: TaskCommand, signal: AbortSignal | undefined, retryErrors: string[]) {
    // the claim goes out last, right before the request, so a worker dying between the two (the one
    // case where a start is neither resent nor surely sent) has as little time to do it in as can be
    const markSent = NOT_IDEMPOTENT.has(c.action) ? () => this.claimForSending(c) : undefined;
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.send(c, c.action, signal, markSent);
      this.stats.calls++;
      if (
        c.action !== 'cancel' ||
        outcome.ok ||
        outcome.refused ||
        outcome.notSent ||
        isDefinitive(outcome) ||
        signal?.aborted
      )
        return outcome;
      const window = this.opts.cancelRetryWindowMs;
      const pause = cancelRetryPause(attempt, window);
      if (performance.now() - started + pause >= window) return outcome;
      retryErrors.push(outcome.error ?? 'unknown error');
      await sleep(pause, signal);
    }
  }

  /**
   * One call to a task service: the URL is checked against the address policy first (on every
   * call, since DNS can change), the request goes to an address that was checked (the name is not
   * resolved again, so a DNS answer that changes in between cannot send it elsewhere), and it
   * carries the coordinator's token. A call whose token cannot be had is never sent (see `authorize`).
   */
  private async send(
    c: {
      url: string;
      taskId?: string;
      releaseId?: string;
      studies?: string[];
      timeoutMs?: number;
      audience?: string | null;
    },
    action: Action | 'status',
    signal?: AbortSignal,
    /** runs once everything else is ready, right before the request goes out; an outcome = do not send */
    beforeRequest?: () => Promise<WorkerOutcome | undefined>,
  ): Promise<WorkerOutcome> {
    const checked = await checkedAddresses(c.url, {
      allowPrivate: this.opts.allowPrivate,
      lookup: this.lookup,
    });
    if ('refused' in checked)
      return {
        ok: false,
        transport: false,
        refused: true,
        error: `refused: ${checked.refused}`,
        latencyMs: 0,
      };
    let headers: Record<string, string> | undefined;
    if (this.opts.authorization) {
      const auth = await this.authorize(c, action, signal);
      if (typeof auth !== 'string') return auth;
      headers = { authorization: auth };
    }
    const instead = await beforeRequest?.();
    if (instead) return instead;
    const timeoutMs = c.timeoutMs ?? this.opts.requestTimeoutMs;
    const options = { timeoutMs, signal, fetch: this.opts.fetch, headers, connectTo: checked.addresses };
    if (action === 'status') return getStatus(c.url, options);
    return postTask(
      c.url,
      { action, task_id: c.taskId!, release_id: c.releaseId!, studies: c.studies ?? [] },
      options,
    );
  }

  /**
   * The Authorization header for a call, or why the call is not sent. A token endpoint that is out
   * of reach (or answers 5xx, 408, 429) is asked again with growing pauses (TokenError.retryAt; the
   * requests themselves are single-flight per endpoint and audience) for up to `tokenWaitMs`, so
   * the call goes out once the identity provider is back; one that refuses (4xx) is not asked
   * again. Either way a call without a token never left: it is "not sent", never "outcome unknown".
   * Waiting holds no concurrency slot.
   */
  private async authorize(
    c: { url: string; audience?: string | null },
    action: Action | 'status',
    signal?: AbortSignal,
  ): Promise<string | WorkerOutcome> {
    const wait =
      action === 'status'
        ? 0
        : action === 'cancel'
          ? Math.min(this.opts.tokenWaitMs ?? 0, this.opts.cancelRetryWindowMs)
          : (this.opts.tokenWaitMs ?? 0);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    for (let attempt = 0; ; attempt++) {
      let failure: unknown;
      try {
        const header = this.opts.authorization!(c.url, c.audience);
        return await (signal ? untilAborted(header, signal) : header);
      } catch (err) {
        failure = err;
      }
      if (signal?.aborted) return aborted(elapsed());
      const reason = failure instanceof Error ? failure.message : String(failure);
      const transient = !(failure instanceof TokenError) || failure.transient;
      const retryAt = failure instanceof TokenError ? failure.retryAt : Date.now() + 1_000;
      const pause = Math.max(50, retryAt - Date.now());
      if (!transient || performance.now() - started + pause > wait) {
        const waited = transient && wait > 0 ? ` (waited ${Math.round(elapsed() / 1000)} s)` : '';
        return {
          ok: false,
          transport: false,
          notSent: true,
          error: `no token for ${describeAudience(c)}${waited}: ${reason}`,
          latencyMs: elapsed(),
        };
      }
      if (attempt === 0)
        this.log.warn(
          { url: c.url, audience: c.audience, action, err: reason, waitMs: wait },
          'no token for a task-service call yet; asking again with growing pauses',
        );
      this.release();
      this.waitingForToken++;
      try {
        await sleep(pause, signal ? AbortSignal.any([signal, this.stopping.signal]) : this.stopping.signal);
      } finally {
        this.waitingForToken--;
        await this.acquire();
      }
      if (signal?.aborted) return aborted(elapsed());
      // this worker is stopping: the call never left, another worker takes it
      if (this.stopping.signal.aborted) return { ...aborted(elapsed()), handBack: true };
    }
  }

  private async checkHealth(m: JsMsg, c: HealthCommand) {
    const outcome = await this.send(c, 'status');
    const result: HealthResult = {
      id: `${c.id}:result`,
      kind: 'health',
      serviceId: c.serviceId,
      ok: outcome.ok,
      // without a token nothing was asked: the service's health is not known, not bad
      notChecked: outcome.notSent ? true : undefined,
      status: outcome.status,
      error: outcome.error,
      latencyMs: outcome.latencyMs,
    };
    await this.js.publish(this.names.healthResult(c.serviceId), JSON.stringify(result), { msgID: result.id });
    m.ack();
  }

  private track(releaseId: string): AbortController {
    const c = new AbortController();
    const set = this.controllers.get(releaseId) ?? new Set();
    this.controllers.set(releaseId, set);
    set.add(c);
    return c;
  }

  private untrack(releaseId: string, c: AbortController) {
    const set = this.controllers.get(releaseId);
    set?.delete(c);
    if (set && set.size === 0) this.controllers.delete(releaseId);
  }

  private async acquire() {
    while (this.running && this.inFlight >= this.opts.concurrency) {
      await new Promise<void>((r) => this.slotFreed.push(r));
    }
    this.inFlight++;
  }

  private release() {
    this.inFlight--;
    this.slotFreed.shift()?.();
  }

  /**
   * Graceful stop: take no new commands (those already pulled go back with a nak), let calls in
   * flight finish for up to `graceMs`, then abandon the rest (nak: another worker redoes them).
   */
  async stop(graceMs = this.opts.requestTimeoutMs) {
    this.running = false;
    this.stopping.abort();
    this.consumerMessages?.stop();
    for (const wake of this.slotFreed.splice(0)) wake();
    const deadline = Date.now() + graceMs;
    this.log.info(
      { inFlight: this.inFlight, graceMs },
      'worker stopping: no new commands; waiting for calls in flight',
    );
    const busy = () => this.active + this.waitingForToken > 0;
    while (busy() && Date.now() < deadline) await sleep(20);
    if (busy()) {
      this.log.warn(
        { inFlight: this.inFlight },
        'calls still in flight at the end of the grace period; handing them back',
      );
      this.shutdown.abort();
      const last = Date.now() + 2_000;
      while (busy() && Date.now() < last) await sleep(20);
    }
    this.abortSub?.unsubscribe();
  }
}

/**
 * A call's outcome as the worker knows it: `refused` = never sent (address policy); `notSent` =
 * never sent (the release halted, or no token could be had); `handBack` = not sent because this
 * worker is stopping: the command goes back to NATS for another worker; `superseded` = the
 * coordinator sent a new command in its place (no result).
 */
type WorkerOutcome = CallOutcome & {
  refused?: boolean;
  notSent?: boolean;
  handBack?: boolean;
  superseded?: boolean;
};

const aborted = (latencyMs: number): WorkerOutcome => ({
  ok: false,
  transport: false,
  notSent: true,
  error: 'the release was halted',
  latencyMs,
});

const describeAudience = (c: { url: string; audience?: string | null }) =>
  c.audience ? `the audience ${c.audience}` : c.url;

/** `promise`, or a rejection as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * An HTTP answer is the service's considered answer (a cancel of a task it does not know stays a
 * 404, a redirect is never followed): asking again changes nothing. Only 5xx, 408 and 429 say
 * "not now".
 */
function isDefinitive(o: WorkerOutcome): boolean {
  return o.status !== undefined && o.status < 500 && o.status !== 408 && o.status !== 429;
}

/** Gateways and proxies answer these while a service restarts: for a poll they mean "no answer yet". */
const UNAVAILABLE = new Set([502, 503, 504]);

/**
 * What a failed call means for the lifecycle (docs/lifecycle.md): an HTTP answer is a refusal
 * (also a 200 without a JSON object, and an answer too large to read), no answer leaves the
 * outcome unknown (also an answer cut off while its body was read), a call that never left is
 * `not_sent`.
 */
export function classify(action: Action, o: WorkerOutcome): 'refused' | 'unknown' | 'not_sent' {
  if (o.notSent) return 'not_sent';
  if (o.refused || o.tooLarge) return 'refused';
  if (o.transport || o.status === undefined) return 'unknown';
  if (action === 'get_status' && UNAVAILABLE.has(o.status)) return 'unknown';
  return 'refused';
}

function outcomeLabel(o: WorkerOutcome): string {
  if (o.ok) return 'ok';
  if (o.refused || o.tooLarge) return 'refused';
  if (o.notSent) return o.error?.startsWith('no token') ? 'no_token' : 'aborted';
  if (o.error?.startsWith('timeout')) return 'timeout';
  if (o.error?.startsWith('aborted')) return 'aborted';
  return o.transport ? 'transport_error' : 'http_error';
}
