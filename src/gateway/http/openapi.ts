import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { Invalid } from '../../domain/errors';
import type { AppEnv } from './auth';
import { fieldErrors } from './validation';

/**
 * Shared pieces of the route definitions: every route module builds an OpenAPIHono with
 * `routes()`, whose validation failures become 400 `{field: [messages]}`, and describes its
 * answers with the schemas below, so /openapi.json is generated from the routes themselves.
 */
export function routes(init: { strict?: boolean } = {}) {
  return new OpenAPIHono<AppEnv>({
    ...init,
    defaultHook: (result) => {
      if (!result.success) throw Invalid(fieldErrors(result.error.issues));
    },
  });
}

export const BEARER = 'bearer';
/** `security` of a route that needs a token */
export const needsToken = [{ [BEARER]: [] }];

export const Detail = z
  .object({ detail: z.string() })
  .openapi('Detail', { example: { detail: 'Not found.' } });
export const FieldErrors = z
  .record(z.string(), z.array(z.string()))
  .openapi('FieldErrors', { example: { name: ['This field is required.'] } });

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** The error answers, by status; pick the ones a route can give. */
export const errors = {
  400: json(FieldErrors, 'Invalid input: each bad field with its messages'),
  401: json(Detail, 'Credentials missing or invalid (the reason is in detail)'),
  403: json(Detail, 'The caller lacks the role'),
  404: json(Detail, 'No such record'),
  409: json(Detail, 'The action does not fit the current state'),
  413: json(Detail, 'Request body too large'),
  415: json(Detail, 'Body is not application/json'),
  503: json(Detail, 'Postgres, NATS or the identity provider is unreachable'),
};
type ErrorStatus = keyof typeof errors;
export const errorResponses = <S extends ErrorStatus>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((s) => [s, errors[s]])) as Pick<typeof errors, S>;

/** Answers of a read route. */
export const readErrors = () => errorResponses(401, 503);
/** Answers of a write route with a JSON body. */
export const writeErrors = () => errorResponses(400, 401, 403, 413, 415, 503);

export { json as jsonContent };

/** A JSON request body (required; the gateway answers 415 to anything but JSON). */
export const jsonBody = <T extends z.ZodType>(schema: T, description?: string) => ({
  required: true,
  ...(description ? { description } : {}),
  content: { 'application/json': { schema } },
});

export const IdParam = (example: string) =>
  z.object({
    id: z
      .string()
      .min(1)
      .openapi({ param: { name: 'id', in: 'path' }, example, description: 'kf_id of the record' }),
  });

/** `{count, next, previous, results}` of a list. */
export const Page = <T extends z.ZodType>(name: string, item: T) =>
  z
    .object({
      count: z.number().int().openapi({ description: 'records matching the filters' }),
      next: z.string().nullable().openapi({ description: 'absolute URL of the next page, or null' }),
      previous: z.string().nullable().openapi({ description: 'absolute URL of the previous page, or null' }),
      results: z.array(item),
    })
    .openapi(name);

export const datetime = () =>
  z.string().openapi({ format: 'date-time', example: '2026-01-31T12:00:00.000Z' });
/** An absolute URL of a related record (accepted in requests as URL or bare kf_id). */
export const ref = (example: string) => z.string().openapi({ format: 'uri', example });

/** `GET /{id}` of a collection: one record, or 404. */
export const getOneRoute = <T extends z.ZodType>(o: {
  tags: string[];
  what: string;
  schema: T;
  params: ReturnType<typeof IdParam>;
}) =>
  createRoute({
    method: 'get',
    path: '/{id}',
    tags: o.tags,
    summary: `One ${o.what}`,
    request: { params: o.params },
    responses: { 200: json(o.schema, `The ${o.what}`), ...errorResponses(401, 404, 503) },
  });
