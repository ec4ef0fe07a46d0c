/** How failures of Postgres and NATS show, whatever wraps them (Drizzle wraps the driver's errors). */

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'DATABASE_UNAVAILABLE', // infra/db/guard.ts: circuit open, or no answer within the request deadline
  'BUS_UNAVAILABLE', // infra/bus/intent-client.ts: the NATS connection is known to be down
  '57014', // query_canceled: the statement_timeout a request's transaction sets from its deadline
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08003',
  '08006',
]);

type Cause = { code?: unknown; cause?: unknown; name?: string };

/** The error and the errors it wraps (Drizzle wraps the driver's), at most five deep. */
function* causes(err: unknown): Generator<Cause> {
  for (
    let e = err as Cause | undefined, depth = 0;
    e && depth < 5;
    depth++, e = e.cause as Cause | undefined
  ) {
    yield e;
  }
}

/** Whether the error, or one of its causes, is named `name` (errors of our own, across drizzle's wrapping). */
export function causedBy(err: unknown, name: string): boolean {
  for (const e of causes(err)) if (e.name === name) return true;
  return false;
}

export function hasCode(err: unknown, codes: Set<string>): boolean {
  for (const e of causes(err)) if (typeof e.code === 'string' && codes.has(e.code)) return true;
  return false;
}

/** Postgres or NATS out of reach (possibly wrapped by Drizzle): the caller should retry, it is not their fault. */
export function isUnavailable(err: unknown): boolean {
  if (hasCode(err, UNAVAILABLE_CODES)) return true;
  for (const e of causes(err)) {
    if (e.name === 'TimeoutError' || e.name === 'ConnectionError' || e.name === 'NoRespondersError')
      return true;
  }
  return false;
}

/** The unique index a write ran into (SQLSTATE 23505), or undefined when it did not fail so. */
export function uniqueViolation(err: unknown): string | undefined {
  for (const e of causes(err) as Generator<Cause & { constraint_name?: unknown; constraint?: unknown }>) {
    if (e.code === '23505') return String(e.constraint_name ?? e.constraint ?? '');
  }
  return undefined;
}
