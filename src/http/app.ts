import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { eventRoutes } from '../events/routes';
import { eventStreamRoutes } from '../events/stream-routes';
import { releaseNoteRoutes } from '../release-notes/routes';
import { releaseRoutes } from '../releases/routes';
import { studyRoutes } from '../studies/routes';
import { studySyncRoutes } from '../studies/sync-routes';
import { taskServiceRoutes } from '../task-services/routes';
import { taskRoutes } from '../tasks/routes';
import { VERSION } from '../version';
import { type AppEnv, authenticate } from './auth';
import type { GatewayDeps } from './context';
import { ApiError, errorHandler } from './errors';

/** reachable without a token even when PUBLIC_READS=false */
const ALWAYS_PUBLIC = new Set(['/', '/status', '/.well-known/jwks.json', '/openapi.json', '/docs']);

const COLLECTIONS = ['releases', 'tasks', 'task-services', 'events', 'release-notes', 'studies'] as const;

/** The public REST API. Reads from Postgres; every state change goes to the coordinator over NATS. */
export function createApp(deps: GatewayDeps) {
  const app = new Hono<AppEnv>({ strict: false });
  app.onError(errorHandler(deps.log));
  app.use(requestId());
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
  app.use(async (c, next) => {
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
  });

  app.use(
    authenticate(deps.auth, {
      publicReads: deps.config.PUBLIC_READS,
      anonymousPaths: (path) => ALWAYS_PUBLIC.has(path),
    }),
  );
  app.get('/.well-known/jwks.json', (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(deps.auth.jwks);
  });
  app.get('/', (c) =>
    c.json(Object.fromEntries(COLLECTIONS.map((name) => [name, `${deps.config.PUBLIC_URL}/${name}`]))),
  );
  app.get('/status', async (c) => {
    const health = await deps.health();
    const ok = health.database && health.bus;
    return c.json(
      {
        name: 'Release Coordinator',
        message: ok
          ? 'ready'
          : `unavailable: ${!health.database ? 'database ' : ''}${!health.bus ? 'bus' : ''}`.trim(),
        version: VERSION.version,
        commit: VERSION.commit,
        database: health.database ? 'ok' : 'unreachable',
        bus: health.bus ? 'ok' : 'unreachable',
      },
      ok ? 200 : 503,
    );
  });
  app.route('/releases', releaseRoutes(deps));
  app.route('/tasks', taskRoutes(deps));
  app.route('/task-services', taskServiceRoutes(deps));
  app.route('/events', eventStreamRoutes(deps));
  app.route('/events', eventRoutes(deps));
  app.route('/studies', studySyncRoutes(deps));
  app.route('/studies', studyRoutes(deps));
  app.route('/release-notes', releaseNoteRoutes(deps));

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

function allowedMethods(app: Hono<AppEnv>, path: string): string[] {
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
