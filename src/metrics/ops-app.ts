import { Hono } from 'hono';
import { VERSION } from '../version';
import type { Metrics } from './metrics';

/** The HTTP face of a process without the gateway: GET /status (for health checks) and GET /metrics. */
export function opsApp(deps: {
  metrics: Metrics;
  health: () => Promise<{ database: boolean; bus: boolean }>;
}) {
  return new Hono()
    .get('/status', async (c) => {
      const h = await deps.health();
      const ok = h.database && h.bus;
      return c.json(
        {
          name: 'Release Coordinator',
          message: ok ? 'ready' : 'unavailable',
          version: VERSION.version,
          commit: VERSION.commit,
          database: h.database ? 'ok' : 'unreachable',
          bus: h.bus ? 'ok' : 'unreachable',
        },
        ok ? 200 : 503,
      );
    })
    .get('/metrics', async (c) => {
      const m = await deps.metrics.render();
      return c.body(m.body, 200, { 'content-type': m.contentType });
    })
    .notFound((c) => c.json({ detail: 'Not found.' }, 404));
}
