import type { Config } from '../config';
import type { Auth } from '../infra/auth';
import type { BusConnection } from '../infra/bus/connection';
import type { BusNames } from '../infra/bus/subjects';
import type { Database } from '../infra/db/client';
import type { Logger } from '../infra/logger';
import type { Metrics } from '../infra/ops/metrics';
import type { Lookup } from '../infra/task-service/address-policy';
import type { Timing } from '../timing';

/** What every role of a process shares: one configuration, one database pool, one NATS connection. */
export interface Shared {
  /** final and frozen: PUBLIC_URL included, so no role ever sees it change */
  config: Readonly<Config>;
  timing: Timing;
  log: Logger;
  database: Database;
  auth: Auth;
  bus: BusConnection;
  names: BusNames;
  metrics: Metrics;
  /** creates (or re-creates, e.g. after the NATS server lost its store) every stream, consumer and bucket */
  ensureBus: () => Promise<void>;
  /** Postgres and NATS reachability, for /status */
  health: () => Promise<{ database: boolean; bus: boolean }>;
}

/** A started role: what it exposes, and how it stops. */
export interface StartedRole {
  stop(graceMs: number): Promise<void>;
}

/** Test seams of a process (tests record or stub calls, resolve names, arm fault points). */
export interface RoleSeams {
  /** task-service calls go through this */
  fetch?: typeof fetch;
  /** resolver for the task-service address policy */
  lookup?: Lookup;
}
