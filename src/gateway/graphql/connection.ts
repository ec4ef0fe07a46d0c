import { asc, type Column, desc, type SQL } from 'drizzle-orm';
import { cursorToOffset, offsetToCursor } from 'graphql-relay';
import { gqlError } from './context';
import { LIMITS } from './limits';

export interface PageArgs {
  first?: number | null;
  last?: number | null;
  before?: string | null;
  after?: string | null;
  offset?: number | null;
  orderBy?: string | null;
}

export interface Connection<T> {
  edges: Array<{ node: T; cursor: string }>;
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
  totalCount: number;
}

/** `created_at` oldest first, `-created_at` (the default) newest first; ties broken by the given columns. */
export function ordering(
  orderBy: string | null | undefined,
  createdAt: Column,
  ...tieBreakers: Column[]
): SQL[] {
  const o = orderBy ?? '-created_at';
  if (o !== 'created_at' && o !== '-created_at') {
    throw gqlError(`orderBy must be "created_at" or "-created_at" (got "${o}").`, 'BAD_USER_INPUT');
  }
  const dir = o === 'created_at' ? asc : desc;
  return [dir(createdAt), ...tieBreakers.map((c) => dir(c))];
}

const nonNegative = (name: string, v: number | null | undefined) => {
  if (v != null && v < 0)
    throw gqlError(`Argument "${name}" must be a non-negative integer.`, 'BAD_USER_INPUT');
  return v ?? undefined;
};

const cursor = (name: string, v: string | null | undefined) => {
  if (v == null) return undefined;
  const n = cursorToOffset(v);
  if (!Number.isInteger(n) || n < 0)
    throw gqlError(`Argument "${name}" is not a valid cursor.`, 'BAD_USER_INPUT');
  return n;
};

/**
 * A Relay connection over offset cursors (`arrayconnection:N`, as graphene produced them):
 * `offset` and `after` move the start, `before` the end, then `first`/`last` take from either
 * side. Pages hold at most LIMITS.maxPage rows (a larger first/last is capped, none means the cap).
 */
export async function connection<T>(
  args: PageArgs,
  source: { count: () => Promise<number>; rows: (limit: number, offset: number) => Promise<T[]> },
): Promise<Connection<T>> {
  const first = nonNegative('first', args.first);
  const last = nonNegative('last', args.last);
  const offset = nonNegative('offset', args.offset) ?? 0;
  const after = cursor('after', args.after);
  const before = cursor('before', args.before);
  const cap = LIMITS.maxPage;
  let start = offset + (after === undefined ? 0 : after + 1);
  let end: number;
  let total: number;
  let rows: T[];
  if (last === undefined && before === undefined) {
    // the common case: the window is known without the count, so both run at once
    const limit = Math.min(first ?? cap, cap);
    [total, rows] = await Promise.all([
      source.count(),
      limit > 0 ? source.rows(limit, start) : Promise.resolve([]),
    ]);
    end = Math.min(start + limit, Math.max(total, start));
  } else {
    total = await source.count();
    end = before === undefined ? total : Math.min(before, total);
    if (first !== undefined) end = Math.min(end, start + Math.min(first, cap));
    if (last !== undefined) start = Math.max(start, end - Math.min(last, cap));
    if (first === undefined && last === undefined) end = Math.min(end, start + cap);
    const limit = Math.max(0, end - start);
    rows = limit > 0 ? await source.rows(limit, start) : [];
  }
  const edges = rows.map((node, i) => ({ node, cursor: offsetToCursor(start + i) }));
  return {
    edges,
    pageInfo: {
      hasPreviousPage: start > 0 && total > 0,
      hasNextPage: start + rows.length < (before === undefined ? total : Math.min(before, total)),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount: total,
  };
}
