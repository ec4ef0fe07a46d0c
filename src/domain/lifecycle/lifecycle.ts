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
import {
  type ActionDeadlines,
  answerBudget,
  callDeadline,
  cancelPhaseLimit,
  firstPollDelay,
  type LifecycleTiming,
  nextPollDelay,
} from './timing';

/**
 * The release/task rules of docs/lifecycle.md as one pure function: a release with its tasks plus
 * one event (and the time) give the new release, the calls to make, the polls to schedule and the
 * events to record. No I/O: the coordinator applies the outcome inside its transaction.
 */

export type HaltReason = 'cancel' | 'fail';
/** Actions whose answer moves the lifecycle; get_status answers are applied as reports. */
export type AwaitedAction = Exclude<Action, 'get_status'>;
/**
 * How a call ended without a usable answer: an HTTP refusal (also a 200 without a JSON object, or
 * an answer too large), no answer at all, or never sent (the request did not leave: the release
 * halted first, or no token could be had for it; a definite non-delivery, failed like a refusal).
 */
export type FailedCall = 'refused' | 'unknown' | 'not_sent';

export interface TaskView {
  kfId: string;
  taskServiceId: string;
  serviceName: string;
  state: TaskState;
  progress: number | null;
  awaiting: AwaitedAction | null;
  /** when the awaited answer is due (epoch ms, database clock) */
  awaitingUntil: number | null;
  /** a start/publish got no answer: its outcome stays unknown until a poll shows the work; the action's deadline */
  unconfirmedUntil: number | null;
  /** first unanswered poll of the current outage of the task's service */
  unreachableSince: number | null;
  /** interval of the adaptive poll cadence last used */
  pollDelayMs: number | null;
  /** last credential-less callback taken as a hint to poll */
  hintedAt: number | null;
  deadlines: ActionDeadlines;
}

/** What halted a release (docs/lifecycle.md, "Why a release halted"). */
export interface Halt {
  reason: HaltReason;
  taskId: string | null;
  serviceId: string | null;
  serviceName: string | null;
  message: string;
  /** who asked for the cancel */
  by: string | null;
  at: number;
}

export interface ReleaseView {
  kfId: string;
  state: ReleaseState;
  version: string;
  isMajor: boolean;
  halt: Halt | null;
  /** who asked to publish, and when */
  publish: { by: string | null; at: number } | null;
  /** the highest version published so far, by any release (null: none yet) */
  highestPublished: string | null;
  tasks: TaskView[];
}

export type LifecycleEvent =
  | { kind: 'begin' }
  | { kind: 'publish'; by?: string }
  /** is_major changed: it decides the version the release gets when published */
  | { kind: 'amend'; isMajor: boolean; by?: string }
  | { kind: 'cancel'; by?: string; reason?: string }
  | { kind: 'call_ok'; taskId: string; action: Action; state?: unknown; progress?: unknown }
  | { kind: 'call_failed'; taskId: string; action: Action; outcome: FailedCall; reason: string }
  /**
   * the awaited answer can no longer come (the command or its result was lost); `neverSent`: a
   * start/publish that certainly never reached the service (no worker sent it, none ever will)
   */
  | { kind: 'answer_lost'; taskId: string; action: AwaitedAction; neverSent?: boolean }
  | { kind: 'report'; taskId: string; state?: unknown; progress?: unknown }
  /** a callback without credentials: not applied, but a reason to poll the task now */
  | { kind: 'poll_hint'; taskId: string }
  | { kind: 'service_down'; taskServiceId: string; reason?: string }
  /** the release's deadline passed, or a task (taskId) made no progress for the task timeout */
  | { kind: 'timeout'; what: string; taskId?: string };

export interface Context {
  /** epoch ms on the database's clock */
  now: number;
  timing: LifecycleTiming;
}

export interface Command {
  action: Action;
  taskId: string;
  /** deadline of the call */
  timeoutMs: number;
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
  /** polls to schedule: task id → delay in ms (0 = at once) */
  polls: Map<string, number>;
  /** in-flight calls of this release must be aborted (the release entered canceling) */
  abort: boolean;
  /** the event was refused: nothing changed; the caller answers 409 with this message */
  refused?: string;
}

/** Tasks in these states are polled with get_status while their release is in the matching phase. */
export function wantsPolling(release: Pick<ReleaseView, 'state'>, task: Pick<TaskView, 'state'>): boolean {
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

/** The phase a start or publish belongs to, and the state its work ends in. */
const PHASE = {
  start: { release: 'running', task: 'running', done: 'staged', before: 'initialized' },
  publish: { release: 'publishing', task: 'publishing', done: 'published', before: 'staged' },
} as const;

const MESSAGE_LIMIT = 500;

export function nextVersion(previous: string | undefined): string {
  return previous ? (semver.inc(previous, 'patch') ?? '0.0.0') : '0.0.0';
}

/** The version a release publishes as: the next minor (or major) of the highest published so far. */
export function publishedVersion(
  version: string,
  isMajor: boolean,
  highestPublished?: string | null,
): string {
  const base = highestPublished && semver.gt(highestPublished, version) ? highestPublished : version;
  return semver.inc(base, isMajor ? 'major' : 'minor') ?? base;
}

const trim = (message: string) =>
  message.length > MESSAGE_LIMIT ? `${message.slice(0, MESSAGE_LIMIT - 1)}…` : message;
const verb = (action: Action) => (action === 'get_status' ? 'get status of' : action);
const describeTask = (t: TaskView) => `task ${t.kfId} of ${t.serviceName || t.taskServiceId}`;

/**
 * Where each task sits in a task list, by id. A step's list is a copy of its input's in the same
 * order (the lifecycle never adds, removes or reorders tasks), so it shares its input's positions:
 * finding an event's task costs a lookup, not a search of a release's thousands of tasks.
 */
const positions = new WeakMap<readonly TaskView[], ReadonlyMap<string, number>>();

function positionsOf(tasks: readonly TaskView[]): ReadonlyMap<string, number> {
  let at = positions.get(tasks);
  if (!at) {
    at = new Map(tasks.map((t, i) => [t.kfId, i]));
    positions.set(tasks, at);
  }
  return at;
}

/**
 * Where task `taskId` sits in `tasks` (undefined: not there). A list whose order changed since its
 * positions were taken has them taken again.
 */
function positionOf(tasks: readonly TaskView[], taskId: string): number | undefined {
  const i = positionsOf(tasks).get(taskId);
  if (i === undefined || tasks[i]?.kfId === taskId) return i;
  positions.delete(tasks);
  return positionsOf(tasks).get(taskId);
}

/** Task `taskId` of `tasks`, found by position rather than by a search of the list. */
export function taskOf(tasks: readonly TaskView[], taskId: string): TaskView | undefined {
  const i = positionOf(tasks, taskId);
  return i === undefined ? undefined : tasks[i];
}

class Step {
  readonly release: ReleaseView;
  readonly commands: Command[] = [];
  readonly log: LogEntry[] = [];
  readonly transitions: Transition[] = [];
  readonly polls = new Map<string, number>();
  private readonly stateBefore: ReleaseState;
  /**
   * the tasks this step copied, by position, as they came in (copy on write: an event that
   * touches one task of a large release copies one task)
   */
  private readonly replaced = new Map<number, TaskView>();
  abort = false;
  refused?: string;

  constructor(
    release: ReleaseView,
    readonly ctx: Context,
    private readonly tasksOwned: boolean,
  ) {
    this.release = {
      ...release,
      halt: release.halt && { ...release.halt },
      publish: release.publish && { ...release.publish },
      // the task objects are shared with the input until this step writes one (see mutableAt)
      tasks: tasksOwned ? release.tasks : release.tasks.slice(),
    };
    positions.set(this.release.tasks, positionsOf(release.tasks));
    this.stateBefore = release.state;
  }

  /** This step's own copy of the task at `i`, made on first write; a task object is never changed. */
  mutableAt(i: number): TaskView {
    const t = this.release.tasks[i]!;
    if (this.replaced.has(i)) return t;
    const copy = { ...t };
    this.release.tasks[i] = copy;
    this.replaced.set(i, t);
    return copy;
  }

  /** Every task as this step's own copy (for a fan-out, which writes them all). */
  mutableTasks(): TaskView[] {
    return this.release.tasks.map((_, i) => this.mutableAt(i));
  }

  get now() {
    return this.ctx.now;
  }

  outcome(): Outcome {
    // a refused event changes nothing: a caller's list gets its tasks back as they came in
    if (this.refused && this.tasksOwned) for (const [i, t] of this.replaced) this.release.tasks[i] = t;
    else this.firstPolls();
    return {
      release: this.release,
      commands: this.commands,
      log: this.log,
      transitions: this.transitions,
      polls: this.polls,
      abort: this.abort,
      refused: this.refused,
    };
  }

  private firstPolls() {
    // a task that starts being polled without an explicit instruction (e.g. a callback moved it)
    // gets the first poll; while the release keeps its state only a task this step wrote can start
    const tasks = this.release.tasks;
    const candidates = this.release.state === this.stateBefore ? [...this.replaced.keys()] : tasks.keys();
    for (const i of candidates) {
      const t = tasks[i]!;
      if (!wantsPolling(this.release, t) || this.polls.has(t.kfId)) continue;
      if (wantsPolling({ state: this.stateBefore }, this.replaced.get(i) ?? t)) continue;
      this.poll(this.mutableAt(i), firstPollDelay(this.ctx.timing));
    }
  }

  /** The task, as this step's own copy (handlers write to it). */
  task(taskId: string): TaskView | undefined {
    const i = positionOf(this.release.tasks, taskId);
    return i === undefined ? undefined : this.mutableAt(i);
  }

  note(type: LogEntry['type'], message: string, task?: TaskView) {
    this.log.push({ type, message, taskId: task?.kfId, taskServiceId: task?.taskServiceId });
  }

  moveRelease(to: ReleaseState) {
    const r = this.release;
    const from = r.state;
    if (from === to) return;
    if (to === 'published') r.version = publishedVersion(r.version, r.isMajor, r.highestPublished);
    r.state = to;
    this.transitions.push({ entity: 'release', kfId: r.kfId, from, to });
    this.note(
      to === 'failed' ? 'error' : 'info',
      `release ${r.kfId}, version ${r.version} changed from ${from} to ${to}`,
    );
  }

  moveTask(task: TaskView, to: TaskState) {
    if (task.state === to) return;
    const from = task.state;
    task.state = to;
    this.transitions.push({ entity: 'task', kfId: task.kfId, from, to });
    if (to === 'published' || to === 'staged') task.progress = 100;
    if (isFinalTask(to)) task.unconfirmedUntil = null;
    this.note(
      to === 'failed' || to === 'rejected' ? 'error' : 'info',
      `task ${task.kfId} changed from ${from} to ${to}`,
      task,
    );
  }

  send(action: AwaitedAction, tasks: TaskView[]) {
    for (const t of tasks) {
      t.awaiting = action;
      t.awaitingUntil = this.now + answerBudget(action, t.deadlines, this.ctx.timing);
      this.command(action, t);
    }
  }

  /** a call whose answer nothing waits for (a cancel sent again after a late start) */
  command(action: Action, t: TaskView) {
    this.commands.push({ action, taskId: t.kfId, timeoutMs: callDeadline(action, t.deadlines) });
  }

  poll(task: TaskView, delayMs: number) {
    this.polls.set(task.kfId, delayMs);
    if (delayMs > 0) task.pollDelayMs = delayMs;
  }

  /** the next poll of a task that stays polled, on the adaptive cadence */
  pollLater(task: TaskView) {
    if (wantsPolling(this.release, task)) this.poll(task, nextPollDelay(task.pollDelayMs, this.ctx.timing));
  }

  /** Enters canceling: cancel every task whose service may hold work, abort calls in flight. */
  halt(
    cause: Omit<Halt, 'at' | 'serviceId' | 'serviceName' | 'taskId' | 'by'> & {
      task?: TaskView;
      serviceId?: string;
      by?: string;
    },
  ) {
    const r = this.release;
    if (isFinalRelease(r.state) || r.state === 'canceling') return;
    const t = cause.task;
    r.halt = {
      reason: cause.reason,
      taskId: t?.kfId ?? null,
      serviceId: t?.taskServiceId ?? cause.serviceId ?? null,
      serviceName: t?.serviceName ?? null,
      message: trim(cause.message),
      by: cause.by ?? null,
      at: this.now,
    };
    this.moveRelease('canceling');
    this.abort = true;
    this.send('cancel', this.mutableTasks().filter(mayHoldWork));
    this.finishCancelIfDone();
  }

  fail(task: TaskView, to: 'failed' | 'rejected', message: string) {
    this.moveTask(task, to);
    this.halt({ reason: 'fail', task, message });
  }

  finishCancelIfDone() {
    const r = this.release;
    if (r.state !== 'canceling') return;
    if (r.tasks.some((t) => t.awaiting === 'cancel')) return;
    this.moveRelease(r.halt?.reason === 'fail' ? 'failed' : 'canceled');
  }

  advanceIfAll(state: TaskState, releaseTo: ReleaseState) {
    if (this.release.tasks.every((t) => t.state === state)) this.moveRelease(releaseTo);
  }

  setProgress(task: TaskView, raw: unknown) {
    const p = parseProgress(raw);
    if (p !== undefined) task.progress = p;
  }
}

/**
 * A service may hold work for a task it was sent any action for, whatever the coordinator thinks
 * of it (a refused or timed-out call may still have started something); only a service that itself
 * reported `canceled` is known to hold nothing.
 */
function mayHoldWork(t: TaskView): boolean {
  if (t.state === 'canceled') return false;
  return t.state !== 'waiting' || t.awaiting !== null;
}

export interface DecideOptions {
  /**
   * The caller hands `release.tasks` over: the step puts its task copies into that list instead of
   * copying the list first. For a caller that applies many events to one release (a batch of
   * results on a release of 10,000 tasks would otherwise copy the list for every event). The task
   * objects themselves are still never changed: a task kept from an earlier outcome stays as it was.
   */
  tasksOwned?: boolean;
}

export function decide(
  release: ReleaseView,
  event: LifecycleEvent,
  ctx: Context,
  options: DecideOptions = {},
): Outcome {
  const step = new Step(release, ctx, options.tasksOwned === true);
  switch (event.kind) {
    case 'begin':
      begin(step);
      break;
    case 'publish':
      publish(step, event.by);
      break;
    case 'amend':
      amend(step, event.isMajor, event.by);
      break;
    case 'cancel':
      cancel(step, event);
      break;
    case 'call_ok':
      callOk(step, event);
      break;
    case 'call_failed':
      callFailed(step, event);
      break;
    case 'answer_lost':
      answerLost(step, event.taskId, event.action, event.neverSent === true);
      break;
    case 'report':
      withTask(step, event.taskId, (t) => report(step, t, event.state, event.progress, 'callback'));
      break;
    case 'poll_hint':
      withTask(step, event.taskId, (t) => pollHint(step, t));
      break;
    case 'service_down':
      serviceDown(step, event.taskServiceId, event.reason);
      break;
    case 'timeout':
      if (!isFinalRelease(step.release.state)) {
        const task = event.taskId ? step.task(event.taskId) : undefined;
        step.note('warning', `${event.what} timed out`, task);
        step.halt({ reason: 'cancel', task, message: `${event.what} timed out` });
      }
      break;
  }
  return step.outcome();
}

function withTask(step: Step, taskId: string, then: (t: TaskView) => void) {
  const task = step.task(taskId);
  if (task) then(task);
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
  step.send('initialize', step.mutableTasks());
}

function publish(step: Step, by: string | undefined) {
  const r = step.release;
  if (r.state !== 'staged') {
    step.refused = `The release in state ${r.state} may not be published.`;
    return;
  }
  r.publish = { by: by ?? null, at: step.now };
  step.moveRelease('publishing');
  if (r.tasks.length === 0) step.moveRelease('published');
  else step.send('publish', step.mutableTasks());
}

/** States in which is_major may still change: from publishing on, the version it decides is being given out. */
const AMENDABLE = new Set<ReleaseState>(['waiting', 'initializing', 'running', 'staged']);

/** is_major may change until publishing begins (or the release halts). */
function amend(step: Step, isMajor: boolean, by: string | undefined) {
  const r = step.release;
  if (r.isMajor === isMajor) return;
  if (!AMENDABLE.has(r.state)) {
    step.refused = `is_major may not change once the release is publishing, halted or final (it is ${r.state}).`;
    return;
  }
  r.isMajor = isMajor;
  step.note('info', `release ${r.kfId} marked ${isMajor ? 'major' : 'minor'}${by ? ` by ${by}` : ''}`);
}

function cancel(step: Step, e: Extract<LifecycleEvent, { kind: 'cancel' }>) {
  const r = step.release;
  if (isFinalRelease(r.state)) {
    step.refused = `The release in state ${r.state} may not be canceled.`;
    return;
  }
  if (e.reason) step.note('info', e.reason);
  const message = e.reason ?? (e.by ? `canceled by ${e.by}` : 'canceled');
  step.halt({ reason: 'cancel', message, by: e.by });
}

function callOk(step: Step, e: Extract<LifecycleEvent, { kind: 'call_ok' }>) {
  const r = step.release;
  const task = step.task(e.taskId);
  if (!task) return;
  if (e.action === 'get_status') {
    pollAnswered(step, task, e.state, e.progress);
    return;
  }
  if (task.awaiting !== e.action) {
    lateAnswer(step, task, e.action, { state: e.state, progress: e.progress });
    return;
  }
  answered(task);
  switch (e.action) {
    case 'initialize':
      if (r.state !== 'initializing') return;
      step.moveTask(task, 'initialized');
      if (r.tasks.every((t) => t.state === 'initialized')) {
        step.moveRelease('running');
        step.send('start', step.mutableTasks());
      }
      return;
    case 'start':
    case 'publish':
      workAccepted(step, task, e.action, e.state, e.progress);
      return;
    case 'cancel':
      cancelAnswered(step, task);
      return;
  }
}

function answered(task: TaskView) {
  task.awaiting = null;
  task.awaitingUntil = null;
}

/** start/publish answered 200: the task is at work (or already done, if the reply says so). */
function workAccepted(
  step: Step,
  task: TaskView,
  action: 'start' | 'publish',
  rawState: unknown,
  rawProgress: unknown,
) {
  const phase = PHASE[action];
  if (step.release.state !== phase.release) return;
  step.setProgress(task, rawProgress);
  const reported = mapServiceState(rawState);
  if (reported === 'failed' || reported === 'canceled') {
    report(step, task, rawState, undefined, 'reply');
    return;
  }
  task.unconfirmedUntil = null;
  const to: TaskState =
    reported === phase.done
      ? phase.done
      : TASK_RANK[task.state] < TASK_RANK[phase.task]
        ? phase.task
        : task.state;
  step.moveTask(task, to);
  step.advanceIfAll(phase.done, phase.done);
}

/**
 * An answer nothing waits for any more. A start or publish that may have reached the service after
 * the release halted could have started work the earlier cancel did not stop: cancel once more.
 */
function lateAnswer(
  step: Step,
  task: TaskView,
  action: Action,
  reply?: { state: unknown; progress: unknown },
) {
  if (action !== 'start' && action !== 'publish') return;
  const state = step.release.state;
  if (reply && task.unconfirmedUntil !== null && state === PHASE[action].release) {
    // the answer counted as lost came after all: it settles the unknown outcome
    workAccepted(step, task, action, reply.state, reply.progress);
    return;
  }
  const halted = state === 'canceling' || state === 'canceled' || state === 'failed';
  if (!halted) return;
  step.note(
    'warning',
    `${action} of ${describeTask(task)} may have been taken after the release halted; sending cancel again`,
    task,
  );
  step.command('cancel', task);
}

function callFailed(step: Step, e: Extract<LifecycleEvent, { kind: 'call_failed' }>) {
  const r = step.release;
  const task = step.task(e.taskId);
  if (!task) return;
  if (e.action === 'get_status') {
    pollFailed(step, task, e.outcome, e.reason);
    return;
  }
  if (task.awaiting !== e.action) {
    if (e.outcome === 'unknown') lateAnswer(step, task, e.action);
    return;
  }
  const deadline = task.awaitingUntil;
  answered(task);
  if (e.action === 'cancel') {
    step.note('error', failedRequest(task, e.action, e.reason, e.outcome), task);
    cancelAnswered(step, task);
    return;
  }
  if (e.action === 'initialize') {
    if (r.state !== 'initializing') return;
    step.note('error', failedRequest(task, e.action, e.reason, e.outcome), task);
    step.fail(task, 'rejected', haltMessage(task, e.action, e.reason, e.outcome));
    return;
  }
  if (r.state !== PHASE[e.action].release) return;
  if (e.outcome === 'unknown') {
    outcomeUnknown(step, task, e.action, e.reason, deadline);
    return;
  }
  step.note('error', failedRequest(task, e.action, e.reason, e.outcome), task);
  step.fail(task, 'failed', haltMessage(task, e.action, e.reason, e.outcome));
}

/** The error event of a failed call; a call that never left (`not_sent`) says so. */
function failedRequest(task: TaskView, action: Action, reason: string, outcome?: FailedCall): string {
  const how = outcome === 'not_sent' ? 'was not sent' : 'failed';
  return `request to ${verb(action)} ${describeTask(task)} ${how}: ${reason}`;
}

/** Why the release halts over a failed call: the service refused it, or it never left (naming the service). */
function haltMessage(task: TaskView, action: Action, reason: string, outcome: FailedCall): string {
  return outcome === 'not_sent'
    ? `${action} of ${describeTask(task)} not sent: ${reason}`
    : `${action} refused: ${reason}`;
}

/**
 * A start or publish without an answer may have been taken (one real service does all its work
 * before it answers): never send it again; mark the outcome unknown and find out by polling. Only a
 * poll still showing the earlier state once twice the call's deadline has passed since it was sent
 * means it was not taken: a service slow enough to miss the deadline may also act on it late.
 */
function outcomeUnknown(
  step: Step,
  task: TaskView,
  action: 'start' | 'publish',
  reason: string,
  deadline: number | null,
) {
  const phase = PHASE[action];
  step.note(
    'warning',
    `request to ${action} ${describeTask(task)} got no answer (${reason}); its outcome is unknown: polling to find out, never sending it again`,
    task,
  );
  task.unconfirmedUntil = (deadline ?? step.now) + callDeadline(action, task.deadlines);
  if (TASK_RANK[task.state] < TASK_RANK[phase.task]) step.moveTask(task, phase.task);
  step.poll(task, 0);
}

function answerLost(step: Step, taskId: string, action: AwaitedAction, neverSent: boolean) {
  const r = step.release;
  const task = step.task(taskId);
  if (!task || task.awaiting !== action) return;
  const deadline = task.awaitingUntil;
  const lost = `the answer to ${action} of ${describeTask(task)} was lost`;
  if (action === 'initialize' || (action === 'cancel' && withinCancelPhase(step, task))) {
    // both are safe to repeat: a service answers a second initialize or cancel of a task the same way
    step.note('warning', `${lost}; sending ${action} again`, task);
    step.send(action, [task]);
    return;
  }
  if ((action === 'start' || action === 'publish') && neverSent && r.state === PHASE[action].release) {
    // the command was lost before any worker sent it, and no worker ever will: sending it is the
    // first time the service gets it
    step.note(
      'warning',
      `${action} of ${describeTask(task)} was lost before any worker sent it; sending ${action} again`,
      task,
    );
    step.send(action, [task]);
    return;
  }
  answered(task);
  if (action === 'cancel') {
    step.note('error', `${lost} again and again; giving up on it (the service may still hold work)`, task);
    cancelAnswered(step, task);
    return;
  }
  if (r.state === PHASE[action].release) outcomeUnknown(step, task, action, 'its answer was lost', deadline);
}

function withinCancelPhase(step: Step, task: TaskView): boolean {
  const since = step.release.halt?.at ?? step.now;
  return step.now - since < cancelPhaseLimit(task.deadlines, step.ctx.timing);
}

function cancelAnswered(step: Step, task: TaskView) {
  if (!isFinalTask(task.state)) step.moveTask(task, 'canceled');
  else step.note('info', `cancel of ${describeTask(task)} ended; the task stays ${task.state}`, task);
  step.finishCancelIfDone();
}

function pollAnswered(step: Step, task: TaskView, rawState: unknown, rawProgress: unknown) {
  if (task.unreachableSince !== null && wantsPolling(step.release, task)) {
    const seconds = Math.round((step.now - task.unreachableSince) / 1000);
    step.note(
      'info',
      `${task.serviceName || task.taskServiceId} answers polls again after ${seconds} s`,
      task,
    );
  }
  task.unreachableSince = null;
  if (wantsPolling(step.release, task) && behind(step, task, rawState, rawProgress)) return;
  report(step, task, rawState, rawProgress, 'poll');
  step.pollLater(task);
}

/**
 * A poll showing a state before the one the phase's action leads to: the start/publish got no
 * answer and was perhaps not taken, or the service went back (it lost the work, e.g. restored from
 * a snapshot). Either way, wait for the action's deadline, then conclude the work is not there.
 * Returns true when handled.
 */
function behind(step: Step, task: TaskView, rawState: unknown, rawProgress: unknown): boolean {
  const action = step.release.state === 'running' ? 'start' : 'publish';
  const reported = mapServiceState(rawState);
  if (!reported || isFinalTask(reported) || TASK_RANK[reported] >= TASK_RANK[PHASE[action].task])
    return false;
  step.setProgress(task, rawProgress);
  if (task.unconfirmedUntil === null) {
    // polls are only sent to tasks being polled, so this answer is not older than the state it contradicts
    const wait = callDeadline(action, task.deadlines);
    step.note(
      'warning',
      `${describeTask(task)} reports ${String(rawState)} after it had reported ${task.state}; if it still does in ${Math.round(wait / 1000)} s, the task fails`,
      task,
    );
    task.unconfirmedUntil = step.now + wait;
  }
  if (step.now < task.unconfirmedUntil) {
    step.pollLater(task);
    return true;
  }
  const message = `${action} of ${describeTask(task)} was not taken: the service still reports ${String(rawState)} after the ${action} deadline`;
  step.note('error', message, task);
  step.fail(task, 'failed', message);
  return true;
}

function pollFailed(step: Step, task: TaskView, outcome: FailedCall, reason: string) {
  // only tasks still being polled: a failed poll answered after a callback staged the task is stale
  if (!wantsPolling(step.release, task)) return;
  if (outcome !== 'unknown') {
    step.note('error', failedRequest(task, 'get_status', reason, outcome), task);
    step.fail(task, 'failed', haltMessage(task, 'get_status', reason, outcome));
    return;
  }
  const tolerance = step.ctx.timing.outageToleranceMs;
  if (task.unreachableSince === null) {
    task.unreachableSince = step.now;
    step.note(
      'warning',
      `${failedRequest(task, 'get_status', reason)}; polling again for up to ${Math.round(tolerance / 1000)} s`,
      task,
    );
  }
  if (step.now - task.unreachableSince < tolerance) {
    step.pollLater(task);
    return;
  }
  const seconds = Math.round((step.now - task.unreachableSince) / 1000);
  const message = `${task.serviceName || task.taskServiceId} did not answer polls for ${seconds} s (last: ${reason})`;
  step.note('error', message, task);
  step.fail(task, 'failed', message);
}

function pollHint(step: Step, task: TaskView) {
  const r = step.release;
  if (isFinalRelease(r.state) || isFinalTask(task.state)) return;
  const first = task.hintedAt === null;
  if (first) {
    step.note(
      'warning',
      `callbacks from ${task.serviceName || task.taskServiceId} arrive without credentials; they are treated as a hint to poll`,
      task,
    );
  }
  const recent = task.hintedAt !== null && step.now - task.hintedAt < step.ctx.timing.hintIntervalMs;
  if (!first && recent) return;
  task.hintedAt = step.now;
  if (wantsPolling(r, task)) step.poll(task, 0);
}

function report(step: Step, task: TaskView, rawState: unknown, rawProgress: unknown, source: string) {
  const r = step.release;
  const reported = rawState === undefined || rawState === null ? undefined : mapServiceState(rawState);
  if (isFinalRelease(r.state) || isFinalTask(task.state)) {
    if (reported === 'failed' && task.state !== 'failed')
      step.note('warning', `task ${task.kfId} reported failed after it was ${task.state} (ignored)`, task);
    return;
  }
  if (rawState !== undefined && rawState !== null && reported === undefined) {
    step.note(
      'warning',
      `task ${task.kfId} reported unknown state ${JSON.stringify(rawState)} in ${source}; state kept`,
      task,
    );
    step.setProgress(task, rawProgress);
    return;
  }
  if (reported === 'failed' || reported === 'canceled') {
    // while canceling the task is still waiting for its cancel answer; the release keeps its reason
    step.moveTask(task, reported);
    const by = task.serviceName || task.taskServiceId;
    step.halt(
      reported === 'failed'
        ? { reason: 'fail', task, message: `${by} reported the task failed (${source})` }
        : { reason: 'cancel', task, message: `${by} reported the task canceled (${source})` },
    );
    return;
  }
  if (r.state === 'canceling') return;
  if (!reported) {
    step.setProgress(task, rawProgress);
    return;
  }
  advance(step, task, reported, rawProgress, source);
}

/** A report of a known, non-final state: move the task forward if the release's phase allows it. */
function advance(step: Step, task: TaskView, reported: TaskState, rawProgress: unknown, source: string) {
  const r = step.release;
  const rank = TASK_RANK[reported];
  if (rank < TASK_RANK[task.state]) {
    // A poll answered before a newer callback is stale, not wrong: drop it quietly.
    if (source !== 'poll') refuse(step, task, reported, source);
    return;
  }
  confirmIfShown(task, r.state, reported);
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

/** A report showing the work of an unanswered start/publish settles its outcome. */
function confirmIfShown(task: TaskView, releaseState: ReleaseState, reported: TaskState) {
  if (task.unconfirmedUntil === null) return;
  const phase = releaseState === 'publishing' ? PHASE.publish : PHASE.start;
  if (TASK_RANK[reported] >= TASK_RANK[phase.task]) task.unconfirmedUntil = null;
}

function refuse(step: Step, task: TaskView, reported: TaskState, source: string) {
  step.refused = `task ${task.kfId} may not move from ${task.state} to ${reported} while its release is ${step.release.state}`;
  step.note('warning', `refused ${source} report: ${step.refused}`, task);
}

function serviceDown(step: Step, taskServiceId: string, reason?: string) {
  const r = step.release;
  if (isFinalRelease(r.state)) return;
  const hit = r.tasks.flatMap((t, i) =>
    t.taskServiceId === taskServiceId && !isFinalTask(t.state) ? [step.mutableAt(i)] : [],
  );
  if (hit.length === 0) return;
  const name = hit[0]!.serviceName || taskServiceId;
  const message = `task service ${name} is down${reason ? `: ${reason}` : ''}`;
  for (const t of hit) {
    step.note('error', message, t);
    step.moveTask(t, 'failed');
  }
  step.halt({ reason: 'fail', task: hit[0], message });
}
