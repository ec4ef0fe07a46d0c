import type { JetStreamClient } from '@nats-io/jetstream';
import { asc, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { idList } from '../db/raw-select';
import { outbox } from '../db/schema';
import type { Logger } from '../logger';
import type { OutboxMessage } from './apply';

/**
 * Publishes committed outbox rows to JetStream and deletes them. The message id doubles as
 * `Nats-Msg-Id`, so a row published twice (crash between publish and delete, or two
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

  async publish(messages: OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const sent: string[] = [];
    await Promise.all(
      messages.map(async (m) => {
        try {
          await this.js.publish(m.subject, JSON.stringify(m.payload), { msgID: m.id, timeout: 5_000 });
          sent.push(m.id);
        } catch (err) {
          this.log.warn(
            { err: String(err), subject: m.subject },
            'outbox publish failed; the sweep will retry',
          );
        }
      }),
    );
    // Not awaited on the hot path: a row left behind is only republished (and deduplicated) by the sweep.
    if (sent.length > 0) {
      this.db.execute(sql`delete from outbox where id in ${idList(sent)}`).then(
        () => {},
        (err) => this.log.warn({ err: String(err) }, 'outbox cleanup failed; the sweep will retry'),
      );
    }
  }

  /** Picks up rows a crashed or disconnected process committed but never published. */
  start(everyMs: number, olderThanMs: number) {
    this.timer = setInterval(() => void this.sweep(olderThanMs), everyMs);
  }

  async sweep(olderThanMs: number): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      const rows = await this.db
        .select()
        .from(outbox)
        .where(lt(outbox.createdAt, sql`now() - ${olderThanMs} * interval '1 millisecond'`))
        .orderBy(asc(outbox.seq))
        .limit(1_000);
      await this.publish(rows.map((r) => ({ id: r.id, subject: r.subject, payload: r.payload })));
      if (rows.length > 0) this.log.info({ count: rows.length }, 'outbox sweep republished pending messages');
      return rows.length;
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
