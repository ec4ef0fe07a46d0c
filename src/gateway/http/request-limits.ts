import type { MiddlewareHandler } from 'hono';
import { ApiError } from './errors';

/**
 * Sizes of the request line and headers the gateway accepts. They sit below the HTTP parsers'
 * own limits (16 KiB in Bun and Node, more in Deno), so an oversized request is almost
 * always refused here, with a JSON message, instead of by the parser with an empty body.
 */
export const REQUEST_LIMITS = {
  /** path and query string */
  maxUrlBytes: 8 * 1024,
  /** one header, name and value (a bearer token included) */
  maxHeaderBytes: 8 * 1024,
  /** the request line and every header together */
  maxHeadBytes: 15 * 1024,
};

/** Refuses a URL over maxUrlBytes (414) and headers over their limits (431), naming what is too large. */
export function requestHeadLimits(): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url);
    const target = url.pathname.length + url.search.length;
    if (target > REQUEST_LIMITS.maxUrlBytes) {
      throw new ApiError(414, {
        detail: `The URL (path and query) is longer than ${REQUEST_LIMITS.maxUrlBytes} bytes; send fewer or shorter query parameters.`,
      });
    }
    let head = c.req.method.length + target + 11;
    for (const [name, value] of c.req.raw.headers) {
      const size = name.length + value.length + 4;
      if (size > REQUEST_LIMITS.maxHeaderBytes) {
        throw new ApiError(431, {
          detail:
            name === 'authorization'
              ? `The Authorization header (the token) is larger than ${REQUEST_LIMITS.maxHeaderBytes} bytes.`
              : `The ${name} header is larger than ${REQUEST_LIMITS.maxHeaderBytes} bytes.`,
        });
      }
      head += size;
    }
    if (head > REQUEST_LIMITS.maxHeadBytes) {
      throw new ApiError(431, {
        detail: `The request line and headers are larger than ${REQUEST_LIMITS.maxHeadBytes} bytes together.`,
      });
    }
    await next();
  };
}
