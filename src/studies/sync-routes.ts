import { Hono } from 'hono';
import { type AppEnv, requireRole } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { ApiError } from '../http/errors';

/** POST /studies/sync: pull every study from the data service (filled in by the studies-sync work). */
export function studySyncRoutes(_deps: GatewayDeps) {
  return new Hono<AppEnv>().post('/sync', requireRole(['ADMIN', 'DEV']), () => {
    throw new ApiError(501, { detail: 'Study sync is not configured.' });
  });
}
