import { sql } from 'drizzle-orm';
import type { Database } from '../db/client';
import { queryRows } from '../db/rows';
import type { Logger } from '../logger';
import { syncStudies } from './study-sync';

const SYNC_LOCK = 72_610_003;

/** Runs the study sync every interval; with several coordinators only one runs it at a time. */
export function scheduleStudySync(database: Database, opts: { url: string; everyMs: number; log: Logger }) {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      await database.db.transaction(async (tx) => {
        const [lock] = await queryRows<{ ok: boolean }>(
          tx,
          sql`select pg_try_advisory_xact_lock(${SYNC_LOCK}) as ok`,
        );
        if (!lock?.ok) return;
        const report = await syncStudies(database.db, { dataserviceUrl: opts.url });
        opts.log.info(
          {
            new: report.new.length,
            deleted: report.deleted.length,
            updated: report.updated.length,
            pages: report.pages,
          },
          'scheduled study sync done',
        );
      });
    } catch (err) {
      opts.log.warn({ err: String(err) }, 'scheduled study sync failed; will retry at the next interval');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void run(), opts.everyMs);
  return { stop: () => clearInterval(timer), runNow: run };
}
