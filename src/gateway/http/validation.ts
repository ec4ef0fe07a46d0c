import { zValidator } from '@hono/zod-validator';
import type { ValidationTargets } from 'hono';
import type { z } from 'zod';
import { Invalid } from '../../domain/errors';

/** zod issues → `{ field: [messages] }` in the original's wording where it had one. */
export function fieldErrors(issues: z.core.$ZodIssue[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const issue of issues) {
    const field = issue.path.length > 0 ? issue.path.join('.') : 'non_field_errors';
    const missing = issue.code === 'invalid_type' && /received undefined/.test(issue.message);
    const messages = out[field] ?? [];
    messages.push(missing ? 'This field is required.' : issue.message);
    out[field] = messages;
  }
  return out;
}

/** @hono/zod-validator with our 400 shape. */
export const validate = <T extends z.ZodType, Target extends keyof ValidationTargets>(
  target: Target,
  schema: T,
) =>
  zValidator(target, schema, (result) => {
    if (!result.success) throw Invalid(fieldErrors(result.error.issues));
  });

/** a UTF-16 surrogate without its pair (in unicode mode a proper pair is one code point) */
const LONE_SURROGATE = /\p{Cs}/u;

export const UNSTORABLE_TEXT = 'NUL characters and unpaired surrogates are not allowed.';

/**
 * The rule for every string the API accepts (REST bodies and filters, GraphQL arguments): text
 * Postgres stores (and compares) exactly as sent. No NUL, and no unpaired surrogate (`"\uD800"` in
 * JSON: it would be stored as U+FFFD, not as sent).
 */
export const isStorableText = (s: string) => !s.includes('\u0000') && !LONE_SURROGATE.test(s);

/**
 * `isStorableText` for a zod string: refused with a 400 naming the field, so a 202 never hides a
 * write the database will refuse.
 */
export const storableText = <T extends z.ZodString>(schema: T): T =>
  schema.refine(isStorableText, { message: UNSTORABLE_TEXT }) as T;

/** An `integer` column's range (Postgres refuses anything outside it). */
export const PG_INTEGER = { min: -2_147_483_648, max: 2_147_483_647 } as const;
