import { jetstreamManager } from '@nats-io/jetstream';
import type { Config } from './config';
import type { Coordinator, CoordinatorHooks } from './coordinator/coordinator';
import type { createApp } from './gateway/app';
import { type Auth, createAuth } from './infra/auth';
import { type BusConnection, connectBus } from './infra/bus/connection';
import { HaltedReleases } from './infra/bus/halted';
import { SentMarks } from './infra/bus/sent-marks';
import { ensureStreams } from './infra/bus/streams';
import { type BusNames, busNames } from './infra/bus/subjects';
import { type Database, openDatabase } from './infra/db/client';
import type { Logger } from './infra/logger';
import { Metrics } from './infra/ops/metrics';
import type { RunningServer } from './infra/serve';
import { startCoordinatorRole } from './roles/coordinator';
import { finalConfig, type Listener, listen, startGatewayRole, startOpsRole } from './roles/gateway';
import type { RoleSeams, Shared, StartedRole } from './roles/shared';
import { startWorkerRole } from './roles/worker';
import { deriveTiming } from './timing';
import type { Worker } from './worker/worker';

export interface System {
  /** the configuration every role runs with (PUBLIC_URL final); never changes */
  config: Readonly<Config>;
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

export interface SystemOptions extends RoleSeams {
  /** skip migrations (when another process owns them) */
  migrate?: boolean;
  /** coordinator/worker-only processes serve /status and /metrics on PORT (default true) */
  opsServer?: boolean;
  /** looks in on the coordinator's batches (the test harness arms fault points here) */
  coordinatorHooks?: CoordinatorHooks;
}

/**
 * Starts the roles the configuration asks for (ROLE: `all`, or a list of gateway, coordinator,
 * worker) in one process, on one database pool and one NATS connection. Each role has its own
 * factory in src/roles/.
 */
export async function startSystem(given: Config, log: Logger, opts: SystemOptions = {}): Promise<System> {
  const roles = new Set(given.ROLE.split(','));
  const has = (r: string) => roles.has('all') || roles.has(r);
  const serves = has('gateway') || opts.opsServer !== false;
  const listener = serves ? await listen(given) : undefined;
  const config = finalConfig(given, listener);
  const shared = await openShared(config, log, {
    migrate: opts.migrate !== false && (has('coordinator') || has('gateway')),
  }).catch(async (err) => {
    await listener?.server.stop(0).catch(() => {});
    throw err;
  });
  const started: StartedRole[] = [];
  const system: System = {
    config,
    metrics: shared.metrics,
    auth: shared.auth,
    database: shared.database,
    bus: shared.bus,
    server: listener?.server,
    async stop() {
      // the server first (no new requests), then the workers (calls in flight finish), then the coordinator
      for (const role of [...started].reverse()) await role.stop(config.SHUTDOWN_GRACE_MS);
      await shared.bus.close();
      await shared.database.close();
    },
  };
  try {
    if (has('coordinator')) {
      const role = await startCoordinatorRole(shared, {
        ownConnections: has('gateway') || has('worker'),
        hooks: opts.coordinatorHooks,
      });
      started.push(role);
      system.coordinator = role.coordinator;
    }
    if (has('worker')) {
      const role = await startWorkerRole(shared, opts);
      started.push(role);
      system.worker = role.worker;
    }
    if (has('gateway')) {
      const role = startGatewayRole(shared, listener as Listener, opts);
      started.push(role);
      system.app = role.app;
    } else if (listener) {
      started.push(startOpsRole(shared, listener));
    }
  } catch (err) {
    // a role that did not start: stop the others, and free the port even if no role took it
    await system.stop().catch(() => {});
    await listener?.server.stop(0).catch(() => {});
    throw err;
  }
  return system;
}

/** Opens what the roles share: database (migrated), auth, the NATS connection with its streams, metrics. */
async function openShared(
  config: Readonly<Config>,
  log: Logger,
  opts: { migrate: boolean },
): Promise<Shared> {
  const timing = deriveTiming(config);
  const database = await openDatabase({ url: config.DATABASE_URL, dataDir: config.DATA_DIR, log });
  if (opts.migrate) await database.migrate();
  const auth = await createAuth(config, database.db, log);
  const bus = await connectBus({
    url: config.NATS_URL,
    dataDir: config.DATA_DIR,
    log,
    name: `release-coordinator-${config.ROLE}`,
  });
  const names = busNames(config.NATS_PREFIX);
  const ensureBus = busProvisioner(bus, names, config);
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
  return { config, timing, log, database, auth, bus, names, metrics, ensureBus, health };
}

/** Creates (or re-creates, e.g. after the NATS server lost its store) every stream, consumer and bucket. */
function busProvisioner(bus: BusConnection, names: BusNames, config: Readonly<Config>) {
  const streamOptions = {
    ackWaitMs: config.COORDINATOR_ACK_WAIT_MS,
    commandAckWaitMs: config.COMMAND_ACK_WAIT_MS,
    maxDeliver: 20,
    eventsMaxAgeMs: 30 * 24 * 3600_000,
    replicas: config.NATS_REPLICAS,
  };
  // with NATS_REPLICAS copies each
  return async () => {
    await ensureStreams(bus.nc, names, streamOptions);
    await HaltedReleases.open(bus.nc, names, { replicas: config.NATS_REPLICAS });
    await SentMarks.open(bus.nc, names, { replicas: config.NATS_REPLICAS });
  };
}
