import { Hono } from 'hono';
import type { Metrics } from './metrics';
import { type Health, statusReport } from './status';

/** The HTTP face of a process without the gateway: GET /status (for health checks) and GET /metrics. */
export function opsApp(deps: { metrics: Metrics; health: () => Promise<Health> }) {
  return new Hono()
    .get('/status', async (c) => {
      const report = statusReport(await deps.health());
      return c.json(report.body, report.status);
    })
    .get('/metrics', async (c) => {
      const m = await deps.metrics.render();
      return c.body(m.body, 200, { 'content-type': m.contentType });
    })
    .notFound((c) => c.json({ detail: 'Not found.' }, 404));
}
