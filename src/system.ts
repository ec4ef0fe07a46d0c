import { jetstreamManager } from '@nats-io/jetstream';
import type { Config } from './config';
import { Coordinator } from './coordinator/coordinator';
import { createApp } from './gateway/app';
import { type Auth, createAuth } from './infra/auth';
import { type BusConnection, connectBus } from './infra/bus/connection';
import { HaltedReleases } from './infra/bus/halted';
import { IntentClient } from './infra/bus/intent-client';
import { SentMarks } from './infra/bus/sent-marks';
import { ensureStreams } from './infra/bus/streams';
import { busNames } from './infra/bus/subjects';
import { scheduleStudySync } from './infra/dataservice/schedule';
import { type Database, openDatabase } from './infra/db/client';
import type { Logger } from './infra/logger';
import { Metrics } from './infra/ops/metrics';
import { opsApp } from './infra/ops/ops-app';
import { type RunningServer, serve } from './infra/serve';
import type { Lookup } from './infra/task-service/address-policy';
import { EventFeed } from './notifications/feed';
import { deriveTiming } from './timing';
import { Worker } from './worker/worker';

export interface System {
  config: Config;
  metrics: Metrics;
  auth: Auth;
  database: Database;
  bus: BusConnection;
  server?: RunningServer;
  app?: ReturnType<typeof createApp>;
  coordinator?: Coordinator;
  worker?: Worker;
  stop(): Promise<void>;
}

export interface SystemOptions {
  /** task-service calls go through this (tests record or stub calls) */
  fetch?: typeof fetch;
  /** skip migrations (when another process owns them) */
  migrate?: boolean;
  /** resolver for the task-service address policy (tests stub it) */
  lookup?: Lookup;
  /** coordinator/worker-only processes serve /status and /metrics on PORT (default true) */
  opsServer?: boolean;
}

/** Starts the roles the configuration asks for, in one process. */
export async function startSystem(config: Config, log: Logger, opts: SystemOptions = {}): Promise<System> {
  const role = config.ROLE;
  const timing = deriveTiming(config);
  const roles = new Set(role.split(','));
  const has = (r: string) => roles.has('all') || roles.has(r);
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, log });
  if (opts.migrate !== false && (has('coordinator') || has('gateway'))) await database.migrate();
  const auth = await createAuth(config, database.db, log);
  const bus = await connectBus({
    url: config.NATS_URL,
    dataDir: config.DATA_DIR,
    log,
    name: `release-coordinator-${role}`,
  });
  const names = busNames(config.NATS_PREFIX);
  const streamOptions = {
    ackWaitMs: config.COORDINATOR_ACK_WAIT_MS,
    commandAckWaitMs: config.COMMAND_ACK_WAIT_MS,
    maxDeliver: 20,
    eventsMaxAgeMs: 30 * 24 * 3600_000,
    replicas: config.NATS_REPLICAS,
  };
  /**
   * creates (or re-creates, e.g. after the NATS server lost its store) every stream, consumer and
   * bucket, with NATS_REPLICAS copies each
   */
  const ensureBus = async () => {
    await ensureStreams(bus.nc, names, streamOptions);
    await HaltedReleases.open(bus.nc, names, { replicas: config.NATS_REPLICAS });
    await SentMarks.open(bus.nc, names, { replicas: config.NATS_REPLICAS });
  };
  await ensureBus();
  const metrics = new Metrics();
  metrics.observeSharedState(database.db, bus.nc, names);
  // a stream without a leader (a cluster electing one after a node was lost) says so within 2 s:
  // /status answers 503 well inside a health checker's deadline instead of at its edge
  const jsm = await jetstreamManager(bus.nc, { timeout: 2_000 });
  const health = async () => {
    const [db, nats] = await Promise.all([
      database.ping(),
      bus.nc.isClosed()
        ? false
        : jsm.streams
            .info(names.streams.intents)
            .then(() => true)
            .catch(() => false),
    ]);
    return { database: db, bus: nats };
  };
  const system: System = {
    config,
    metrics,
    auth,
    database,
    bus,
    async stop() {
      const grace = config.SHUTDOWN_GRACE_MS;
      events?.close(); // event streams never finish by themselves: end them so the server stops at once
      await system.server?.stop(Math.min(grace, 5_000));
      await system.worker?.stop(grace);
      studySync?.stop();
      await system.coordinator?.stop();
      if (coordinatorDatabase && coordinatorDatabase !== database) await coordinatorDatabase.close();
      intents?.close();
      await bus.close();
      await database.close();
    },
  };
  let intents: IntentClient | undefined;
  let events: EventFeed | undefined;
  let studySync: { stop(): void } | undefined;
  let coordinatorDatabase: Database | undefined;
  if (has('coordinator')) {
    // Its own connections, so gateway traffic in the same process never makes a batch wait for one.
    const own = database.kind === 'postgres' && (has('gateway') || has('worker'));
    coordinatorDatabase = own
      ? await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 4 })
      : database;
    system.coordinator = new Coordinator(
      coordinatorDatabase.db,
      bus.nc,
      names,
      config,
      log.child({ role: 'coordinator' }),
      metrics,
      ensureBus,
    );
    await system.coordinator.start();
    if (config.DATASERVICE_URL && config.STUDY_SYNC_INTERVAL_MS > 0) {
      studySync = scheduleStudySync(database, {
        url: config.DATASERVICE_URL,
        everyMs: config.STUDY_SYNC_INTERVAL_MS,
        log: log.child({ role: 'coordinator' }),
      });
    }
  }
  if (has('worker')) {
    system.worker = new Worker(
      bus.nc,
      names,
      {
        concurrency: config.WORKER_CONCURRENCY,
        requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
        cancelRetryWindowMs: timing.lifecycle.outageToleranceMs,
        heartbeatMs: timing.workerHeartbeatMs,
        fetch: opts.fetch,
        allowPrivate: config.ALLOW_PRIVATE_SERVICE_URLS,
        lookup: opts.lookup,
        authorization: (url, audience) => auth.outbound.authorization(url, audience),
        replicas: config.NATS_REPLICAS,
      },
      log.child({ role: 'worker' }),
      metrics,
      ensureBus,
    );
    await system.worker.start();
  }
  if (has('gateway')) {
    intents = new IntentClient(bus.nc, names, timing.replyTimeoutMs);
    events = new EventFeed(bus.nc, names);
    system.app = createApp({
      db: database.db,
      intents,
      config,
      log: log.child({ role: 'gateway' }),
      fetch: opts.fetch,
      lookup: opts.lookup,
      auth,
      events,
      metrics,
      health,
    });
    system.server = await serve(system.app, { port: config.PORT, hostname: config.HOST });
    if (config.PORT === 0 && !config.publicUrlGiven) config.PUBLIC_URL = system.server.url;
    log.info({ url: system.server.url, public: config.PUBLIC_URL }, 'gateway listening');
  } else if (opts.opsServer !== false) {
    // coordinator/worker processes serve only /status and /metrics (health checks, scraping)
    system.server = await serve(opsApp({ metrics, health }), { port: config.PORT, hostname: config.HOST });
    log.info({ url: system.server.url }, 'status and metrics listening');
  }
  return system;
}
