import type { Behaviour, TaskState } from './behaviour.ts';

/**
 * One task at a service. Work in progress is computed from the clock when read
 * (`advance`), so a task needs no timer of its own.
 */
export interface Task {
  kf_id: string;
  release_id: string;
  studies?: string[];
  date_submitted: string;
  /** Canonical state as of the last `advance`. */
  state: TaskState;
  /** running/publishing: when the phase began and how long it takes. */
  phaseStart: number;
  phaseMs: number;
  /** When the task turns failed (null = never). */
  failAt: number | null;
  /** Progress frozen by a final state (failed/canceled) or a finished phase. */
  progress: number;
  /** How many start requests this task received (a second start is a coordinator bug). */
  starts: number;
  /** Last state reported by a callback, so each state is called back once. */
  notified?: TaskState;
}

const FINAL: ReadonlySet<TaskState> = new Set(['published', 'canceled', 'failed']);

export function isFinal(state: TaskState): boolean {
  return FINAL.has(state);
}

function phaseProgress(t: Task, at: number): number {
  if (t.phaseMs <= 0) return 100;
  const p = ((at - t.phaseStart) / t.phaseMs) * 100;
  return Math.max(0, Math.min(p, 100));
}

/** Brings the stored state up to `now`. */
export function advance(t: Task, now: number): void {
  if (t.state === 'running' || t.state === 'publishing') {
    const doneAt = t.phaseStart + t.phaseMs;
    if (t.failAt !== null && t.failAt < doneAt && now >= t.failAt) {
      t.progress = phaseProgress(t, t.failAt);
      t.state = 'failed';
      t.failAt = null;
      return;
    }
    if (now >= doneAt) {
      t.state = t.state === 'running' ? 'staged' : 'published';
      t.progress = 100;
      if (t.state === 'published') t.failAt = null;
    }
  }
  if (t.failAt !== null && now >= t.failAt && !isFinal(t.state)) {
    t.state = 'failed';
    t.failAt = null;
  }
}

/** Current progress as a float percentage. */
export function progressOf(t: Task, now: number): number {
  if (t.state === 'running' || t.state === 'publishing') return Math.min(phaseProgress(t, now), 99.99);
  return t.progress;
}

/** When the current phase ends or the task fails, whichever comes first (null if nothing is pending). */
export function nextChangeAt(t: Task): number | null {
  let at: number | null = null;
  if (t.state === 'running' || t.state === 'publishing') at = t.phaseStart + t.phaseMs;
  if (t.failAt !== null && (at === null || t.failAt < at)) at = t.failAt;
  return at;
}

/** State name as this service writes it. */
export function renderState(state: TaskState, b: Behaviour): string {
  const name = b.stateAliases[state] ?? state;
  return b.upperCaseStates ? name.toUpperCase() : name;
}

/** Writes progress into a reply body in the configured form. */
export function putProgress(body: Record<string, unknown>, progress: number, b: Behaviour): void {
  switch (b.progressForm) {
    case 'int':
      body.progress = Math.floor(progress);
      break;
    case 'float':
      body.progress = Math.round(progress * 100) / 100;
      break;
    case 'string':
      body.progress = `${Math.floor(progress)}%`;
      break;
    case 'null':
      body.progress = null;
      break;
    case 'missing':
      break;
  }
}

/** The POST /tasks reply body. */
export function taskBody(service: string, t: Task, now: number, b: Behaviour): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: service,
    kf_id: t.kf_id,
    release_id: t.release_id,
    state: renderState(t.state, b),
  };
  putProgress(body, progressOf(t, now), b);
  body.date_submitted = t.date_submitted;
  return body;
}
