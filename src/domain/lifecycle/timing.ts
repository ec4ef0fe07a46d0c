import type { Action } from './states';

/**
 * The clock rules of the lifecycle (docs/lifecycle.md, "Always" and "Entering canceling"): how
 * long each call may take, how polls are spaced, how long a service may stay unreachable. Pure:
 * the coordinator builds one LifecycleTiming from its configuration and passes it to `decide`.
 */

/** Deadline of one call to a task service, per kind of call (a service may override them). */
export interface ActionDeadlines {
  /** initialize, get_status, cancel and GET /status */
  request: number;
  start: number;
  publish: number;
}

export interface LifecycleTiming {
  /** first poll after a start/publish answer (the adaptive cadence starts here and doubles) */
  firstPollMs: number;
  /** the cadence never gets slower than this */
  pollIntervalMs: number;
  /**
   * a service may leave polls unanswered this long (the health rule's window) before its task
   * fails; a cancel is retried for as long
   */
  outageToleranceMs: number;
  /** at most one extra poll per task this often for credential-less callbacks */
  hintIntervalMs: number;
}

/** The deadline of one call of this action to a service with these deadlines. */
export function callDeadline(action: Action, deadlines: ActionDeadlines): number {
  if (action === 'start') return deadlines.start;
  if (action === 'publish') return deadlines.publish;
  return deadlines.request;
}

/**
 * How long the answer to this action may take in all. A cancel is retried with backoff while the
 * outage tolerance lasts (a service being redeployed must still get it), and its last attempt may
 * begin just before that window closes.
 */
export function answerBudget(action: Action, deadlines: ActionDeadlines, timing: LifecycleTiming): number {
  const one = callDeadline(action, deadlines);
  return action === 'cancel' ? timing.outageToleranceMs + 2 * one : one;
}

/** Pauses between cancel attempts: from an eighth of the window (at most 1 s), doubling, never past half of it. */
export function cancelRetryPause(attempt: number, windowMs: number): number {
  const base = Math.min(1_000, Math.max(10, Math.floor(windowMs / 8)));
  return Math.min(base * 2 ** attempt, Math.max(base, Math.floor(windowMs / 2)), 30_000);
}

/**
 * How long a release may stay in canceling while cancels whose answers were lost are sent again:
 * three full cancel budgets. Past it, a cancel without an answer is given up (with an error event),
 * so a release never stays in canceling.
 */
export function cancelPhaseLimit(deadlines: ActionDeadlines, timing: LifecycleTiming): number {
  return 3 * answerBudget('cancel', deadlines, timing);
}

/** The next interval of the adaptive cadence: double the last one, from firstPollMs up to pollIntervalMs. */
export function nextPollDelay(previous: number | null, timing: LifecycleTiming): number {
  if (previous === null) return firstPollDelay(timing);
  return Math.min(Math.max(previous, timing.firstPollMs) * 2, timing.pollIntervalMs);
}

/** The first interval of the cadence (also the floor of every later one). */
export function firstPollDelay(timing: LifecycleTiming): number {
  return Math.min(timing.firstPollMs, timing.pollIntervalMs);
}
