import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from '../../infra/logger';

/** One error type per answer the API can give; mapped to HTTP in `errorResponse`. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly body: Record<string, unknown>,
  ) {
    super(typeof body.detail === 'string' ? body.detail : JSON.stringify(body));
  }
}
export const NotFound = () => new ApiError(404, { detail: 'Not found.' });
export const Conflict = (detail: string) => new ApiError(409, { detail });
/** 400 with field → messages, as the original coordinator answered. */
export const Invalid = (fields: Record<string, string[]>) => new ApiError(400, fields);
export const Unauthorized = (detail: string) => new ApiError(401, { detail });
export const Forbidden = (detail: string) => new ApiError(403, { detail });

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'DATABASE_UNAVAILABLE', // src/db/guard.ts: circuit open, or no answer within the request deadline
  'BUS_UNAVAILABLE', // src/bus/intent-client.ts: the NATS connection is known to be down
  '57014', // query_canceled: the statement_timeout a request's transaction sets from its deadline
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08003',
  '08006',
]);

/** seconds a 503 asks the caller to wait (the gateway checks every half second whether Postgres is back) */
const RETRY_AFTER_S = '2';

/** SQLSTATEs that mean the input itself was unusable: 22021 invalid byte sequence (e.g. NUL), 22P05 untranslatable character, 22P02 invalid text representation */
const BAD_INPUT_CODES = new Set(['22021', '22P05', '22P02']);

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

function hasCode(err: unknown, codes: Set<string>): boolean {
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

export function errorHandler(log: Logger, health?: () => Promise<{ database: boolean; bus: boolean }>) {
  const unavailable = (c: Context, err: unknown) => {
    log.warn({ err: String(err), path: c.req.path }, 'dependency unavailable');
    c.header('Retry-After', RETRY_AFTER_S);
    return c.json({ detail: 'Service temporarily unavailable; retry shortly.' }, 503);
  };
  return async (err: Error, c: Context) => {
    if (err instanceof ApiError) {
      if (err.status === 503) c.header('Retry-After', RETRY_AFTER_S);
      return c.json(err.body, err.status);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const detail = status === 413 ? 'Request body is too large.' : err.message || 'Bad request.';
      return c.json({ detail }, status);
    }
    if (isUnavailable(err)) return unavailable(c, err);
    if (hasCode(err, BAD_INPUT_CODES)) {
      // text Postgres cannot store or read (a NUL byte, an invalid value): the request's fault
      return c.json({ detail: 'The request contains characters or values that are not accepted.' }, 400);
    }
    // drivers do not always say "connection lost" in a recognisable way: ask the dependencies
    const h = await health?.().catch(() => ({ database: false, bus: false }));
    if (h && (!h.database || !h.bus)) return unavailable(c, err);
    log.error({ err, path: c.req.path, method: c.req.method }, 'unhandled error');
    return c.json({ detail: 'Internal server error.' }, 500);
  };
}
