import { VERSION } from '../../version';

export type Health = { database: boolean; bus: boolean };

/**
 * The body and status of GET /status, for the gateway and for coordinator/worker-only processes
 * alike. `warnings`: what an operator should fix but that does not make the coordinator unhealthy.
 */
export function statusReport(health: Health, warnings: string[] = []) {
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
    warnings,
  };
  return { body, status: ok ? (200 as const) : (503 as const) };
}

/**
 * Enabled task services that accept callbacks from any service token (docs/lifecycle.md). Named
 * only with `names` (callers who may list task services); others get the count: the list is the
 * services whose callbacks any service token may send, not for anyone who can reach the port.
 */
export function unboundServicesWarning(
  names: string[],
  opts: { names: boolean } = { names: true },
): string[] {
  if (names.length === 0) return [];
  const shown = !opts.names
    ? `${names.length} task service${names.length === 1 ? '' : 's'} (sign in to see which)`
    : names.slice(0, 10).join(', ') + (names.length > 10 ? ` and ${names.length - 10} more` : '');
  return [
    `task services without token_subject accept callbacks from any service token: ${shown} (bind each to its token's subject)`,
  ];
}
