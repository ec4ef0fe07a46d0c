import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from '../logger';

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

export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof ApiError) return c.json(err.body, err.status);
    if (err instanceof HTTPException) {
      const status = err.status;
      const detail = status === 413 ? 'Request body is too large.' : err.message || 'Bad request.';
      return c.json({ detail }, status);
    }
    log.error({ err, path: c.req.path, method: c.req.method }, 'unhandled error');
    return c.json({ detail: 'Internal server error.' }, 500);
  };
}
