import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection, nuid, type Subscription } from '@nats-io/transport-node';
import { currentBudget } from '../request-budget';
import { type Intent, type IntentBatch, type IntentReply, REPLY_HEADER } from './messages';
import { TurnBatcher } from './result-batcher';
import type { BusNames } from './subjects';

/** The NATS connection is known to be down: the intent was not published (503, retry later). */
export class BusUnavailable extends Error {
  readonly code = 'BUS_UNAVAILABLE';
  override readonly name = 'BusUnavailable';
}

/** how long a publish may wait for JetStream's acknowledgement */
const PUBLISH_TIMEOUT_MS = 5_000;
/** what a request keeps of its budget after waiting for a reply, to answer with what it has */
const ANSWER_MARGIN_MS = 1_000;

export interface Delivery {
  /** the coordinator's answer, when it came in time */
  reply?: IntentReply;
  /**
   * JetStream already held an intent with this id (a twin request, or a retry within the
   * duplicate window): this one was not stored again, and its reply goes to the first sender
   */
  duplicate: boolean;
}

/**
 * Publishes intents durably on JetStream and waits (with a deadline) for the coordinator's
 * answer on a core-NATS inbox. No answer in time = the intent is stored and will be applied.
 * While the connection is known to be down it refuses at once instead of publishing: nats.js
 * would buffer the message, the caller would be told 503 after the publish timeout, and the
 * buffered intent would then be applied on reconnection.
 */
export class IntentClient {
  private readonly js: JetStreamClient;
  /** task-service callbacks of one turn, sent as one message (IntentBatch) */
  private readonly gathered: TurnBatcher<IntentBatch['intents'][number]>;
  private readonly inbox = `_INBOX.rc.${nuid.next()}`;
  private readonly pending = new Map<string, (r: IntentReply) => void>();
  private readonly sub: Subscription;
  private connected = true;
  /** callbacks waiting for the end of the tick, to travel as one message */

  constructor(
    private readonly nc: NatsConnection,
    private readonly names: BusNames,
    /** how long a request waits for the coordinator's answer */
    readonly replyTimeoutMs: number,
  ) {
    this.js = jetstream(nc);
    this.gathered = new TurnBatcher(
      this.js,
      names.intentBatch,
      'intents',
      () => nuid.next(),
      PUBLISH_TIMEOUT_MS,
    );
    this.sub = nc.subscribe(`${this.inbox}.*`, {
      callback: (_err, msg) => {
        const token = msg.subject.slice(this.inbox.length + 1);
        const resolve = this.pending.get(token);
        if (!resolve) return;
        try {
          resolve(msg.json<IntentReply>());
        } catch {
          resolve({ status: 502, body: { detail: 'unreadable reply from the coordinator' } });
        }
      },
    });
    void this.followConnection();
  }

  private async followConnection() {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.connected = false;
      else if (s.type === 'reconnect') this.connected = true;
    }
    this.connected = false;
  }

  /**
   * Resolves with the coordinator's reply, or undefined when none came within the deadline
   * (`timeoutMs`, default the gateway's reply timeout).
   */
  async send(intent: Intent, opts: { timeoutMs?: number } = {}): Promise<IntentReply | undefined> {
    return (await this.deliver(intent, opts)).reply;
  }

  /** Like send, and says whether JetStream took the intent for a duplicate (then no reply comes). */
  async deliver(intent: Intent, opts: { timeoutMs?: number } = {}): Promise<Delivery> {
    const left = this.timeToSend();
    const wait = this.awaitReply(Math.min(opts.timeoutMs ?? this.replyTimeoutMs, left));
    const h = headers();
    h.set(REPLY_HEADER, wait.replyTo);
    try {
      const ack = await this.js.publish(this.names.intent(intent.type), JSON.stringify(intent), {
        msgID: intent.id,
        headers: h,
        timeout: Math.min(PUBLISH_TIMEOUT_MS, left),
      });
      if (ack.duplicate) return { duplicate: true };
      return { reply: await wait.answered, duplicate: false };
    } finally {
      wait.forget();
    }
  }

  /**
   * Like send, for intents that many callers send at once (task-service callbacks): those sent within
   * one turn of the event loop travel as ONE message, each with its own id and reply subject.
   * JetStream cannot tell a duplicate item (the coordinator skips it by its id).
   */
  async sendGathered(intent: Intent, opts: { timeoutMs?: number } = {}): Promise<IntentReply | undefined> {
    const left = this.timeToSend();
    const wait = this.awaitReply(Math.min(opts.timeoutMs ?? this.replyTimeoutMs, left));
    try {
      await this.gathered.send({ intent, replyTo: wait.replyTo });
      return await wait.answered;
    } finally {
      wait.forget();
    }
  }

  /**
   * What is left of the request's time to send an intent and hear back (unbounded outside a
   * request); throws when it cannot be sent: the request was answered already, NATS is away, or no
   * time is left.
   */
  private timeToSend(): number {
    const budget = currentBudget();
    if (budget?.abandoned) throw budget.abandoned;
    if (!this.connected || this.nc.isClosed())
      throw new BusUnavailable('NATS is not connected; the intent was not sent.');
    const left = budget ? budget.remainingMs() - ANSWER_MARGIN_MS : Number.POSITIVE_INFINITY;
    if (left <= 0) throw new BusUnavailable('The request ran out of time before its intent was sent.');
    return left;
  }

  /** A reply subject of this client, and the reply on it (undefined after timeoutMs); forget() when done. */
  private awaitReply(timeoutMs: number) {
    const token = nuid.next();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answered = new Promise<IntentReply | undefined>((resolve) => {
      this.pending.set(token, resolve);
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    return {
      replyTo: `${this.inbox}.${token}`,
      answered,
      forget: () => {
        clearTimeout(timer);
        this.pending.delete(token);
      },
    };
  }

  /** Stores an intent nobody waits on (a poll hint): resolves once JetStream has it. */
  async post(intent: Intent): Promise<void> {
    if (!this.connected || this.nc.isClosed())
      throw new BusUnavailable('NATS is not connected; the intent was not sent.');
    await this.js.publish(this.names.intent(intent.type), JSON.stringify(intent), {
      msgID: intent.id,
      timeout: PUBLISH_TIMEOUT_MS,
    });
  }

  close() {
    this.sub.unsubscribe();
  }
}
