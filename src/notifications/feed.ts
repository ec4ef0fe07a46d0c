import { DeliverPolicy, type JetStreamClient, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { BusNames } from '../infra/bus/subjects';
import type { Notification } from './notifications';

export interface FeedItem {
  /** stream sequence: the SSE event id, and where a client resumes from */
  seq: number;
  subject: string;
  notification: Notification;
}

export interface FeedOptions {
  releaseId?: string;
  /** resume after this stream sequence (Last-Event-ID) */
  afterSeq?: number;
  /** start from events at or after this time */
  since?: Date;
  /** start from the first stored event */
  all?: boolean;
  signal: AbortSignal;
}

/** Reads the RC_EVENTS stream for one client with an ordered (ephemeral) consumer. */
export class NotificationFeed {
  private readonly js: JetStreamClient;
  private readonly following = new Set<AbortController>();
  private stopped = false;

  constructor(
    nc: NatsConnection,
    private readonly names: BusNames,
  ) {
    this.js = jetstream(nc);
  }

  /** true once close() was called: every follow has ended or ends at once */
  get closed(): boolean {
    return this.stopped;
  }

  /** Ends every follow now: at shutdown, an open dashboard or `rc events` must not hold the server's graceful stop. */
  close(): void {
    this.stopped = true;
    for (const ac of this.following) ac.abort();
  }

  async *follow(opts: FeedOptions): AsyncGenerator<FeedItem> {
    if (this.stopped) return;
    const own = new AbortController();
    this.following.add(own);
    const signal = AbortSignal.any([opts.signal, own.signal]);
    try {
      yield* this.read(opts, signal);
    } finally {
      this.following.delete(own);
    }
  }

  private async *read(opts: FeedOptions, signal: AbortSignal): AsyncGenerator<FeedItem> {
    const position =
      opts.afterSeq !== undefined
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.afterSeq + 1 }
        : opts.since
          ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.since.toISOString() }
          : opts.all
            ? { deliver_policy: DeliverPolicy.All }
            : { deliver_policy: DeliverPolicy.New };
    const consumer = await this.js.consumers.get(this.names.streams.events, {
      filter_subjects: opts.releaseId ? this.names.eventsOfRelease(opts.releaseId) : this.names.events,
      ...position,
    });
    const messages = await consumer.consume();
    const stop = () => messages.stop();
    signal.addEventListener('abort', stop, { once: true });
    if (signal.aborted) stop();
    try {
      for await (const m of messages) {
        if (signal.aborted) break;
        let notification: Notification;
        try {
          notification = m.json<Notification>();
        } catch {
          continue;
        }
        yield { seq: m.seq, subject: m.subject, notification };
      }
    } finally {
      signal.removeEventListener('abort', stop);
      messages.stop();
    }
  }
}
