import { sql } from 'drizzle-orm';
import type { Db } from '../../infra/db/client';
import { type DriverRow, queryRows } from '../../infra/db/rows';
import type { outboxBatches } from '../../infra/db/schema';

/** One message of an outbox batch, published to NATS with `id` as its `Nats-Msg-Id`. */
export interface OutboxMessage {
  id: string;
  subject: string;
  payload: unknown;
}

/**
 * After a batch was published: its row is deleted when every message got its ack, otherwise it
 * keeps only the messages that did not.
 */
export function settleOutboxBatch(db: Db, batchId: string, unsent: OutboxMessage[]) {
  return db.execute(
    unsent.length === 0
      ? sql`delete from outbox_batches where id = ${batchId}`
      : sql`update outbox_batches set messages = ${JSON.stringify(unsent)} where id = ${batchId}`,
  );
}

/** The oldest batches (at most 100) committed longer than olderThanMs ago, with their messages. */
export async function outboxBatchesOlderThan(
  db: Db,
  olderThanMs: number,
): Promise<Array<{ id: string; messages: OutboxMessage[] }>> {
  const older = sql`now() - ${olderThanMs} * interval '1 millisecond'`;
  const rows = await queryRows<Pick<DriverRow<typeof outboxBatches>, 'id' | 'messages'>>(
    db,
    sql`select id, messages from outbox_batches where created_at < ${older} order by seq limit 100`,
  );
  return rows.map((b) => ({ id: b.id, messages: JSON.parse(b.messages) as OutboxMessage[] }));
}
