import { sql } from 'drizzle-orm';
import type { Db } from '../../infra/db/client';
import { type DriverRow, queryRows } from '../../infra/db/rows';
import type { outboxBatches } from '../../infra/db/schema';

/**
 * One message of an outbox batch, published to NATS with `id` as its `Nats-Msg-Id`. `data` is the
 * payload as JSON text, serialised once when the batch is decided: the outbox row and the publish
 * both use that text (the row embeds it, see outboxRowText), so no payload is serialised twice.
 */
export interface OutboxMessage {
  id: string;
  subject: string;
  data: string;
}

export function outboxMessage(id: string, subject: string, payload: unknown): OutboxMessage {
  return { id, subject, data: JSON.stringify(payload) };
}

/**
 * The `messages` text of an outbox row: a JSON array of `{id, subject, payload}` with each payload
 * embedded as the text it was serialised to (the row format did not change; rows written before
 * are read the same way).
 */
export function outboxRowText(messages: readonly OutboxMessage[]): string {
  const parts = messages.map(
    (m) => `{"id":${JSON.stringify(m.id)},"subject":${JSON.stringify(m.subject)},"payload":${m.data}}`,
  );
  return `[${parts.join(',')}]`;
}

function fromRowText(text: string): OutboxMessage[] {
  const stored = JSON.parse(text) as Array<{ id: string; subject: string; payload: unknown }>;
  return stored.map((m) => outboxMessage(m.id, m.subject, m.payload));
}

/**
 * After a batch was published: its row is deleted when every message got its ack, otherwise it
 * keeps only the messages that did not.
 */
export function settleOutboxBatch(db: Db, batchId: string, unsent: OutboxMessage[]) {
  return db.execute(
    unsent.length === 0
      ? sql`delete from outbox_batches where id = ${batchId}`
      : sql`update outbox_batches set messages = ${outboxRowText(unsent)} where id = ${batchId}`,
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
  return rows.map((b) => ({ id: b.id, messages: fromRowText(b.messages) }));
}
