import { z } from '@hono/zod-openapi';
import { and, eq } from 'drizzle-orm';
import type { Context } from 'hono';
import { Conflict, Invalid } from '../../domain/errors';
import type { Db, Tx } from '../../infra/db/client';
import { idempotencyKeys } from '../../infra/db/schema';
import { ApiError } from './errors';
import { FieldErrors, jsonContent } from './openapi';
import { storableText } from './validation';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** The header of a creating route, for its OpenAPI description. */
export const idempotencyHeader = (what: string) =>
  z.object({
    'idempotency-key': z
      .string()
      .optional()
      .openapi({
        description: `makes retries safe: the same key returns the same ${what}, also to two requests at once`,
      }),
  });

/** The answer of a creating route to a key reused with another body. */
export const keyReused = {
  422: jsonContent(FieldErrors, `The ${IDEMPOTENCY_HEADER} was already used with a different body`),
};

const keySchema = storableText(z.string().min(1).max(200));

/** The request's Idempotency-Key, or undefined; a 400 naming the header when it is unusable. */
export function idempotencyKeyOf(c: Context): string | undefined {
  const key = keySchema.optional().safeParse(c.req.header(IDEMPOTENCY_HEADER) || undefined);
  if (!key.success) throw Invalid({ [IDEMPOTENCY_HEADER]: ['Must be 1 to 200 characters.'] });
  return key.data;
}

export interface Created<T> {
  status: number;
  body: T;
}

/** A twin request reserved the key first and committed: read what it answered. */
class KeyTaken extends Error {}

/**
 * Creates a record once per key: the key is reserved in the transaction that inserts the record
 * (a concurrent twin waits on that row, then reads its answer), and a later request with the key
 * gets the first answer again: the same status and body. The same key with another body is a 422
 * naming the header. `prepare` runs before the transaction (e.g. a live check of a URL, which must
 * not hold a transaction open), and only when the key is new.
 */
export async function createOnce<T>(
  db: Db,
  /** `caller`: who sends it (keys are per caller: another caller's key names nothing of theirs) */
  request: { scope: string; key: string | undefined; body: unknown; caller: string | undefined },
  steps: {
    prepare?: () => Promise<void>;
    create: (tx: Db | Tx) => Promise<{ id: string; body: T }>;
  },
): Promise<Created<T>> {
  const { key } = request;
  const scope = request.caller === undefined ? request.scope : `${request.scope} ${request.caller}`;
  if (key === undefined) {
    await steps.prepare?.();
    return { status: 201, body: (await steps.create(db)).body };
  }
  const hash = await sha256(JSON.stringify(request.body));
  const earlier = await answered<T>(db, scope, key, hash);
  if (earlier) return earlier;
  await steps.prepare?.();
  try {
    return await db.transaction(async (tx) => {
      const reserved = await tx
        .insert(idempotencyKeys)
        .values({ scope, key, requestHash: hash })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key });
      if (reserved.length === 0) throw new KeyTaken();
      const created = await steps.create(tx);
      await tx
        .update(idempotencyKeys)
        .set({ resourceId: created.id, responseStatus: 201, responseBody: created.body })
        .where(and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key)));
      return { status: 201, body: created.body };
    });
  } catch (err) {
    if (!(err instanceof KeyTaken)) throw err;
    const twin = await answered<T>(db, scope, key, hash);
    if (!twin) throw Conflict(`A request with this ${IDEMPOTENCY_HEADER} is in progress; retry.`);
    return twin;
  }
}

/** The stored answer to the key, if any; 422 when it was given for another body. */
async function answered<T>(
  db: Db,
  scope: string,
  key: string,
  hash: string,
): Promise<Created<T> | undefined> {
  const [row] = await db
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.scope, scope), eq(idempotencyKeys.key, key)));
  if (!row) return undefined;
  if (row.requestHash !== hash) {
    throw new ApiError(422, {
      [IDEMPOTENCY_HEADER]: ['This key was already used with a different request body.'],
    });
  }
  return { status: row.responseStatus ?? 201, body: row.responseBody as T };
}

export async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
