import type { JetStreamClient } from '@nats-io/jetstream';
import { publishWindowed } from '../infra/bus/publish-window';
import type { Db } from '../infra/db/client';
import type { Logger } from '../infra/logger';
import { type OutboxMessage, outboxBatchesOlderThan, settleOutboxBatch } from './store/outbox';

/**
 * Publishes committed outbox batches to JetStream and deletes them. The message id doubles as
 * `Nats-Msg-Id`, so a message published twice (crash between publish and delete, or two
 * coordinators sweeping at once) is stored once by the server.
 */
export class OutboxRelay {
  private timer?: ReturnType<typeof setInterval>;
  private sweeping = false;

  constructor(
    private readonly db: Db,
    private readonly js: JetStreamClient,
    private readonly log: Logger,
  ) {}

  /**
   * Publishes one committed batch. Its row is deleted once every message got its ack; after a
   * partial failure it keeps only the messages that did not, so the sweep never sends again a
   * command that was stored (and maybe already consumed: a work queue forgets consumed messages,
   * and with them, after a server restart, their ids for deduplication).
   */
  async publish(batchId: string, messages: OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const unsent = await this.send(messages);
    // Not awaited on the hot path: a row left behind is only republished (and deduplicated) by the sweep.
    this.settle(batchId, unsent).then(
      () => {},
      (err) => this.log.warn({ err: String(err) }, 'outbox cleanup failed; the sweep will retry'),
    );
  }

  private settle(batchId: string, unsent: OutboxMessage[]) {
    return settleOutboxBatch(this.db, batchId, unsent);
  }

  /** The messages the server did not store (publish failed or timed out). */
  private async send(messages: OutboxMessage[]): Promise<OutboxMessage[]> {
    const unsent: OutboxMessage[] = [];
    await publishWindowed(messages, async (m) => {
      try {
        await this.js.publish(m.subject, m.data, { msgID: m.id, timeout: 5_000 });
      } catch (err) {
        // larger than the server takes: no retry can ever store it, so it is dropped, loudly
        // (notifications and command chunks are bounded; this is the last line of defence)
        if (String(err).includes('max_payload')) {
          this.log.error(
            { err: String(err), subject: m.subject, bytes: Buffer.byteLength(m.data) },
            'outbox message too large for NATS dropped',
          );
          return;
        }
        if (unsent.push(m) === 1)
          this.log.warn(
            { err: String(err), subject: m.subject },
            'outbox publish failed; the sweep will retry',
          );
      }
    });
    return unsent;
  }

  /** Picks up batches a crashed or disconnected process committed but never published. */
  start(everyMs: number, olderThanMs: number) {
    this.timer = setInterval(() => void this.sweep(olderThanMs), everyMs);
  }

  /** Republishes batches committed longer than olderThanMs ago; returns how many messages. */
  async sweep(olderThanMs: number): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      const batches = await outboxBatchesOlderThan(this.db, olderThanMs);
      let count = 0;
      for (const b of batches) {
        count += b.messages.length;
        await this.settle(b.id, await this.send(b.messages));
      }
      if (count > 0) this.log.info({ count }, 'outbox sweep republished pending messages');
      return count;
    } catch (err) {
      this.log.warn({ err: String(err) }, 'outbox sweep failed');
      return 0;
    } finally {
      this.sweeping = false;
    }
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
  }
}
