import { sql } from 'drizzle-orm';
import { newKfId } from '../../domain/ids';
import type { Db } from '../../infra/db/client';
import { queryRows } from '../../infra/db/rows';

/** The error event of a message set aside (it could not be applied). */
export function recordParkedEvent(
  db: Db,
  e: { message: string; releaseId: string | null; taskId: string | null | undefined },
) {
  return queryRows(
    db,
    sql`insert into events (kf_id, event_type, message, release_id, task_id)
        values (${newKfId('EV')}, 'error', ${e.message},
          ${e.releaseId}, ${e.taskId})`,
  );
}

/** A trivial query: whether Postgres answers at all. */
export function pingDatabase(db: Db) {
  return queryRows(db, sql`select 1`);
}
