import { z } from '@hono/zod-openapi';

export const MAX_LIMIT = 100;

export const pagingQuery = {
  // like Django REST framework's max_limit: a larger limit is capped, not refused
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(1_000_000_000)
    .default(10)
    .transform((n) => Math.min(n, MAX_LIMIT))
    .openapi({
      type: 'integer',
      description: `page size (default 10; larger values are capped at ${MAX_LIMIT})`,
    }),
  offset: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000_000)
    .default(0)
    .openapi({ type: 'integer', description: 'records to skip' }),
};

/** `{count, next, previous, results}` with absolute next/previous URLs. */
export function page<T>(
  publicUrl: string,
  requestUrl: string,
  p: { limit: number; offset: number },
  count: number,
  results: T[],
) {
  const link = (offset: number) => {
    const u = new URL(requestUrl);
    const target = new URL(publicUrl + u.pathname);
    for (const [k, v] of u.searchParams) target.searchParams.set(k, v);
    target.searchParams.set('limit', String(p.limit));
    if (offset > 0) target.searchParams.set('offset', String(offset));
    else target.searchParams.delete('offset');
    return target.toString();
  };
  return {
    count,
    next: p.offset + p.limit < count ? link(p.offset + p.limit) : null,
    previous: p.offset > 0 ? link(Math.max(0, p.offset - p.limit)) : null,
    results,
  };
}

/** A related record given as absolute URL or bare kf_id → the kf_id. */
export function idFromRef(ref: string): string {
  const trimmed = ref.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** A list answer: the page query and its count run together, each row shaped by `toJson`. */
export async function pageOf<R, J>(
  publicUrl: string,
  requestUrl: string,
  p: { limit: number; offset: number },
  rows: PromiseLike<R[]>,
  total: PromiseLike<Array<{ n: number }>>,
  toJson: (row: R) => J,
) {
  const [found, [counted]] = await Promise.all([rows, total]);
  return page(publicUrl, requestUrl, p, counted?.n ?? 0, found.map(toJson));
}
