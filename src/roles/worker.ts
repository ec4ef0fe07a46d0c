import { Worker } from '../worker/worker';
import type { RoleSeams, Shared, StartedRole } from './shared';

export interface WorkerRole extends StartedRole {
  worker: Worker;
}

/** The worker role: calls task services for the commands it takes, with the coordinator's tokens. */
export async function startWorkerRole(shared: Shared, seams: RoleSeams = {}): Promise<WorkerRole> {
  const { config, timing } = shared;
  const worker = new Worker(
    shared.bus.nc,
    shared.names,
    {
      concurrency: config.WORKER_CONCURRENCY,
      requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
      cancelRetryWindowMs: timing.lifecycle.outageToleranceMs,
      tokenWaitMs: config.OAUTH_OUTAGE_TOLERANCE_MS,
      replicas: config.NATS_REPLICAS,
      heartbeatMs: timing.workerHeartbeatMs,
      fetch: seams.fetch,
      allowPrivate: config.ALLOW_PRIVATE_SERVICE_URLS,
      lookup: seams.lookup,
      authorization: (url, audience) => shared.auth.outbound.authorization(url, audience),
    },
    shared.log.child({ role: 'worker' }),
    shared.metrics,
    shared.ensureBus,
  );
  await worker.start();
  return { worker, stop: (graceMs) => worker.stop(graceMs) };
}
