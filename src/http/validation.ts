import { zValidator } from '@hono/zod-validator';
import type { ValidationTargets } from 'hono';
import type { z } from 'zod';
import { Invalid } from './errors';

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
