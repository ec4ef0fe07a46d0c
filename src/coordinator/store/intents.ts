import { sql } from 'drizzle-orm';
import type { Intent, IntentReply } from '../../infra/bus/messages';
import type { Db } from '../../infra/db/client';
import { type DriverRow, queryRows } from '../../infra/db/rows';
import type { intents } from '../../infra/db/schema';

/**
 * Stored intents not applied yet that are older than a second (NATS should have brought them by
 * now), oldest first, at most `limit`.
 */
export async function unsentIntents(db: Db, limit: number): Promise<Array<{ id: string; intent: Intent }>> {
  const rows = await queryRows<Pick<DriverRow<typeof intents>, 'id' | 'body'>>(
    db,
    sql`select id, body from intents
          where applied_at is null and created_at <= now() - interval '1 second'
          order by created_at limit ${limit}`,
  );
  return rows.map((r) => ({
    id: r.id,
    intent: (typeof r.body === 'string' ? JSON.parse(r.body) : r.body) as Intent,
  }));
}

/** Answers a stored intent for good (unless it was answered already): no sweep brings it back. */
export function answerStoredIntent(db: Db, id: string, reply: IntentReply) {
  return queryRows(
    db,
    sql`update intents set applied_at = now(), reply = ${JSON.stringify(reply)}::jsonb
          where id = ${id} and applied_at is null`,
  );
}
