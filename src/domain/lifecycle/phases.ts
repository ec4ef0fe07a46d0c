import { isFinalRelease, isReleaseState, TASK_STATES } from './states';

/**
 * Where a release's time went: each task's phases from its `states_at` (when it first entered each
 * state), on one time axis from the release's creation to its end (or now). Pure functions, so the
 * page, its text equivalent and the tests agree on every number.
 */

export const PHASES = ['initialize', 'running', 'staged', 'publishing'] as const;
export type Phase = (typeof PHASES)[number];

export const PHASE_LABELS: Record<Phase, string> = {
  initialize: 'Initialize',
  running: 'Running',
  staged: 'Staged',
  publishing: 'Publishing',
};

/** What each phase means, for the legend and the table's header. */
export const PHASE_HINTS: Record<Phase, string> = {
  initialize: 'created until started',
  running: 'started until staged',
  staged: 'staged, waiting for publish',
  publishing: 'publish sent until published',
};

/** The phase a task is in while it is in a state; final states end the bar. */
const PHASE_OF_STATE: Record<string, Phase> = {
  waiting: 'initialize',
  initialized: 'initialize',
  running: 'running',
  staged: 'staged',
  publishing: 'publishing',
};

/** Order of the states, to sort states entered within the same transaction. */
const STATE_ORDER: readonly string[] = TASK_STATES;

export interface Span {
  phase: Phase;
  /** epoch ms */
  from: number;
  to: number;
  /** the task is still in this phase: `to` is the end of the axis */
  ongoing: boolean;
}

export interface TaskPhases {
  spans: Span[];
  start: number;
  end: number;
  /** the task is not final yet */
  ongoing: boolean;
  /** total time per phase; absent when the task never was in it */
  durations: Partial<Record<Phase, number>>;
  total: number;
}

const parse = (at: string | undefined) => {
  const ms = at === undefined ? Number.NaN : Date.parse(at);
  return Number.isNaN(ms) ? undefined : ms;
};

/**
 * A task's phases. `until` is where an unfinished phase ends: now, or the release's end when the
 * release is final (its tasks are final by then, but a bar never runs past the axis).
 */
export function taskPhases(
  task: { state: string; statesAt: Record<string, string>; createdAt: Date },
  until: number,
): TaskPhases {
  const entered = Object.entries(task.statesAt)
    .map(([state, at]) => ({ state, at: parse(at) }))
    .filter((e): e is { state: string; at: number } => e.at !== undefined)
    .sort((a, b) => a.at - b.at || STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state));
  if (!entered.some((e) => e.state === 'waiting')) {
    entered.unshift({ state: 'waiting', at: Math.min(task.createdAt.getTime(), entered[0]?.at ?? Infinity) });
  }
  const spans: Span[] = [];
  for (const [i, e] of entered.entries()) {
    const phase = PHASE_OF_STATE[e.state];
    if (!phase) continue;
    const next = entered[i + 1];
    const to = Math.max(e.at, next ? next.at : until);
    const last = spans[spans.length - 1];
    if (last?.phase === phase) last.to = to;
    else spans.push({ phase, from: e.at, to, ongoing: false });
  }
  const last = entered[entered.length - 1]!;
  const ongoing = PHASE_OF_STATE[last.state] !== undefined;
  if (ongoing && spans.length > 0) spans[spans.length - 1]!.ongoing = true;
  const durations: Partial<Record<Phase, number>> = {};
  for (const s of spans) durations[s.phase] = (durations[s.phase] ?? 0) + (s.to - s.from);
  const start = entered[0]!.at;
  const end = ongoing ? Math.max(start, until) : last.at;
  return { spans, start, end, ongoing, durations, total: end - start };
}

export interface Axis {
  start: number;
  end: number;
  /** the release is not final: the axis ends now */
  ongoing: boolean;
}

/** From the release's creation to its end, or to now while it is not final. */
export function releaseAxis(
  release: { state: string; createdAt: Date; statesAt: Record<string, string>; stateChangedAt: Date },
  now: number,
): Axis {
  const start = parse(release.statesAt.waiting) ?? release.createdAt.getTime();
  const ongoing = !(isReleaseState(release.state) && isFinalRelease(release.state));
  const end = ongoing ? now : (parse(release.statesAt[release.state]) ?? release.stateChangedAt.getTime());
  return { start, end: Math.max(end, start + 1), ongoing };
}

/** Position on the axis in percent (0–100), clamped. */
export function percentOf(axis: Axis, at: number): number {
  const p = ((at - axis.start) / (axis.end - axis.start)) * 100;
  return Math.round(Math.max(0, Math.min(100, p)) * 100) / 100;
}

/** A duration as a person reads it: 850 ms, 4.2 s, 42 s, 3 min 12 s, 2 h 5 min, 1 d 3 h. */
export function formatDuration(ms: number): string {
  const v = Math.max(0, Math.round(ms));
  if (v < 1000) return `${v} ms`;
  if (v < 10_000) return `${(Math.floor(v / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(v / 1000);
  if (s < 60) return `${s} s`;
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`;
  if (s < 3600) return pair(Math.floor(s / 60), 'min', s % 60, 's');
  if (s < 86_400) return pair(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'min');
  return pair(Math.floor(s / 86_400), 'd', Math.floor((s % 86_400) / 3600), 'h');
}

/** Labels of the axis: evenly spaced times since the start ("0", "+1.5 s", …). */
export function axisTicks(axis: Axis, count = 5): Array<{ percent: number; label: string }> {
  const span = axis.end - axis.start;
  return Array.from({ length: count }, (_, i) => {
    const fraction = i / (count - 1);
    return { percent: fraction * 100, label: i === 0 ? '0' : `+${formatDuration(span * fraction)}` };
  });
}

/**
 * The phase that took longest across the tasks (waiting for a person to publish aside): the task
 * that held the release up, or undefined when nothing took time yet.
 */
export function longestWork(
  tasks: Array<{ name: string; phases: TaskPhases }>,
): { name: string; phase: Phase; ms: number } | undefined {
  let best: { name: string; phase: Phase; ms: number } | undefined;
  for (const t of tasks) {
    for (const phase of PHASES) {
      const ms = t.phases.durations[phase];
      if (phase === 'staged' || ms === undefined) continue;
      if (!best || ms > best.ms) best = { name: t.name, phase, ms };
    }
  }
  return best && best.ms > 0 ? best : undefined;
}
