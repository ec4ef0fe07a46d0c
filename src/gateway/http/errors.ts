import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import {
  Conflict,
  ConflictError,
  DomainError,
  ForbiddenError,
  Invalid,
  InvalidError,
  NotFound,
  NotFoundError,
  UnauthorizedError,
} from '../../domain/errors';
import { causedBy, hasCode, isUnavailable } from '../../infra/errors';
import type { Logger } from '../../infra/logger';

/**
 * An HTTP answer that is not a rule of the product (413, 414, 415, 431, 503, ...). The product's
 * own refusals are the domain errors (domain/errors.ts), mapped to HTTP by `apiErrorOf`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly body: Record<string, unknown>,
  ) {
    super(typeof body.detail === 'string' ? body.detail : JSON.stringify(body));
  }
}
/** A domain error as the REST API answers it (docs/api.md, "Errors"). */
export function apiErrorOf(err: DomainError): ApiError {
  if (err instanceof InvalidError) return new ApiError(400, err.fields);
  if (err instanceof NotFoundError) return new ApiError(404, { detail: err.message });
  if (err instanceof ConflictError) return new ApiError(409, { detail: err.message });
  if (err instanceof UnauthorizedError) return new ApiError(401, { detail: err.message });
  if (err instanceof ForbiddenError) return new ApiError(403, { detail: err.message });
  return new ApiError(400, { detail: err.message });
}

/** The coordinator's answer to an intent, when it refused: the same error as if the gateway had. */
export function errorOfReply(reply: { status: number; body: unknown }): Error {
  const body = (reply.body ?? {}) as Record<string, unknown>;
  const detail = typeof body.detail === 'string' ? body.detail : undefined;
  if (reply.status === 404) return NotFound();
  if (reply.status === 409 && detail) return Conflict(detail);
  if (reply.status === 400 && !detail) return Invalid(body as Record<string, string[]>);
  return new ApiError(reply.status as ContentfulStatusCode, body);
}

/** seconds a 503 asks the caller to wait (the gateway checks every half second whether Postgres is back) */
const RETRY_AFTER_S = '2';

/** SQLSTATEs that mean the input itself was unusable: 22021 invalid byte sequence (e.g. NUL), 22P05 untranslatable character, 22P02 invalid text representation */
const BAD_INPUT_CODES = new Set(['22021', '22P05', '22P02']);

export function errorHandler(log: Logger, health?: () => Promise<{ database: boolean; bus: boolean }>) {
  const unavailable = (c: Context, err: unknown) => {
    log.warn({ err: String(err), path: c.req.path }, 'dependency unavailable');
    c.header('Retry-After', RETRY_AFTER_S);
    return c.json({ detail: 'Service temporarily unavailable; retry shortly.' }, 503);
  };
  return async (thrown: Error, c: Context) => {
    const err = thrown instanceof DomainError ? apiErrorOf(thrown) : thrown;
    if (err instanceof ApiError) {
      if (err.status === 503) c.header('Retry-After', RETRY_AFTER_S);
      return c.json(err.body, err.status);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const detail = status === 413 ? 'Request body is too large.' : err.message || 'Bad request.';
      return c.json({ detail }, status);
    }
    if (causedBy(err, 'CallerGone')) {
      // the caller hung up (its own timeout): nobody reads the answer, and nothing of it took effect
      log.info({ path: c.req.path, method: c.req.method }, 'caller closed the connection before the answer');
      return c.body(null, 499 as ContentfulStatusCode);
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
