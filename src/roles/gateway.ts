import type { Config } from '../config';
import { createApp } from '../gateway/app';
import { IntentClient } from '../infra/bus/intent-client';
import { opsApp } from '../infra/ops/ops-app';
import { type FetchApp, type RunningServer, serve } from '../infra/serve';
import { NotificationFeed } from '../notifications/feed';
import type { RoleSeams, Shared, StartedRole } from './shared';

type Handler = (request: Request, ...rest: unknown[]) => Response | Promise<Response>;

/** A bound port whose handler is set once the process's roles are up. */
export interface Listener {
  server: RunningServer;
  attach(app: FetchApp): void;
}

/**
 * Binds the HTTP port before any role starts, so with PORT=0 the port (and PUBLIC_URL, which
 * follows it unless given) is known up front and the configuration never changes after start.
 * Until a handler is attached every request is answered 503 "starting".
 */
export async function listen(config: Pick<Config, 'PORT' | 'HOST'>): Promise<Listener> {
  let current: Handler = () =>
    Response.json({ detail: 'Starting; retry shortly.' }, { status: 503, headers: { 'retry-after': '1' } });
  // every argument passes through: Bun hands the server to the app, which reads the peer's address from it
  const fetch = ((request: Request, ...rest: unknown[]) => current(request, ...rest)) as FetchApp['fetch'];
  const server = await serve({ fetch }, { port: config.PORT, hostname: config.HOST });
  return {
    server,
    attach(app) {
      current = app.fetch as Handler;
    },
  };
}

/** The configuration as every role sees it: PUBLIC_URL follows the bound port unless it was given. */
export function finalConfig(config: Config, listener: Listener | undefined): Readonly<Config> {
  const follows = listener && config.PORT === 0 && !config.publicUrlGiven;
  return Object.freeze(follows ? { ...config, PUBLIC_URL: listener.server.url } : { ...config });
}

export interface GatewayRole extends StartedRole {
  app: ReturnType<typeof createApp>;
}

/** The gateway role: the REST API, GraphQL and the dashboard on the bound port. */
export function startGatewayRole(shared: Shared, listener: Listener, seams: RoleSeams = {}): GatewayRole {
  const { config, log } = shared;
  const intents = new IntentClient(shared.bus.nc, shared.names, shared.timing.replyTimeoutMs);
  const notifications = new NotificationFeed(shared.bus.nc, shared.names);
  const app = createApp({
    db: shared.database.db,
    intents,
    config,
    log: log.child({ role: 'gateway' }),
    fetch: seams.fetch,
    lookup: seams.lookup,
    auth: shared.auth,
    notifications,
    metrics: shared.metrics,
    health: shared.health,
  });
  listener.attach(app);
  log.info({ url: listener.server.url, public: config.PUBLIC_URL }, 'gateway listening');
  return {
    app,
    async stop(graceMs) {
      notifications.close(); // event streams never finish by themselves: end them so the server stops at once
      await listener.server.stop(Math.min(graceMs, 5_000));
      intents.close();
    },
  };
}

/** Coordinator- or worker-only processes serve /status and /metrics (health checks, scraping). */
export function startOpsRole(shared: Shared, listener: Listener): StartedRole {
  listener.attach(opsApp({ metrics: shared.metrics, health: shared.health }));
  shared.log.info({ url: listener.server.url }, 'status and metrics listening');
  return { stop: (graceMs) => listener.server.stop(Math.min(graceMs, 5_000)) };
}
