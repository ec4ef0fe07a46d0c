import { sql } from 'drizzle-orm';
import type { Db } from '../../infra/db/client';
import { queryRows } from '../../infra/db/rows';

/** What only guards against repeats, and the column that says since when it is kept. */
const KEPT = {
  processed_messages: 'created_at',
  intents: 'applied_at',
  idempotency_keys: 'created_at',
} as const;

export type KeptTable = keyof typeof KEPT;

/**
 * Deletes at most `limit` rows of `table` older than `days` days (answered, for intents); returns
 * how many. Called in a loop, so a large backlog never holds a long transaction.
 */
export async function forgetOlderThan(
  db: Db,
  table: KeptTable,
  days: number,
  limit: number,
): Promise<number> {
  const cutoff = sql`now() - make_interval(days => ${days}::int)`;
  const where = sql`${sql.raw(KEPT[table])} < ${cutoff}`;
  const gone = await queryRows<{ n: number }>(
    db,
    sql`with gone as (delete from ${sql.raw(table)} where ctid in (
                select ctid from ${sql.raw(table)} where ${where} limit ${limit}) returning 1)
              select count(*)::int as n from gone`,
  );
  return gone[0]?.n ?? 0;
}
