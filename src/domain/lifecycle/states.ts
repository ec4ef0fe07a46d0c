export const RELEASE_STATES = [
  'waiting',
  'initializing',
  'running',
  'staged',
  'publishing',
  'published',
  'canceling',
  'canceled',
  'failed',
] as const;
export type ReleaseState = (typeof RELEASE_STATES)[number];

export const TASK_STATES = [
  'waiting',
  'initialized',
  'running',
  'staged',
  'publishing',
  'published',
  'rejected',
  'failed',
  'canceled',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const ACTIONS = ['initialize', 'start', 'get_status', 'publish', 'cancel'] as const;
export type Action = (typeof ACTIONS)[number];

export const FINAL_RELEASE_STATES = ['published', 'canceled', 'failed'] as const satisfies ReleaseState[];
export const FINAL_TASK_STATES = [
  'published',
  'rejected',
  'failed',
  'canceled',
] as const satisfies TaskState[];
/** releases whose tasks are at work at their services (a task making no progress there times out) */
export const WORKING_RELEASE_STATES = [
  'initializing',
  'running',
  'publishing',
] as const satisfies ReleaseState[];
/** tasks expected to make progress: not yet staged, or publishing */
export const PROGRESSING_TASK_STATES = [
  'waiting',
  'initialized',
  'running',
  'publishing',
] as const satisfies TaskState[];
/** releases a deadline still applies to: not final, and not already canceling */
export const DEADLINE_RELEASE_STATES = RELEASE_STATES.filter(
  (s) => !(FINAL_RELEASE_STATES as readonly string[]).includes(s) && s !== 'canceling',
);
/** releases not final */
export const OPEN_RELEASE_STATES = RELEASE_STATES.filter(
  (s) => !(FINAL_RELEASE_STATES as readonly string[]).includes(s),
);
/** tasks not final */
export const OPEN_TASK_STATES = TASK_STATES.filter(
  (s) => !(FINAL_TASK_STATES as readonly string[]).includes(s),
);

const FINAL_RELEASE: ReadonlySet<ReleaseState> = new Set(FINAL_RELEASE_STATES);
const FINAL_TASK: ReadonlySet<TaskState> = new Set(FINAL_TASK_STATES);

export const isFinalRelease = (s: ReleaseState) => FINAL_RELEASE.has(s);
export const isFinalTask = (s: TaskState) => FINAL_TASK.has(s);
export const isReleaseState = (s: string): s is ReleaseState =>
  (RELEASE_STATES as readonly string[]).includes(s);
export const isTaskState = (s: string): s is TaskState => (TASK_STATES as readonly string[]).includes(s);

/** Order of the forward path; a report can only move a task forward along it. */
export const TASK_RANK: Record<TaskState, number> = {
  waiting: 0,
  initialized: 1,
  running: 2,
  staged: 3,
  publishing: 4,
  published: 5,
  rejected: 9,
  failed: 9,
  canceled: 9,
};

const SERVICE_STATE_ALIASES: Record<string, TaskState> = {
  pending: 'initialized',
  initialized: 'initialized',
  running: 'running',
  staged: 'staged',
  publishing: 'publishing',
  published: 'published',
  canceled: 'canceled',
  cancelled: 'canceled',
  canceling: 'canceled',
  cancelling: 'canceled',
  failed: 'failed',
};

/** Maps a state name as a task service spells it to ours; undefined when it is not one we know. */
export function mapServiceState(raw: unknown): TaskState | undefined {
  if (typeof raw !== 'string') return undefined;
  const key = raw.trim().toLowerCase();
  return Object.hasOwn(SERVICE_STATE_ALIASES, key) ? SERVICE_STATE_ALIASES[key] : undefined;
}

/**
 * Progress as services send it: 50, 50.5, "50%", "50", null or missing.
 * Returns a percentage clamped to 0..100, null for an explicit null, undefined when absent or unreadable.
 * A value too small for Postgres `real` (1e-320 underflows there, and the statement would fail) is 0.
 */
export function parseProgress(raw: unknown): number | null | undefined {
  if (raw === null) return null;
  let n: number | undefined;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'string') {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*%?\s*$/.exec(raw);
    if (m) n = Number(m[1]);
  }
  if (n === undefined || !Number.isFinite(n)) return undefined;
  if (Math.fround(n) === 0) return 0;
  return Math.min(100, Math.max(0, n));
}
