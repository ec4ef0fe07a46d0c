import { Hono } from 'hono';
import { SyncError, type SyncReport, syncStudies } from '../../infra/dataservice/study-sync';
import { type AppEnv, requireRole } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { ApiError } from '../http/errors';

/**
 * Pulls every study from the configured data service (shared by POST /studies/sync and the GraphQL
 * `syncStudies` mutation). 409 without DATASERVICE_URL, 502 when the data service fails.
 */
export async function runStudySync(
  deps: Pick<GatewayDeps, 'db' | 'config' | 'fetch' | 'log'>,
): Promise<SyncReport> {
  const url = deps.config.DATASERVICE_URL;
  if (!url) throw new ApiError(409, { detail: 'No data service is configured (set DATASERVICE_URL).' });
  try {
    const report = await syncStudies(deps.db, { dataserviceUrl: url, fetch: deps.fetch });
    deps.log.info(
      { new: report.new.length, deleted: report.deleted.length, updated: report.updated.length },
      'studies synced',
    );
    return report;
  } catch (err) {
    if (err instanceof SyncError) throw new ApiError(502, { detail: `Study sync failed: ${err.message}` });
    throw err;
  }
}

/** POST /studies/sync (ADMIN or DEV): pull every study from the data service, all pages. */
export function studySyncRoutes(deps: GatewayDeps) {
  return new Hono<AppEnv>().post('/sync', requireRole(['ADMIN', 'DEV']), async (c) =>
    c.json(await runStudySync(deps)),
  );
}
