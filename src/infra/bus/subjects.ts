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
    /** one subject per task and action, so the scheduler can tell whether a command is still queued */
    command: (action: string, serviceId: string, taskId: string) =>
      `${prefix}.cmd.${action}.${serviceId}.${taskId}`,
    healthCheck: (serviceId: string) => `${prefix}.cmd.status.${serviceId}`,
    commands: `${prefix}.cmd.>`,
    taskResult: (taskId: string) => `${prefix}.result.task.${taskId}`,
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
