import { Hono } from 'hono';
import type { AppEnv } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { ApiError } from '../http/errors';

/** GET /events/stream: Server-Sent Events feed of release and task transitions. */
export function eventStreamRoutes(_deps: GatewayDeps) {
  return new Hono<AppEnv>().get('/stream', () => {
    throw new ApiError(501, { detail: 'The event stream is not available yet.' });
  });
}
