import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection, nuid, type Subscription } from '@nats-io/transport-node';
import { type Intent, type IntentReply, REPLY_HEADER } from './messages';
import type { BusNames } from './subjects';

/**
 * Publishes intents durably on JetStream and waits (with a deadline) for the coordinator's
 * answer on a core-NATS inbox. No answer in time = the intent is stored and will be applied.
 */
export class IntentClient {
  private readonly js: JetStreamClient;
  private readonly inbox = `_INBOX.rc.${nuid.next()}`;
  private readonly pending = new Map<string, (r: IntentReply) => void>();
  private readonly sub: Subscription;

  constructor(
    nc: NatsConnection,
    private readonly names: BusNames,
    private readonly replyTimeoutMs: number,
  ) {
    this.js = jetstream(nc);
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
  }

  /**
   * Resolves with the coordinator's reply, or undefined when none came within the deadline
   * (`timeoutMs`, default the gateway's reply timeout).
   */
  async send(intent: Intent, opts: { timeoutMs?: number } = {}): Promise<IntentReply | undefined> {
    const token = nuid.next();
    const h = headers();
    h.set(REPLY_HEADER, `${this.inbox}.${token}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answered = new Promise<IntentReply | undefined>((resolve) => {
      this.pending.set(token, resolve);
      timer = setTimeout(() => resolve(undefined), opts.timeoutMs ?? this.replyTimeoutMs);
    });
    try {
      await this.js.publish(this.names.intent(intent.type), JSON.stringify(intent), {
        msgID: intent.id,
        headers: h,
        timeout: 5_000,
      });
      return await answered;
    } finally {
      clearTimeout(timer);
      this.pending.delete(token);
    }
  }

  /** Stores an intent nobody waits on (a poll hint): resolves once JetStream has it. */
  async post(intent: Intent): Promise<void> {
    await this.js.publish(this.names.intent(intent.type), JSON.stringify(intent), {
      msgID: intent.id,
      timeout: 5_000,
    });
  }

  close() {
    this.sub.unsubscribe();
  }
}
