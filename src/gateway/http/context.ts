import type { Config } from '../../config';
import type { Auth } from '../../infra/auth';
import type { IntentClient } from '../../infra/bus/intent-client';
import type { Db } from '../../infra/db/client';
import type { Logger } from '../../infra/logger';
import type { Metrics } from '../../infra/ops/metrics';
import type { Lookup } from '../../infra/task-service/address-policy';
import type { NotificationFeed } from '../../notifications/feed';
import type { CallbackRules } from '../features/tasks/callback-rules';
import type { KnownTasks } from '../features/tasks/known-tasks';

/**
 * How the gateway hands intents to the coordinator: the NATS IntentClient in a running system; in
 * the in-process API tests a stand-in that applies them with the coordinator's own code.
 */
export type IntentSender = Pick<
  IntentClient,
  'replyTimeoutMs' | 'deliver' | 'send' | 'sendGathered' | 'post'
>;

/** What every route module needs; built once by createApp. */
export interface GatewayDeps {
  db: Db;
  intents: IntentSender;
  config: Config;
  log: Logger;
  /** reachability of Postgres and NATS for GET /status */
  health: () => Promise<{ database: boolean; bus: boolean }>;
  /** used to check a task service's /status on registration; tests may stub it */
  fetch?: typeof fetch;
  /** resolver for the task-service address policy */
  lookup?: Lookup;
  auth: Auth;
  /** the notification feed behind GET /events/stream */
  notifications?: NotificationFeed;
  /** tasks whose static facts this gateway knows (callbacks skip the database); createApp makes one */
  knownTasks?: KnownTasks;
  /** Prometheus metrics of this process (GET /metrics) */
  metrics?: Metrics;
  /** who may report on which task (token bindings); createApp makes one */
  callbackRules?: CallbackRules;
}
