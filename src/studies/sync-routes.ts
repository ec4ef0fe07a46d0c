import { Hono } from 'hono';
import { type AppEnv, requireRole } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { ApiError } from '../http/errors';
import { SyncError, syncStudies } from './sync';

/** POST /studies/sync (ADMIN or DEV): pull every study from the data service, all pages. */
export function studySyncRoutes(deps: GatewayDeps) {
  return new Hono<AppEnv>().post('/sync', requireRole(['ADMIN', 'DEV']), async (c) => {
    const url = deps.config.DATASERVICE_URL;
    if (!url) throw new ApiError(409, { detail: 'No data service is configured (set DATASERVICE_URL).' });
    try {
      const report = await syncStudies(deps.db, { dataserviceUrl: url, fetch: deps.fetch });
      deps.log.info(
        { new: report.new.length, deleted: report.deleted.length, updated: report.updated.length },
        'studies synced',
      );
      return c.json(report);
    } catch (err) {
      if (err instanceof SyncError) throw new ApiError(502, { detail: `Study sync failed: ${err.message}` });
      throw err;
    }
  });
}
