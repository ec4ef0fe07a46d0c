/** Every NATS subject, stream and consumer name in one place, all under one configurable prefix. */
export function busNames(prefix: string) {
  const P = prefix.toUpperCase();
  return {
    prefix,
    streams: {
      intents: `${P}_INTENTS`,
      commands: `${P}_COMMANDS`,
      results: `${P}_RESULTS`,
      events: `${P}_EVENTS`,
    },
    /** KV bucket of releases that entered canceling */
    haltedBucket: `${P}_HALTED`,
    /** KV bucket of start/publish commands whose request a worker may have sent */
    sentBucket: `${P}_SENT`,
    consumers: {
      coordinatorIntents: `${prefix}_coordinator_intents`,
      coordinatorResults: `${prefix}_coordinator_results`,
      workers: `${prefix}_workers`,
    },
    intent: (type: string) => `${prefix}.intent.${type}`,
    intents: `${prefix}.intent.>`,
    /** task-service callbacks gathered by a gateway in one tick, one message */
    intentBatch: `${prefix}.intent.batch`,
    /**
     * One message per chunk of a fan-out: every task command of one action for one release (up to
     * COMMAND_CHUNK of them). Named by release and action, so the scheduler can tell whether a
     * command of that fan-out is still queued (a hint that only delays; Postgres decides).
     */
    commandChunk: (action: string, releaseId: string) => `${prefix}.cmd.${action}.${releaseId}`,
    /** a round of polls, one chunk per message */
    pollChunk: `${prefix}.cmd.get_status.polls`,
    healthCheck: (serviceId: string) => `${prefix}.cmd.status.${serviceId}`,
    commands: `${prefix}.cmd.>`,
    /** a single task result (workers of earlier versions; tests) */
    taskResult: (taskId: string) => `${prefix}.result.task.${taskId}`,
    /** many task results in one message: what a worker finished in one tick */
    resultBatch: `${prefix}.result.batch`,
    healthResult: (serviceId: string) => `${prefix}.result.health.${serviceId}`,
    results: `${prefix}.result.>`,
    releaseEvent: (releaseId: string, state: string) => `${prefix}.evt.release.${releaseId}.${state}`,
    taskEvent: (releaseId: string, taskId: string, state: string) =>
      `${prefix}.evt.task.${releaseId}.${taskId}.${state}`,
    /** every release and task event of one release */
    eventsOfRelease: (releaseId: string) => `${prefix}.evt.*.${releaseId}.>`,
    events: `${prefix}.evt.>`,
    /** core NATS (not persisted): abort in-flight calls of a release */
    abort: (releaseId: string) => `${prefix}.abort.${releaseId}`,
    aborts: `${prefix}.abort.*`,
  };
}
export type BusNames = ReturnType<typeof busNames>;
