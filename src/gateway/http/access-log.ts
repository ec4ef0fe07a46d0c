import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { AppEnv } from './auth';
import type { GatewayDeps } from './context';

/**
 * One structured line per request (request id, method, route, status, duration; never headers,
 * so never a token) and the request-latency histogram. Health checks and scrapes log at debug.
 */
export function accessLog(deps: Pick<GatewayDeps, 'log' | 'metrics'>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const route = routePath(c) || c.req.path;
    const status = c.res.status;
    deps.metrics?.httpRequests.observe({ method: c.req.method, route, status: String(status) }, ms / 1000);
    const quiet = route === '/status' || route === '/metrics';
    const line = { requestId: c.get('requestId'), method: c.req.method, path: c.req.path, route, status, ms };
    if (status >= 500) deps.log.error(line, 'request failed');
    else if (quiet) deps.log.debug(line, 'request');
    else deps.log.info(line, 'request');
  };
}
