import { VERSION } from '../version';

export type Health = { database: boolean; bus: boolean };

/** The body and status of GET /status, for the gateway and for coordinator/worker-only processes alike. */
export function statusReport(health: Health) {
  const ok = health.database && health.bus;
  const body = {
    name: 'Release Coordinator',
    message: ok
      ? 'ready'
      : `unavailable: ${!health.database ? 'database ' : ''}${!health.bus ? 'bus' : ''}`.trim(),
    version: VERSION.version,
    commit: VERSION.commit,
    database: health.database ? ('ok' as const) : ('unreachable' as const),
    bus: health.bus ? ('ok' as const) : ('unreachable' as const),
  };
  return { body, status: ok ? (200 as const) : (503 as const) };
}
