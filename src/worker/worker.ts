import { type JetStreamClient, type JsMsg, jetstream } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { pullForever } from '../bus/consume';
import type { Command, HealthCommand, HealthResult, TaskCommand, TaskResult } from '../bus/messages';
import type { BusNames } from '../bus/subjects';
import type { Logger } from '../logger';
import { sleep } from '../shared/time';
import { type CallOutcome, getStatus, postTask } from './task-service-client';

export interface WorkerOptions {
  concurrency: number;
  requestTimeoutMs: number;
  pollRetries: number;
  cancelRetries: number;
  /** first retry delay; doubles each attempt */
  retryBaseMs: number;
  fetch?: typeof fetch;
}

/** Actions that must never be sent twice: the command is acked before the call is made. */
const AT_MOST_ONCE = new Set(['start', 'publish']);

/**
 * Stateless: takes commands from the command stream, makes one HTTP call each (many at once,
 * each with a deadline), and publishes the outcome as a result for the coordinator.
 */
export class Worker {
  private readonly js: JetStreamClient;
  private running = false;
  private inFlight = 0;
  private readonly slotFreed: Array<() => void> = [];
  private readonly controllers = new Map<string, Set<AbortController>>();
  private abortSub?: Subscription;
  stats = { calls: 0, failures: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: BusNames,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
  ) {
    this.js = jetstream(nc);
  }

  async start() {
    this.running = true;
    this.abortSub = this.nc.subscribe(this.names.aborts, {
      callback: (_err, msg) => {
        const releaseId = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        for (const c of this.controllers.get(releaseId) ?? []) c.abort();
      },
    });
    void pullForever({
      js: this.js,
      stream: this.names.streams.commands,
      durable: this.names.consumers.workers,
      maxMessages: this.opts.concurrency,
      log: this.log,
      running: () => this.running,
      onMessage: (m) => void this.handle(m),
    });
    this.log.info({ concurrency: this.opts.concurrency }, 'worker started');
  }

  private async handle(m: JsMsg) {
    let command: Command;
    try {
      command = m.json<Command>();
    } catch {
      this.log.error({ subject: m.subject }, 'unreadable command dropped');
      m.term();
      return;
    }
    await this.acquire();
    try {
      if (command.kind === 'health') await this.checkHealth(m, command);
      else await this.runTask(m, command);
    } catch (err) {
      this.log.warn(
        { err: String(err), id: command.id },
        'command failed before its result was published; redelivering',
      );
      m.nak(500);
    } finally {
      this.release();
    }
  }

  private async runTask(m: JsMsg, c: TaskCommand) {
    if (AT_MOST_ONCE.has(c.action)) await m.ackAck();
    const abort = c.action === 'cancel' ? undefined : this.track(c.releaseId);
    const retries =
      c.action === 'cancel' ? this.opts.cancelRetries : c.action === 'get_status' ? this.opts.pollRetries : 0;
    const retryErrors: string[] = [];
    let outcome: CallOutcome;
    try {
      for (let attempt = 0; ; attempt++) {
        outcome = await postTask(
          c.url,
          { action: c.action, task_id: c.taskId, release_id: c.releaseId, studies: c.studies },
          { timeoutMs: this.opts.requestTimeoutMs, signal: abort?.signal, fetch: this.opts.fetch },
        );
        this.stats.calls++;
        // get_status is retried only for transport errors; cancel for any failure
        const retryable = c.action === 'cancel' ? !outcome.ok : outcome.transport;
        if (outcome.ok || !retryable || attempt >= retries || abort?.signal.aborted) break;
        retryErrors.push(outcome.error ?? 'unknown error');
        await sleep(this.opts.retryBaseMs * 2 ** attempt);
      }
    } finally {
      if (abort) this.untrack(c.releaseId, abort);
    }
    if (!outcome.ok) this.stats.failures++;
    const result: TaskResult = {
      id: `${c.id}:result`,
      kind: 'task',
      commandId: c.id,
      action: c.action,
      taskId: c.taskId,
      releaseId: c.releaseId,
      ok: outcome.ok,
      status: outcome.status,
      state: outcome.body?.state,
      progress: outcome.body?.progress,
      error: outcome.error,
      retryErrors: retryErrors.length > 0 ? retryErrors : undefined,
      latencyMs: outcome.latencyMs,
    };
    await this.js.publish(this.names.taskResult(c.taskId), JSON.stringify(result), { msgID: result.id });
    if (!AT_MOST_ONCE.has(c.action)) m.ack();
  }

  private async checkHealth(m: JsMsg, c: HealthCommand) {
    const outcome = await getStatus(c.url, { timeoutMs: this.opts.requestTimeoutMs, fetch: this.opts.fetch });
    const result: HealthResult = {
      id: `${c.id}:result`,
      kind: 'health',
      serviceId: c.serviceId,
      ok: outcome.ok,
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
    while (this.inFlight >= this.opts.concurrency) await new Promise<void>((r) => this.slotFreed.push(r));
    this.inFlight++;
  }

  private release() {
    this.inFlight--;
    this.slotFreed.shift()?.();
  }

  async stop() {
    this.running = false;
    this.abortSub?.unsubscribe();
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(20);
  }
}
