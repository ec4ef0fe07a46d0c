import { Coordinator, type CoordinatorHooks } from '../coordinator/coordinator';
import { scheduleStudySync } from '../infra/dataservice/schedule';
import { type Database, openDatabase } from '../infra/db/client';
import type { Shared, StartedRole } from './shared';

export interface CoordinatorRole extends StartedRole {
  coordinator: Coordinator;
}

/**
 * The coordinator role: applies intents and results, schedules polls and deadlines, and (with
 * DATASERVICE_URL) syncs studies. `ownConnections`: other roles share this process, so it gets
 * connections of its own and gateway traffic never makes a batch wait for one.
 */
export async function startCoordinatorRole(
  shared: Shared,
  opts: { ownConnections: boolean; hooks?: CoordinatorHooks },
): Promise<CoordinatorRole> {
  const { config, log } = shared;
  const database: Database =
    opts.ownConnections && shared.database.kind === 'postgres'
      ? await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 4 })
      : shared.database;
  const roleLog = log.child({ role: 'coordinator' });
  const coordinator = new Coordinator(
    database.db,
    shared.bus.nc,
    shared.names,
    config,
    roleLog,
    shared.metrics,
    shared.ensureBus,
    opts.hooks,
  );
  await coordinator.start();
  const studySync =
    config.DATASERVICE_URL && config.STUDY_SYNC_INTERVAL_MS > 0
      ? scheduleStudySync(shared.database, {
          url: config.DATASERVICE_URL,
          everyMs: config.STUDY_SYNC_INTERVAL_MS,
          log: roleLog,
        })
      : undefined;
  return {
    coordinator,
    async stop() {
      studySync?.stop();
      await coordinator.stop();
      if (database !== shared.database) await database.close();
    },
  };
}
