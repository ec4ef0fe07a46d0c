import type { Config } from './config';
import type { ActionDeadlines, LifecycleTiming } from './domain/lifecycle/timing';

/**
 * Every deadline that depends on another, derived in one place from the operator's settings
 * (docs/configuration.md). Tests pin the invariants (src/timing.test.ts): a worker's heartbeat
 * comes well within the ack wait, a poll lease outlasts the poll, the gateway gives up on a
 * callback's answer well before a task service gives up on its own start call, and so on.
 */
export interface Timing {
  lifecycle: LifecycleTiming;
  /** deadlines of calls to services that do not override them */
  deadlines: ActionDeadlines;
  /** a claimed poll is claimed again after this if its answer never comes */
  pollLeaseMs(requestMs: number): number;
  /** past its deadline, an awaited answer is looked for in NATS this much longer before it counts as lost */
  lostAnswerGraceMs: number;
  /** how often a worker tells NATS a long call is still under way */
  workerHeartbeatMs: number;
  /** how often the coordinator tells NATS the messages it holds are still being applied */
  coordinatorHeartbeatMs: number;
  /** life of one pull request of the coordinator's consumers */
  coordinatorPullExpiresMs: number;
  /** the gateway waits this long for the coordinator's answer to a write before answering 202 */
  replyTimeoutMs: number;
  /**
   * ... and this long for a task-service callback: a service that calls back before answering its
   * start must never be held until its own deadline (it would answer the start late)
   */
  callbackReplyTimeoutMs: number;
  /** deadline of the live GET /status check when a task service is registered */
  registrationCheckMs: number;
}

/** First poll after a start/publish answer: soon enough that a service done in a second is seen in a few. */
const FIRST_POLL_MS = 1_000;
const HINT_INTERVAL_MS = 1_000;

export function deriveTiming(config: Config): Timing {
  const request = config.REQUEST_TIMEOUT_MS;
  return {
    lifecycle: {
      firstPollMs: Math.min(FIRST_POLL_MS, config.POLL_INTERVAL_MS),
      pollIntervalMs: config.POLL_INTERVAL_MS,
      // the health rule's window: a service may be away this long before its tasks fail
      outageToleranceMs: config.HEALTH_FAILURE_THRESHOLD * config.HEALTH_INTERVAL_MS,
      hintIntervalMs: HINT_INTERVAL_MS,
    },
    deadlines: { request, start: config.START_TIMEOUT_MS, publish: config.PUBLISH_TIMEOUT_MS },
    pollLeaseMs: (requestMs) => requestMs + 2_000 + config.COMMAND_ACK_WAIT_MS,
    lostAnswerGraceMs: 2 * config.COMMAND_ACK_WAIT_MS + 10_000,
    workerHeartbeatMs: Math.max(100, Math.floor(config.COMMAND_ACK_WAIT_MS / 3)),
    coordinatorHeartbeatMs: Math.max(200, Math.floor(config.COORDINATOR_ACK_WAIT_MS / 3)),
    coordinatorPullExpiresMs: Math.min(5_000, config.COORDINATOR_ACK_WAIT_MS),
    replyTimeoutMs: config.GATEWAY_REPLY_TIMEOUT_MS,
    callbackReplyTimeoutMs: Math.min(1_000, config.GATEWAY_REPLY_TIMEOUT_MS),
    registrationCheckMs: Math.min(request, 10_000),
  };
}
