import semver from 'semver';
import {
  type Action,
  isFinalRelease,
  isFinalTask,
  mapServiceState,
  parseProgress,
  type ReleaseState,
  TASK_RANK,
  type TaskState,
} from './states';

/**
 * The release/task rules of spec/lifecycle.md as one pure function: a release with its tasks
 * plus one event gives the new release, the calls to make and the events to record. No I/O:
 * the coordinator applies the outcome inside its transaction.
 */

export type HaltReason = 'cancel' | 'fail';
/** Actions whose answer moves the lifecycle; get_status answers are applied as reports. */
export type AwaitedAction = Exclude<Action, 'get_status'>;

export interface TaskView {
  kfId: string;
  taskServiceId: string;
  state: TaskState;
  progress: number | null;
  awaiting: AwaitedAction | null;
}

export interface ReleaseView {
  kfId: string;
  state: ReleaseState;
  version: string;
  isMajor: boolean;
  haltReason: HaltReason | null;
  tasks: TaskView[];
}

export type LifecycleEvent =
  | { kind: 'begin' }
  | { kind: 'publish' }
  | { kind: 'cancel'; reason?: string }
  | { kind: 'call_ok'; taskId: string; action: Action; state?: unknown; progress?: unknown }
  | { kind: 'call_failed'; taskId: string; action: Action; reason: string }
  | { kind: 'report'; taskId: string; state?: unknown; progress?: unknown }
  | { kind: 'service_down'; taskServiceId: string; reason?: string }
  | { kind: 'timeout'; what: string };

export interface Command {
  action: Action;
  taskId: string;
}

export interface LogEntry {
  type: 'info' | 'warning' | 'error';
  message: string;
  taskId?: string;
  taskServiceId?: string;
}

export interface Transition {
  entity: 'release' | 'task';
  kfId: string;
  from: string;
  to: string;
}

export interface Outcome {
  release: ReleaseView;
  commands: Command[];
  log: LogEntry[];
  /** every state change, in order (for downstream notifications) */
  transitions: Transition[];
  /** in-flight calls of this release must be aborted (the release entered canceling) */
  abort: boolean;
  /** the event was refused: nothing changed; the caller answers 409 with this message */
  refused?: string;
}

/** Tasks in these states are polled with get_status while their release is in the matching phase. */
export function wantsPolling(release: ReleaseView, task: TaskView): boolean {
  return (
    (release.state === 'running' && task.state === 'running') ||
    (release.state === 'publishing' && task.state === 'publishing')
  );
}

/** Highest task state a report may move a task to while the release is in this state. */
const REPORT_CEILING: Partial<Record<ReleaseState, TaskState>> = {
  initializing: 'initialized',
  running: 'staged',
  staged: 'staged',
  publishing: 'published',
};

export function nextVersion(previous: string | undefined): string {
  return previous ? (semver.inc(previous, 'patch') ?? '0.0.0') : '0.0.0';
}

export function publishedVersion(version: string, isMajor: boolean): string {
  return semver.inc(version, isMajor ? 'major' : 'minor') ?? version;
}

class Step {
  readonly release: ReleaseView;
  readonly commands: Command[] = [];
  readonly log: LogEntry[] = [];
  readonly transitions: Transition[] = [];
  abort = false;
  refused?: string;

  constructor(release: ReleaseView) {
    this.release = { ...release, tasks: release.tasks.map((t) => ({ ...t })) };
  }

  outcome(): Outcome {
    return {
      release: this.release,
      commands: this.commands,
      log: this.log,
      transitions: this.transitions,
      abort: this.abort,
      refused: this.refused,
    };
  }

  task(taskId: string): TaskView | undefined {
    return this.release.tasks.find((t) => t.kfId === taskId);
  }

  moveRelease(to: ReleaseState) {
    const r = this.release;
    const from = r.state;
    if (from === to) return;
    if (to === 'published') r.version = publishedVersion(r.version, r.isMajor);
    r.state = to;
    this.transitions.push({ entity: 'release', kfId: r.kfId, from, to });
    this.log.push({
      type: to === 'failed' ? 'error' : 'info',
      message: `release ${r.kfId}, version ${r.version} changed from ${from} to ${to}`,
    });
  }

  moveTask(task: TaskView, to: TaskState) {
    if (task.state === to) return;
    const from = task.state;
    task.state = to;
    this.transitions.push({ entity: 'task', kfId: task.kfId, from, to });
    if (to === 'published' || to === 'staged') task.progress = 100;
    this.log.push({
      type: to === 'failed' || to === 'rejected' ? 'error' : 'info',
      message: `task ${task.kfId} changed from ${from} to ${to}`,
      taskId: task.kfId,
      taskServiceId: task.taskServiceId,
    });
  }

  send(action: AwaitedAction, tasks: TaskView[]) {
    for (const t of tasks) {
      t.awaiting = action;
      this.commands.push({ action, taskId: t.kfId });
    }
  }

  /** Enters canceling: cancel every task that is not final, abort calls in flight. */
  halt(reason: HaltReason) {
    const r = this.release;
    if (isFinalRelease(r.state) || r.state === 'canceling') return;
    r.haltReason = reason;
    this.moveRelease('canceling');
    this.abort = true;
    this.send(
      'cancel',
      r.tasks.filter((t) => !isFinalTask(t.state)),
    );
    this.finishCancelIfDone();
  }

  finishCancelIfDone() {
    const r = this.release;
    if (r.state !== 'canceling') return;
    if (r.tasks.some((t) => t.awaiting === 'cancel')) return;
    this.moveRelease(r.haltReason === 'fail' ? 'failed' : 'canceled');
  }

  advanceIfAll(state: TaskState, releaseTo: ReleaseState) {
    if (this.release.tasks.every((t) => t.state === state)) this.moveRelease(releaseTo);
  }

  setProgress(task: TaskView, raw: unknown) {
    const p = parseProgress(raw);
    if (p !== undefined) task.progress = p;
  }
}

export function decide(release: ReleaseView, event: LifecycleEvent): Outcome {
  const step = new Step(release);
  const r = step.release;
  switch (event.kind) {
    case 'begin':
      begin(step);
      break;
    case 'publish':
      publish(step);
      break;
    case 'cancel':
      if (isFinalRelease(r.state)) step.refused = `The release in state ${r.state} may not be canceled.`;
      else {
        if (event.reason) step.log.push({ type: 'info', message: event.reason });
        step.halt('cancel');
      }
      break;
    case 'call_ok':
      callOk(step, event);
      break;
    case 'call_failed':
      callFailed(step, event);
      break;
    case 'report':
      report(step, event.taskId, event.state, event.progress, 'callback');
      break;
    case 'service_down':
      serviceDown(step, event.taskServiceId, event.reason);
      break;
    case 'timeout':
      if (!isFinalRelease(r.state)) {
        step.log.push({ type: 'warning', message: `${event.what} timed out` });
        step.halt('cancel');
      }
      break;
  }
  return step.outcome();
}

function begin(step: Step) {
  const r = step.release;
  if (r.state !== 'waiting') return;
  if (r.tasks.length === 0) {
    step.moveRelease('running');
    step.moveRelease('staged');
    return;
  }
  step.moveRelease('initializing');
  step.send('initialize', r.tasks);
}

function publish(step: Step) {
  const r = step.release;
  if (r.state !== 'staged') {
    step.refused = `The release in state ${r.state} may not be published.`;
    return;
  }
  step.moveRelease('publishing');
  if (r.tasks.length === 0) step.moveRelease('published');
  else step.send('publish', r.tasks);
}

function callOk(step: Step, e: Extract<LifecycleEvent, { kind: 'call_ok' }>) {
  const r = step.release;
  const task = step.task(e.taskId);
  if (!task) return;
  if (e.action === 'get_status') {
    report(step, task.kfId, e.state, e.progress, 'poll');
    return;
  }
  if (task.awaiting !== e.action) return; // stale answer (e.g. overtaken by a cancel)
  task.awaiting = null;
  switch (e.action) {
    case 'initialize':
      if (r.state !== 'initializing') return;
      step.moveTask(task, 'initialized');
      if (r.tasks.every((t) => t.state === 'initialized')) {
        step.moveRelease('running');
        step.send('start', r.tasks);
      }
      return;
    case 'start':
    case 'publish': {
      const phase = e.action === 'start' ? 'running' : 'publishing';
      if (r.state !== phase) return;
      step.setProgress(task, e.progress);
      const reported = mapServiceState(e.state);
      if (reported === 'failed' || reported === 'canceled') {
        report(step, task.kfId, e.state, undefined, 'reply');
        return;
      }
      const done = e.action === 'start' ? 'staged' : 'published';
      const to = reported === done ? done : TASK_RANK[task.state] < TASK_RANK[phase] ? phase : task.state;
      step.moveTask(task, to);
      step.advanceIfAll(done, done);
      return;
    }
    case 'cancel':
      cancelAnswered(step, task);
      return;
  }
}

function callFailed(step: Step, e: Extract<LifecycleEvent, { kind: 'call_failed' }>) {
  const r = step.release;
  const task = step.task(e.taskId);
  if (!task) return;
  if (e.action === 'get_status') {
    // only tasks still being polled: a failed poll answered after a callback staged the task is stale
    if (wantsPolling(r, task)) {
      step.log.push(failedRequest(task, e.action, e.reason));
      step.moveTask(task, 'failed');
      step.halt('fail');
    }
    return;
  }
  if (task.awaiting !== e.action) return;
  task.awaiting = null;
  if (e.action === 'cancel') {
    step.log.push(failedRequest(task, e.action, e.reason));
    cancelAnswered(step, task);
    return;
  }
  const phase: Record<string, ReleaseState> = {
    initialize: 'initializing',
    start: 'running',
    publish: 'publishing',
  };
  if (r.state !== phase[e.action]) return;
  step.log.push(failedRequest(task, e.action, e.reason));
  step.moveTask(task, e.action === 'initialize' ? 'rejected' : 'failed');
  step.halt('fail');
}

function failedRequest(task: TaskView, action: Action, reason: string): LogEntry {
  return {
    type: 'error',
    message: `request to ${action === 'get_status' ? 'get status of' : action} task failed: ${reason}`,
    taskId: task.kfId,
    taskServiceId: task.taskServiceId,
  };
}

function cancelAnswered(step: Step, task: TaskView) {
  if (!isFinalTask(task.state)) step.moveTask(task, 'canceled');
  step.finishCancelIfDone();
}

function report(step: Step, taskId: string, rawState: unknown, rawProgress: unknown, source: string) {
  const r = step.release;
  const task = step.task(taskId);
  if (!task) return;
  const reported = rawState === undefined || rawState === null ? undefined : mapServiceState(rawState);
  const warn = (message: string) =>
    step.log.push({ type: 'warning', message, taskId: task.kfId, taskServiceId: task.taskServiceId });
  if (isFinalRelease(r.state) || isFinalTask(task.state)) {
    if (reported === 'failed' && task.state !== 'failed')
      warn(`task ${task.kfId} reported failed after it was ${task.state} (ignored)`);
    return;
  }
  if (rawState !== undefined && rawState !== null && reported === undefined) {
    warn(`task ${task.kfId} reported unknown state ${JSON.stringify(rawState)} in ${source}; state kept`);
    step.setProgress(task, rawProgress);
    return;
  }
  if (reported === 'failed' || reported === 'canceled') {
    // while canceling the task is still waiting for its cancel answer; the release keeps its reason
    step.moveTask(task, reported);
    step.halt(reported === 'failed' ? 'fail' : 'cancel');
    return;
  }
  if (r.state === 'canceling') return;
  if (!reported) {
    step.setProgress(task, rawProgress);
    return;
  }
  const rank = TASK_RANK[reported];
  if (rank < TASK_RANK[task.state]) {
    // A poll answered before a newer callback is stale, not wrong: drop it quietly.
    if (source === 'poll') return;
    refuse(step, task, reported, source);
    return;
  }
  if (rank === TASK_RANK[task.state]) {
    step.setProgress(task, rawProgress);
    return;
  }
  const ceiling = REPORT_CEILING[r.state];
  if (!ceiling || rank > TASK_RANK[ceiling]) {
    refuse(step, task, reported, source);
    return;
  }
  step.setProgress(task, rawProgress);
  step.moveTask(task, reported);
  if (reported === 'staged') step.advanceIfAll('staged', 'staged');
  if (reported === 'published') step.advanceIfAll('published', 'published');
}

function refuse(step: Step, task: TaskView, reported: TaskState, source: string) {
  step.refused = `task ${task.kfId} may not move from ${task.state} to ${reported} while its release is ${step.release.state}`;
  step.log.push({
    type: 'warning',
    message: `refused ${source} report: ${step.refused}`,
    taskId: task.kfId,
    taskServiceId: task.taskServiceId,
  });
}

function serviceDown(step: Step, taskServiceId: string, reason?: string) {
  const r = step.release;
  if (isFinalRelease(r.state)) return;
  const hit = r.tasks.filter((t) => t.taskServiceId === taskServiceId && !isFinalTask(t.state));
  if (hit.length === 0) return;
  for (const t of hit) {
    step.log.push({
      type: 'error',
      message: `task service ${taskServiceId} is down${reason ? `: ${reason}` : ''}`,
      taskId: t.kfId,
      taskServiceId,
    });
    step.moveTask(t, 'failed');
  }
  step.halt('fail');
}
