import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { and, eq, isNull } from 'drizzle-orm';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { taskServices } from '../infra/db/schema';
import { statusReport, unboundServicesWarning } from '../infra/ops/status';
import { CallerGone, RequestBudget, withBudget } from '../infra/request-budget';
import { deriveTiming } from '../timing';
import { VERSION } from '../version';
import { CallbackRules } from './features/tasks/callback-rules';
import { KnownTasks } from './features/tasks/known-tasks';
import { graphqlCors, graphqlRoutes } from './graphql/routes';
import { accessLog } from './http/access-log';
import { type AppEnv, authenticate } from './http/auth';
import type { GatewayDeps } from './http/context';
import { devTokenRoutes } from './http/dev-token';
import { docsAsset, docsPage } from './http/docs';
import { ApiError, errorHandler } from './http/errors';
import { BEARER, Detail, errorResponses, jsonBody, jsonContent, needsToken, routes } from './http/openapi';
import { requestHeadLimits } from './http/request-limits';
import { eventStreamRoutes } from './rest/event-stream';
import { eventRoutes } from './rest/events';
import { releaseNoteRoutes } from './rest/release-notes';
import { releaseRoutes } from './rest/releases';
import { studyRoutes } from './rest/studies';
import { studySyncRoutes } from './rest/study-sync';
import { taskServiceRoutes } from './rest/task-services';
import { taskRoutes } from './rest/tasks';
import { uiRoutes } from './ui/routes';

/** reachable without a token even when PUBLIC_READS=false */
const ALWAYS_PUBLIC = new Set([
  '/',
  '/status',
  '/metrics',
  '/.well-known/jwks.json',
  '/openapi.json',
  '/docs',
  // GraphQL reads the token itself and answers auth problems as GraphQL errors
  '/graphql',
]);
const isAlwaysPublic = (path: string) => {
  const p = path.replace(/\/+$/, '') || '/';
  return ALWAYS_PUBLIC.has(p) || p.startsWith('/docs/');
};

/** A task-service callback: answered by its route even without credentials (as a hint to poll). */
const isTaskCallback = (method: string, path: string) =>
  method === 'PATCH' && /^\/tasks\/[^/]+\/?$/.test(path);

const COLLECTIONS = ['releases', 'tasks', 'task-services', 'events', 'release-notes', 'studies'] as const;

/**
 * How long the gateway works on one request before it answers 503 (with Retry-After): a little
 * under the 30 s after which HTTP clients and proxies commonly give up, so a caller hears "retry"
 * instead of timing out without knowing what happened. Every Postgres statement (waiting for a
 * connection included) and every NATS publish and reply wait of the request is bounded by what is
 * left of it (src/shared/request-budget.ts); an unreachable Postgres is detected much sooner
 * (src/db/guard.ts).
 */
export const REQUEST_DEADLINE_MS = 25_000;

/**
 * Gives each request its budget. A request answered with an error (the deadline included), or
 * whose caller hung up, is abandoned: its statements still pending fail and its transactions roll
 * back instead of committing, so nothing of it takes effect after the answer. Server-sent events
 * are long-lived by design and get no deadline.
 */
function requestDeadline(ms: number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.path === '/events/stream') return next();
    const budget = new RequestBudget(ms);
    const hungUp = () => budget.abandon(new CallerGone());
    const signal = c.req.raw.signal;
    signal.addEventListener('abort', hungUp, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), ms);
    });
    const work = withBudget(budget, () => next());
    try {
      if ((await Promise.race([work.then(() => 'done' as const), expired])) === 'expired') {
        const err = new ApiError(503, {
          detail: `No answer within ${ms / 1000} s (a dependency is slow or unreachable); retry shortly.`,
        });
        budget.abandon(err);
        work.catch(() => {});
        throw err;
      }
      if (c.res.status >= 400) budget.abandon(new Error(`answered ${c.res.status}`));
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', hungUp);
    }
  };
}

/** The public REST API. Reads from Postgres; every state change goes to the coordinator over NATS. */
export function createApp(given: GatewayDeps) {
  const deps = withDefaults(given);
  const app = routes({ strict: false });
  app.onError(errorHandler(deps.log, deps.health));
  useRequestMiddleware(app, deps);
  // before authenticate: `Bearer null` is anonymous there, and token problems are GraphQL errors
  app.route('/graphql', graphqlRoutes(deps));
  app.use(
    authenticate(deps.auth, {
      publicReads: deps.config.PUBLIC_READS,
      anonymousPaths: isAlwaysPublic,
      anonymousWrites: isTaskCallback,
    }),
  );
  mountCoordinatorRoutes(app, deps);
  mountResourceRoutes(app, deps);
  describeMountedElsewhere(app);
  mountOpenApiAndDocs(app, deps);
  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0) {
      c.header('Allow', allowed.join(', '));
      return c.json({ detail: `Method "${c.req.method}" not allowed.` }, 405);
    }
    return c.json({ detail: 'Not found.' }, 404);
  });
  return app;
}

/** The task registry and callback rules shared by the routes, made here unless given. */
const withDefaults = (given: GatewayDeps) => ({
  ...given,
  knownTasks: given.knownTasks ?? new KnownTasks(),
  callbackRules:
    given.callbackRules ?? new CallbackRules(given.db, deriveTiming(given.config).lifecycle.hintIntervalMs),
});

type Deps = ReturnType<typeof withDefaults>;
type App = OpenAPIHono<AppEnv>;

/**
 * What runs before GraphQL and authentication: request ids, the access log, header limits, the
 * deadline, GraphQL's CORS, the dashboard and dev-token routes (they check tokens themselves),
 * then the body size limit and the JSON-only media type for the API.
 */
function useRequestMiddleware(app: App, deps: Deps) {
  app.use(requestId());
  app.use(accessLog(deps));
  app.use(requestHeadLimits());
  app.use(requestDeadline(REQUEST_DEADLINE_MS));
  // the release UI calls /graphql cross-origin with credentials: configured origins only
  app.use('/graphql', graphqlCors(deps.config.CORS_ORIGINS));
  // the dashboard checks tokens itself: its pages load without one (reads may be public)
  app.route('/ui', uiRoutes(deps));
  app.route('/dev', devTokenRoutes(deps)); // `rc token --dev`: development only, callers on this machine only
  app.use(
    bodyLimit({
      maxSize: deps.config.MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError(413, {
          detail: `Request body is larger than ${deps.config.MAX_BODY_BYTES} bytes.`,
        });
      },
    }),
  );
  app.use(jsonBodiesOnly);
}

/** A POST, PATCH or PUT with a body must send JSON (415 otherwise). */
const jsonBodiesOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
  const method = c.req.method;
  if (
    (method === 'POST' || method === 'PATCH' || method === 'PUT') &&
    c.req.header('content-length') !== '0'
  ) {
    const type = c.req.header('content-type') ?? '';
    const hasBody =
      c.req.header('content-length') !== undefined || c.req.header('transfer-encoding') !== undefined;
    if (hasBody && !/^application\/([\w.+-]+\+)?json\b/i.test(type)) {
      throw new ApiError(415, {
        detail: `Unsupported media type "${type || 'none'}"; send application/json.`,
      });
    }
  }
  await next();
};

/** /metrics, /.well-known/jwks.json, / and /status. */
function mountCoordinatorRoutes(app: App, deps: Deps) {
  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get('/metrics', async (c) => {
      const m = await metrics.render();
      return c.body(m.body, 200, { 'content-type': m.contentType });
    });
  }
  app.openapi(jwksRoute, (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(deps.auth.jwks as z.infer<typeof Jwks>, 200);
  });
  app.openapi(rootRoute, (c) =>
    c.json(
      Object.fromEntries(COLLECTIONS.map((name) => [name, `${deps.config.PUBLIC_URL}/${name}`])) as Record<
        (typeof COLLECTIONS)[number],
        string
      >,
      200,
    ),
  );
  app.openapi(statusRoute, async (c) => {
    const health = await deps.health();
    const unbound = health.database ? await unboundServices(deps.db).catch(() => []) : [];
    // /status answers anyone (load balancers): service names only to who may list the services
    const mayReadServices = deps.config.PUBLIC_READS || c.get('principal') !== null;
    const report = statusReport(health, unboundServicesWarning(unbound, { names: mayReadServices }));
    return c.json(report.body, report.status);
  });
}

/** One module per resource. */
function mountResourceRoutes(app: App, deps: Deps) {
  app.route('/releases', releaseRoutes(deps));
  app.route('/tasks', taskRoutes(deps));
  app.route('/task-services', taskServiceRoutes(deps));
  app.route('/events', eventStreamRoutes(deps));
  app.route('/events', eventRoutes(deps));
  app.route('/studies', studySyncRoutes(deps));
  app.route('/studies', studyRoutes(deps));
  app.route('/release-notes', releaseNoteRoutes(deps));
}

/** The bearer scheme, /openapi.json (rebuilt when PUBLIC_URL changes) and the /docs page. */
function mountOpenApiAndDocs(app: App, deps: Deps) {
  app.openAPIRegistry.registerComponent('securitySchemes', BEARER, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'A JWT from the identity provider (verified against AUTH_JWKS_URL), or in demo mode one printed by the coordinator.',
  });
  let doc: { base: string; json: unknown } | undefined;
  app.get('/openapi.json', (c) => {
    const base = deps.config.PUBLIC_URL;
    if (doc?.base !== base) doc = { base, json: openApiDocument(app, base) };
    c.header('Cache-Control', 'no-cache');
    return c.json(doc.json as object);
  });
  app.get('/docs', docsPage);
  app.get('/docs/:file', docsAsset);
}

/** The OpenAPI 3.1 document of every route, generated from the route definitions. */
export function openApiDocument(app: OpenAPIHono<AppEnv>, publicUrl: string) {
  return app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'Release Coordinator',
      version: VERSION.version,
      description:
        'Coordinates data releases across independent task services. Reads are public unless PUBLIC_READS=false; writes need a Bearer JWT with the role each operation names. Lists are paged with limit/offset and answer {count, next, previous, results}, newest first.',
    },
    servers: [{ url: publicUrl }],
    tags: [
      { name: 'coordinator', description: 'Service map, health and signing keys' },
      { name: 'releases' },
      { name: 'tasks' },
      { name: 'task-services' },
      { name: 'events' },
      { name: 'studies' },
      { name: 'release-notes' },
      { name: 'graphql', description: 'The schema of the original coordinator, for its web UI' },
    ],
  });
}

const Jwks = z
  .object({ keys: z.array(z.record(z.string(), z.unknown())) })
  .openapi('JWKS', { description: 'RFC 7517 key set' });
const jwksRoute = createRoute({
  method: 'get',
  path: '/.well-known/jwks.json',
  tags: ['coordinator'],
  summary: 'Public keys of the tokens the coordinator sends to task services',
  responses: { 200: jsonContent(Jwks, 'The key set') },
});
const rootRoute = createRoute({
  method: 'get',
  path: '/',
  tags: ['coordinator'],
  summary: 'Collection names with their absolute URLs',
  responses: {
    200: jsonContent(
      z.object(
        Object.fromEntries(COLLECTIONS.map((n) => [n, z.string()])) as Record<
          (typeof COLLECTIONS)[number],
          z.ZodString
        >,
      ),
      'The collections',
    ),
  },
});
const StatusSchema = z
  .object({
    name: z.string(),
    message: z.string(),
    version: z.string(),
    commit: z.string(),
    database: z.enum(['ok', 'unreachable']),
    bus: z.enum(['ok', 'unreachable']),
    warnings: z.array(z.string()).openapi({ description: 'things to fix that do not make it unhealthy' }),
  })
  .openapi('Status');
const statusRoute = createRoute({
  method: 'get',
  path: '/status',
  tags: ['coordinator'],
  summary: 'Health of the coordinator',
  responses: {
    200: jsonContent(StatusSchema, 'Postgres and NATS are reachable'),
    503: jsonContent(StatusSchema, 'Postgres or NATS is not reachable'),
  },
});

type PathDescription = Parameters<App['openAPIRegistry']['registerPath']>[0];

/** POST or GET /graphql: the same endpoint; only POST carries a body (and mutations). */
const graphqlPath = (method: 'post' | 'get'): PathDescription => ({
  method,
  path: '/graphql',
  tags: ['graphql'],
  summary:
    method === 'post'
      ? 'GraphQL (Relay schema of the original coordinator, for kf-ui-release-coordinator)'
      : 'GraphQL query in the URL (`?query=`); mutations need POST',
  description:
    'Same bearer token as REST (`Bearer null` is anonymous); auth, permission and input problems are GraphQL errors in a 200. Limits: depth 10, estimated cost 200000 (50000 without a token), pages of 100.',
  ...(method === 'post'
    ? {
        // mutations need a token; queries may run without one
        security: needsToken,
        request: {
          body: jsonBody(
            z.object({
              query: z.string(),
              variables: z.record(z.string(), z.unknown()).nullable().optional(),
              operationName: z.string().nullable().optional(),
            }),
          ),
        },
      }
    : {}),
  responses: {
    200: jsonContent(
      z.object({
        data: z.record(z.string(), z.unknown()).nullable().optional(),
        errors: z.array(z.object({ message: z.string() }).passthrough()).optional(),
      }),
      '`{data, errors}`',
    ),
  },
});

/**
 * Routes whose modules are plain Hono apps (no route definitions of their own yet): described
 * here so the document lists every route.
 */
const MOUNTED_ELSEWHERE: PathDescription[] = [
  {
    method: 'post',
    path: '/studies/sync',
    tags: ['studies'],
    summary: 'Pull every study from the data service, all pages (ADMIN or DEV)',
    security: needsToken,
    responses: {
      200: jsonContent(z.record(z.string(), z.unknown()), 'What the sync found and changed'),
      ...errorResponses(401, 403, 503),
      409: jsonContent(Detail, 'No data service is configured (DATASERVICE_URL unset)'),
      502: jsonContent(Detail, 'The data service failed or answered something unusable'),
    },
  },
  graphqlPath('post'),
  graphqlPath('get'),
  {
    method: 'get',
    path: '/events/stream',
    tags: ['events'],
    summary: 'Release and task transitions as Server-Sent Events',
    request: {
      query: z.object({
        release: z.string().optional().openapi({ description: 'only this release (kf_id)' }),
        since: z.string().optional().openapi({ format: 'date-time', description: 'replay from this time' }),
        from: z.enum(['new', 'all']).optional().openapi({ description: '`all` replays every event kept' }),
      }),
      headers: z.object({
        'last-event-id': z.string().optional().openapi({ description: 'resume after this event' }),
      }),
    },
    responses: {
      200: { description: 'An event stream', content: { 'text/event-stream': { schema: z.string() } } },
      ...errorResponses(400, 401, 503),
    },
  },
  {
    method: 'get',
    path: '/metrics',
    tags: ['operations'],
    summary: 'Prometheus metrics of this process',
    responses: {
      200: {
        description: 'Prometheus text exposition format',
        content: { 'text/plain': { schema: z.string() } },
      },
    },
  },
];

function describeMountedElsewhere(app: App) {
  for (const path of MOUNTED_ELSEWHERE) app.openAPIRegistry.registerPath(path);
}

async function unboundServices(db: GatewayDeps['db']): Promise<string[]> {
  const rows = await db
    .select({ name: taskServices.name })
    .from(taskServices)
    .where(
      and(eq(taskServices.enabled, true), eq(taskServices.deleted, false), isNull(taskServices.tokenSubject)),
    )
    .orderBy(taskServices.name);
  return rows.map((r) => r.name);
}

function allowedMethods(app: OpenAPIHono<AppEnv>, path: string): string[] {
  const normalized = path.replace(/\/+$/, '') || '/';
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const pattern = r.path.replace(/\/+$/, '') || '/';
    const regex = new RegExp(`^${pattern.replace(/:[^/]+/g, '[^/]+').replace(/\*/g, '.*')}$`);
    if (regex.test(normalized)) methods.add(r.method);
  }
  return [...methods];
}
