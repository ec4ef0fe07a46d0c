import { describe, expect, test } from 'bun:test';
import {
  type AwaitedAction,
  decide,
  type HaltReason,
  type LifecycleEvent,
  nextVersion,
  type Outcome,
  publishedVersion,
  type ReleaseView,
  type TaskView,
  wantsPolling,
} from './lifecycle';
import { type Action, RELEASE_STATES, type ReleaseState, TASK_STATES, type TaskState } from './states';

/*
 * Table-driven tests of spec/lifecycle.md: every release state × every event kind, plus scenarios.
 * Expectations follow the spec, not the implementation; see the report for known discrepancies.
 */

// ---------------------------------------------------------------------------------------------
// fixtures

const RE = 'RE_3G2409A2';
const T1 = 'TA_00000001';
const T2 = 'TA_00000002';
const T3 = 'TA_00000003';
const TS = (taskId: string) => `TS_${taskId.slice(3)}`;
const TASK_IDS = [T1, T2, T3];

const DEFAULT_PROGRESS: Record<TaskState, number | null> = {
  waiting: null,
  initialized: 0,
  running: 30,
  staged: 100,
  publishing: 50,
  published: 100,
  rejected: null,
  failed: 30,
  canceled: 30,
};

type TaskSpec = [TaskState, AwaitedAction | null];

function task(i: number, [state, awaiting]: TaskSpec): TaskView {
  const kfId = TASK_IDS[i]!;
  return { kfId, taskServiceId: TS(kfId), state, progress: DEFAULT_PROGRESS[state], awaiting };
}

function release(
  state: ReleaseState,
  tasks: TaskSpec[],
  opts: { version?: string; isMajor?: boolean; haltReason?: HaltReason | null } = {},
): ReleaseView {
  return {
    kfId: RE,
    state,
    version: opts.version ?? '0.1.1',
    isMajor: opts.isMajor ?? false,
    haltReason: opts.haltReason ?? null,
    tasks: tasks.map((t, i) => task(i, t)),
  };
}

/** A release in each state with tasks as the coordinator would have them; T2 is the task events target. */
const FIXTURES: Record<ReleaseState, () => ReleaseView> = {
  // created, begin not applied yet
  waiting: () =>
    release('waiting', [
      ['waiting', null],
      ['waiting', null],
      ['waiting', null],
    ]),
  // T1 and T3 answered initialize; T2's initialize is in flight
  initializing: () =>
    release('initializing', [
      ['initialized', null],
      ['waiting', 'initialize'],
      ['initialized', null],
    ]),
  // T1 answered start with "staged"; T2's start is in flight
  running: () =>
    release('running', [
      ['staged', null],
      ['initialized', 'start'],
    ]),
  staged: () =>
    release('staged', [
      ['staged', null],
      ['staged', null],
    ]),
  // T1 answered publish with "published"; T2's publish is in flight
  publishing: () =>
    release('publishing', [
      ['published', null],
      ['staged', 'publish'],
    ]),
  published: () =>
    release(
      'published',
      [
        ['published', null],
        ['published', null],
      ],
      { version: '0.2.0' },
    ),
  // T3 failed; T1's cancel was answered; T2's cancel is in flight
  canceling: () =>
    release(
      'canceling',
      [
        ['canceled', null],
        ['running', 'cancel'],
        ['failed', null],
      ],
      { haltReason: 'fail' },
    ),
  canceled: () =>
    release(
      'canceled',
      [
        ['canceled', null],
        ['canceled', null],
      ],
      { haltReason: 'cancel' },
    ),
  failed: () =>
    release(
      'failed',
      [
        ['rejected', null],
        ['canceled', null],
        ['canceled', null],
      ],
      { haltReason: 'fail' },
    ),
};

// ---------------------------------------------------------------------------------------------
// events (all task events target T2)

const REASON = 'HTTP 503';
const TIMEOUT_WHAT = `task ${T2}`;

const EVENTS = {
  begin: { kind: 'begin' },
  publish: { kind: 'publish' },
  cancel: { kind: 'cancel' },
  'ok:initialize': { kind: 'call_ok', taskId: T2, action: 'initialize', state: 'pending', progress: 0 },
  'ok:start': { kind: 'call_ok', taskId: T2, action: 'start', state: 'running', progress: 10 },
  'ok:get_status': { kind: 'call_ok', taskId: T2, action: 'get_status', state: 'running', progress: 40 },
  'ok:publish': { kind: 'call_ok', taskId: T2, action: 'publish', state: 'publishing', progress: 10 },
  'ok:cancel': { kind: 'call_ok', taskId: T2, action: 'cancel', state: 'canceled' },
  'failed:initialize': { kind: 'call_failed', taskId: T2, action: 'initialize', reason: REASON },
  'failed:start': { kind: 'call_failed', taskId: T2, action: 'start', reason: REASON },
  'failed:get_status': { kind: 'call_failed', taskId: T2, action: 'get_status', reason: REASON },
  'failed:publish': { kind: 'call_failed', taskId: T2, action: 'publish', reason: REASON },
  'failed:cancel': { kind: 'call_failed', taskId: T2, action: 'cancel', reason: REASON },
  'report:initialized': { kind: 'report', taskId: T2, state: 'initialized' },
  'report:running': { kind: 'report', taskId: T2, state: 'running' },
  'report:staged': { kind: 'report', taskId: T2, state: 'staged' },
  'report:publishing': { kind: 'report', taskId: T2, state: 'publishing' },
  'report:published': { kind: 'report', taskId: T2, state: 'published' },
  'report:canceled': { kind: 'report', taskId: T2, state: 'canceled' },
  'report:failed': { kind: 'report', taskId: T2, state: 'failed' },
  service_down: { kind: 'service_down', taskServiceId: TS(T2), reason: 'health check failed 4 times' },
  timeout: { kind: 'timeout', what: TIMEOUT_WHAT },
} satisfies Record<string, LifecycleEvent>;
type EventName = keyof typeof EVENTS;
const EVENT_NAMES = Object.keys(EVENTS) as EventName[];

// ---------------------------------------------------------------------------------------------
// expectations

type LogSpec = [type: unknown, message: unknown];

interface Expected {
  state?: ReleaseState;
  /** states of the fixture's tasks, in order; default unchanged */
  tasks?: TaskState[];
  /** 'action taskId' */
  commands?: string[];
  abort?: boolean;
  refused?: boolean;
  log?: LogSpec[];
  version?: string;
  /** progress of T2 */
  progress?: number | null;
}

const relLog = (from: ReleaseState, to: ReleaseState, version = '0.1.1'): LogSpec => [
  to === 'failed' ? 'error' : 'info',
  `release ${RE}, version ${version} changed from ${from} to ${to}`,
];
const taskLog = (id: string, from: TaskState, to: TaskState): LogSpec => [
  to === 'failed' || to === 'rejected' ? 'error' : 'info',
  `task ${id} changed from ${from} to ${to}`,
];
const requestFailed = (action: string): LogSpec =>
  action === 'get_status'
    ? ['error', expect.stringContaining(REASON)]
    : ['error', `request to ${action} task failed: ${REASON}`];
const warning = (about: string): LogSpec => ['warning', expect.stringContaining(about)];
const serviceDownLog: LogSpec = ['error', expect.stringContaining(TS(T2))];
const timeoutLog: LogSpec = [expect.any(String), expect.stringContaining(TIMEOUT_WHAT)];
const cmds = (action: string, ...ids: string[]) => ids.map((id) => `${action} ${id}`);

const NONE: Expected = {};
const REFUSED: Expected = { refused: true };
/** impossible report: refused, a warning naming the task, nothing else changes */
const IMPOSSIBLE: Expected = { refused: true, log: [warning(T2)] };
/** late failure on a final release: recorded as a warning, nothing else */
const LATE_FAILURE: Expected = { log: [warning(T2)] };

/** every event on a final release is ignored; publish/cancel answer 409 */
const finalRow = (): Record<EventName, Expected> => {
  const row = Object.fromEntries(EVENT_NAMES.map((e) => [e, NONE])) as Record<EventName, Expected>;
  row.publish = REFUSED;
  row.cancel = REFUSED; // spec: "409 or unchanged 200, no effect"
  row['report:failed'] = LATE_FAILURE;
  return row;
};

const TABLE: Record<ReleaseState, Record<EventName, Expected>> = {
  waiting: {
    begin: {
      state: 'initializing',
      commands: cmds('initialize', T1, T2, T3),
      log: [relLog('waiting', 'initializing')],
    },
    publish: REFUSED,
    cancel: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [relLog('waiting', 'canceling')],
    },
    'ok:initialize': NONE,
    'ok:start': NONE,
    'ok:get_status': IMPOSSIBLE,
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'report:initialized': IMPOSSIBLE,
    'report:running': IMPOSSIBLE,
    'report:staged': IMPOSSIBLE,
    'report:publishing': IMPOSSIBLE,
    'report:published': IMPOSSIBLE,
    'report:canceled': {
      state: 'canceling',
      tasks: ['waiting', 'canceled', 'waiting'],
      commands: cmds('cancel', T1, T3),
      abort: true,
      log: [taskLog(T2, 'waiting', 'canceled'), relLog('waiting', 'canceling')],
    },
    'report:failed': {
      state: 'canceling',
      tasks: ['waiting', 'failed', 'waiting'],
      commands: cmds('cancel', T1, T3),
      abort: true,
      log: [taskLog(T2, 'waiting', 'failed'), relLog('waiting', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['waiting', 'failed', 'waiting'],
      commands: cmds('cancel', T1, T3),
      abort: true,
      log: [serviceDownLog, taskLog(T2, 'waiting', 'failed'), relLog('waiting', 'canceling')],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [timeoutLog, relLog('waiting', 'canceling')],
    },
  },

  initializing: {
    begin: NONE,
    publish: REFUSED,
    cancel: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [relLog('initializing', 'canceling')],
    },
    'ok:initialize': {
      state: 'running',
      tasks: ['initialized', 'initialized', 'initialized'],
      commands: cmds('start', T1, T2, T3),
      log: [taskLog(T2, 'waiting', 'initialized'), relLog('initializing', 'running')],
    },
    'ok:start': NONE,
    'ok:get_status': IMPOSSIBLE,
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': {
      state: 'canceling',
      tasks: ['initialized', 'rejected', 'initialized'],
      commands: cmds('cancel', T1, T3),
      abort: true,
      log: [
        requestFailed('initialize'),
        taskLog(T2, 'waiting', 'rejected'),
        relLog('initializing', 'canceling'),
      ],
    },
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    // the release still needs T2's 200 to initialize before it may run
    'report:initialized': {
      tasks: ['initialized', 'initialized', 'initialized'],
      log: [taskLog(T2, 'waiting', 'initialized')],
    },
    'report:running': IMPOSSIBLE,
    'report:staged': IMPOSSIBLE,
    'report:publishing': IMPOSSIBLE,
    'report:published': IMPOSSIBLE,
    'report:canceled': {
      state: 'canceling',
      tasks: ['initialized', 'canceled', 'initialized'],
      commands: cmds('cancel', T1, T3),
      abort: true,
      log: [taskLog(T2, 'waiting', 'canceled'), relLog('initializing', 'canceling')],
    },
    'report:failed': {
      state: 'canceling',
      tasks: ['initialized', 'failed', 'initialized'],
      commands: cmds('cancel', T1, T3),
      abort: true,
      log: [taskLog(T2, 'waiting', 'failed'), relLog('initializing', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['initialized', 'failed', 'initialized'],
      commands: cmds('cancel', T1, T3),
      abort: true,
      log: [serviceDownLog, taskLog(T2, 'waiting', 'failed'), relLog('initializing', 'canceling')],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [timeoutLog, relLog('initializing', 'canceling')],
    },
  },

  running: {
    begin: NONE,
    publish: REFUSED,
    cancel: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [relLog('running', 'canceling')],
    },
    'ok:initialize': NONE,
    'ok:start': {
      tasks: ['staged', 'running'],
      progress: 10,
      log: [taskLog(T2, 'initialized', 'running')],
    },
    'ok:get_status': {
      tasks: ['staged', 'running'],
      progress: 40,
      log: [taskLog(T2, 'initialized', 'running')],
    },
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [requestFailed('start'), taskLog(T2, 'initialized', 'failed'), relLog('running', 'canceling')],
    },
    // T2 is not being polled (its start is in flight): a failed poll answer is stale
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'report:initialized': NONE,
    'report:running': { tasks: ['staged', 'running'], log: [taskLog(T2, 'initialized', 'running')] },
    'report:staged': {
      state: 'staged',
      tasks: ['staged', 'staged'],
      progress: 100,
      log: [taskLog(T2, 'initialized', 'staged'), relLog('running', 'staged')],
    },
    'report:publishing': IMPOSSIBLE,
    'report:published': IMPOSSIBLE,
    'report:canceled': {
      state: 'canceling',
      tasks: ['staged', 'canceled'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [taskLog(T2, 'initialized', 'canceled'), relLog('running', 'canceling')],
    },
    'report:failed': {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [taskLog(T2, 'initialized', 'failed'), relLog('running', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [serviceDownLog, taskLog(T2, 'initialized', 'failed'), relLog('running', 'canceling')],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [timeoutLog, relLog('running', 'canceling')],
    },
  },

  staged: {
    begin: NONE,
    publish: {
      state: 'publishing',
      commands: cmds('publish', T1, T2),
      log: [relLog('staged', 'publishing')],
    },
    cancel: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [relLog('staged', 'canceling')],
    },
    'ok:initialize': NONE,
    'ok:start': NONE,
    // a poll answered before the task staged is stale, not wrong: dropped quietly (callbacks are refused)
    'ok:get_status': NONE,
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE, // no polls while staged
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'report:initialized': IMPOSSIBLE, // backwards
    'report:running': IMPOSSIBLE, // backwards
    'report:staged': NONE,
    'report:publishing': IMPOSSIBLE, // not published yet
    'report:published': IMPOSSIBLE,
    'report:canceled': {
      state: 'canceling',
      tasks: ['staged', 'canceled'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [taskLog(T2, 'staged', 'canceled'), relLog('staged', 'canceling')],
    },
    'report:failed': {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [taskLog(T2, 'staged', 'failed'), relLog('staged', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [serviceDownLog, taskLog(T2, 'staged', 'failed'), relLog('staged', 'canceling')],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [timeoutLog, relLog('staged', 'canceling')],
    },
  },

  publishing: {
    begin: NONE,
    publish: REFUSED,
    // T1 is published (final): only T2 gets a cancel
    cancel: {
      state: 'canceling',
      commands: cmds('cancel', T2),
      abort: true,
      log: [relLog('publishing', 'canceling')],
    },
    'ok:initialize': NONE,
    'ok:start': NONE,
    'ok:get_status': NONE, // a stale poll ("running" is behind staged) is dropped quietly
    'ok:publish': {
      tasks: ['published', 'publishing'],
      progress: 10,
      log: [taskLog(T2, 'staged', 'publishing')],
    },
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    // T2 is not being polled (its publish is in flight): a failed poll answer is stale
    'failed:get_status': NONE,
    'failed:publish': {
      state: 'failed',
      tasks: ['published', 'failed'],
      abort: true,
      log: [
        requestFailed('publish'),
        taskLog(T2, 'staged', 'failed'),
        relLog('publishing', 'canceling'),
        relLog('canceling', 'failed'),
      ],
    },
    'failed:cancel': NONE,
    'report:initialized': IMPOSSIBLE,
    'report:running': IMPOSSIBLE,
    'report:staged': NONE,
    'report:publishing': {
      tasks: ['published', 'publishing'],
      log: [taskLog(T2, 'staged', 'publishing')],
    },
    'report:published': {
      state: 'published',
      tasks: ['published', 'published'],
      version: '0.2.0',
      progress: 100,
      log: [taskLog(T2, 'staged', 'published'), relLog('publishing', 'published', '0.2.0')],
    },
    'report:canceled': {
      state: 'canceled',
      tasks: ['published', 'canceled'],
      abort: true,
      log: [
        taskLog(T2, 'staged', 'canceled'),
        relLog('publishing', 'canceling'),
        relLog('canceling', 'canceled'),
      ],
    },
    'report:failed': {
      state: 'failed',
      tasks: ['published', 'failed'],
      abort: true,
      log: [
        taskLog(T2, 'staged', 'failed'),
        relLog('publishing', 'canceling'),
        relLog('canceling', 'failed'),
      ],
    },
    service_down: {
      state: 'failed',
      tasks: ['published', 'failed'],
      abort: true,
      log: [
        serviceDownLog,
        taskLog(T2, 'staged', 'failed'),
        relLog('publishing', 'canceling'),
        relLog('canceling', 'failed'),
      ],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T2),
      abort: true,
      log: [timeoutLog, relLog('publishing', 'canceling')],
    },
  },

  published: finalRow(),

  canceling: {
    begin: NONE,
    publish: REFUSED,
    cancel: NONE, // already canceling: stays, reason kept (fail)
    'ok:initialize': NONE,
    'ok:start': NONE,
    'ok:get_status': NONE,
    'ok:publish': NONE,
    // last cancel answered: release failed (reason was a failure)
    'ok:cancel': {
      state: 'failed',
      tasks: ['canceled', 'canceled', 'failed'],
      log: [taskLog(T2, 'running', 'canceled'), relLog('canceling', 'failed')],
    },
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    // a failed cancel still cancels the task, with an error event
    'failed:cancel': {
      state: 'failed',
      tasks: ['canceled', 'canceled', 'failed'],
      log: [requestFailed('cancel'), taskLog(T2, 'running', 'canceled'), relLog('canceling', 'failed')],
    },
    // progress reports are moot once the release is being canceled
    'report:initialized': NONE,
    'report:running': NONE,
    'report:staged': NONE,
    'report:publishing': NONE,
    'report:published': NONE,
    // spec: "poll or callback says canceled | any non-final | task → canceled"; T2's cancel call is
    // still in flight, so the release keeps waiting for it
    'report:canceled': {
      tasks: ['canceled', 'canceled', 'failed'],
      log: [taskLog(T2, 'running', 'canceled')],
    },
    // spec: "poll or callback says failed | any non-final | task → failed"
    'report:failed': {
      tasks: ['canceled', 'failed', 'failed'],
      log: [taskLog(T2, 'running', 'failed')],
    },
    // spec: "service down | any non-final with a non-final task of that service | that task → failed"
    service_down: {
      tasks: ['canceled', 'failed', 'failed'],
      log: [serviceDownLog, taskLog(T2, 'running', 'failed')],
    },
    timeout: { log: [timeoutLog] },
  },

  canceled: finalRow(),
  failed: finalRow(),
};

// ---------------------------------------------------------------------------------------------
// helpers

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** decide() on a deep-frozen copy, asserting that the input is left untouched. */
function run(input: ReleaseView, event: LifecycleEvent): Outcome {
  const before = structuredClone(input);
  const frozen = deepFreeze(structuredClone(input));
  const out = decide(frozen, event);
  expect(frozen).toEqual(before);
  return out;
}

const logOf = (out: Outcome): unknown[][] => out.log.map((l) => [l.type, l.message]);
const commandsOf = (out: Outcome) => out.commands.map((c) => `${c.action} ${c.taskId}`);
const taskStates = (r: ReleaseView) => r.tasks.map((t) => t.state);
const byId = (r: ReleaseView, id: string) => r.tasks.find((t) => t.kfId === id)!;

/** Invariants that hold for every outcome. */
function checkInvariants(input: ReleaseView, out: Outcome) {
  // every command's task now waits for that command's answer
  for (const c of out.commands) expect(byId(out.release, c.taskId).awaiting).toBe(c.action as AwaitedAction);
  // no task gets two commands from one event
  const ids = out.commands.map((c) => c.taskId);
  expect(new Set(ids).size).toBe(ids.length);
  // task transition events carry their task (and its service)
  for (const l of out.log) {
    const m = /^task (TA_\w+) changed from/.exec(l.message);
    if (m) {
      expect(l.taskId).toBe(m[1]);
      expect(l.taskServiceId).toBe(TS(m[1]!));
    }
  }
  // identity of the release never changes
  expect(out.release.kfId).toBe(input.kfId);
  expect(out.release.tasks.map((t) => t.kfId)).toEqual(input.tasks.map((t) => t.kfId));
}

// ---------------------------------------------------------------------------------------------
// the state × event table

const ROWS = RELEASE_STATES.flatMap((state) =>
  EVENT_NAMES.map((event) => [state, event, TABLE[state][event]] as const),
);

describe('every release state × every event', () => {
  test('the table covers 9 states × 22 events', () => {
    expect(ROWS.length).toBe(9 * 22);
  });

  test.each(ROWS)('%s × %s', (state, eventName, exp) => {
    const input = FIXTURES[state]();
    const out = run(input, EVENTS[eventName]);

    expect(out.release.state).toBe(exp.state ?? state);
    expect(taskStates(out.release)).toEqual(exp.tasks ?? taskStates(input));
    expect(commandsOf(out)).toEqual(exp.commands ?? []);
    expect(out.abort).toBe(exp.abort ?? false);
    if (exp.refused) {
      expect(out.refused).toEqual(expect.any(String));
      // refused: nothing changes at all
      expect(out.release).toEqual(input);
    } else {
      expect(out.refused).toBeUndefined();
    }
    expect(logOf(out)).toEqual(exp.log ?? []);
    expect(out.release.version).toBe(exp.version ?? input.version);
    if (exp.progress !== undefined) expect(byId(out.release, T2).progress).toBe(exp.progress);
    // an event that changes nothing leaves the release exactly as it was
    if (!exp.state && !exp.tasks && !exp.commands && exp.progress === undefined) {
      expect(out.release).toEqual(input);
    }
    checkInvariants(input, out);
  });
});

// ---------------------------------------------------------------------------------------------
// scenarios

/** Applies events in order; each step's output is the next step's input. */
function play(start: ReleaseView, events: LifecycleEvent[]) {
  let r = start;
  const log: [string, string][] = [];
  const commands: string[] = [];
  for (const e of events) {
    const out = run(r, e);
    checkInvariants(r, out);
    r = out.release;
    log.push(...out.log.map((l) => [l.type, l.message] as [string, string]));
    commands.push(...commandsOf(out));
  }
  return { release: r, log, commands };
}

const ok = (taskId: string, action: Action, state?: unknown) =>
  ({ kind: 'call_ok', taskId, action, state }) as LifecycleEvent;
const fail = (taskId: string, action: AwaitedAction | 'get_status', reason = REASON) =>
  ({ kind: 'call_failed', taskId, action, reason }) as LifecycleEvent;
const poll = (taskId: string, state: unknown, progress?: unknown) =>
  ({ kind: 'call_ok', taskId, action: 'get_status', state, progress }) as LifecycleEvent;
const reportEv = (taskId: string, state: unknown, progress?: unknown) =>
  ({ kind: 'report', taskId, state, progress }) as LifecycleEvent;

const fresh = (n: number, opts: { isMajor?: boolean } = {}) =>
  release(
    'waiting',
    Array.from({ length: n }, () => ['waiting', null] as TaskSpec),
    opts,
  );

describe('happy path', () => {
  const ids = [T1, T2, T3];
  const steps = (isMajor: boolean) => {
    const r0 = fresh(3, { isMajor });
    const s1 = play(r0, [{ kind: 'begin' }]);
    expect(s1.release.state).toBe('initializing');
    expect(s1.commands).toEqual(cmds('initialize', ...ids));

    const s2 = play(
      s1.release,
      ids.map((id) => ok(id, 'initialize', 'pending')),
    );
    expect(s2.release.state).toBe('running');
    expect(taskStates(s2.release)).toEqual(['initialized', 'initialized', 'initialized']);
    expect(s2.commands).toEqual(cmds('start', ...ids));

    const s3 = play(
      s2.release,
      ids.map((id) => ok(id, 'start', 'running')),
    );
    expect(s3.release.state).toBe('running');
    expect(taskStates(s3.release)).toEqual(['running', 'running', 'running']);
    expect(s3.release.tasks.every((t) => t.awaiting === null)).toBe(true);
    expect(s3.release.tasks.every((t) => wantsPolling(s3.release, t))).toBe(true);
    expect(s3.commands).toEqual([]);

    const s4a = play(s3.release, [poll(T1, 'staged'), poll(T2, 'staged')]);
    expect(s4a.release.state).toBe('running');
    const s4 = play(s4a.release, [poll(T3, 'staged')]);
    expect(s4.release.state).toBe('staged');
    expect(s4.log).toEqual([
      ['info', `task ${T3} changed from running to staged`],
      ['info', `release ${RE}, version 0.1.1 changed from running to staged`],
    ]);
    expect(s4.release.tasks.some((t) => wantsPolling(s4.release, t))).toBe(false);

    const s5 = play(s4.release, [{ kind: 'publish' }]);
    expect(s5.release.state).toBe('publishing');
    expect(s5.commands).toEqual(cmds('publish', ...ids));

    const s6 = play(
      s5.release,
      ids.map((id) => ok(id, 'publish', 'publishing')),
    );
    expect(taskStates(s6.release)).toEqual(['publishing', 'publishing', 'publishing']);
    expect(s6.release.tasks.every((t) => wantsPolling(s6.release, t))).toBe(true);

    const s7 = play(
      s6.release,
      ids.map((id) => poll(id, 'published')),
    );
    expect(s7.release.state).toBe('published');
    expect(taskStates(s7.release)).toEqual(['published', 'published', 'published']);
    expect(s7.commands).toEqual([]);
    return s7;
  };

  test('0.1.1 → published as 0.2.0', () => {
    const end = steps(false);
    expect(end.release.version).toBe('0.2.0');
    expect(end.log.at(-1)).toEqual([
      'info',
      `release ${RE}, version 0.2.0 changed from publishing to published`,
    ]);
  });

  test('is_major: 0.1.1 → published as 1.0.0', () => {
    expect(steps(true).release.version).toBe('1.0.0');
  });

  test('replies that are already staged/published skip running/publishing', () => {
    const s = play(fresh(2), [
      { kind: 'begin' },
      ok(T1, 'initialize'),
      ok(T2, 'initialize'),
      ok(T1, 'start', 'staged'),
      ok(T2, 'start', 'STAGED'),
    ]);
    expect(s.release.state).toBe('staged');
    const p = play(s.release, [
      { kind: 'publish' },
      ok(T1, 'publish', 'published'),
      ok(T2, 'publish', 'Published'),
    ]);
    expect(p.release.state).toBe('published');
    expect(p.release.version).toBe('0.2.0');
  });

  test('a callback "staged" before start has returned is accepted; the late start reply is harmless', () => {
    const s = play(fresh(1), [{ kind: 'begin' }, ok(T1, 'initialize'), reportEv(T1, 'staged')]);
    expect(s.release.state).toBe('staged');
    const late = run(s.release, ok(T1, 'start', 'running'));
    expect(late.release.state).toBe('staged');
    expect(byId(late.release, T1).state).toBe('staged');
    expect(late.log).toEqual([]);
    expect(late.commands).toEqual([]);
  });

  test('partial initialize answers keep the release initializing', () => {
    const s = play(fresh(3), [{ kind: 'begin' }, ok(T1, 'initialize'), ok(T3, 'initialize')]);
    expect(s.release.state).toBe('initializing');
    expect(taskStates(s.release)).toEqual(['initialized', 'waiting', 'initialized']);
    expect(s.commands).toEqual(cmds('initialize', T1, T2, T3));
  });
});

describe('release without tasks', () => {
  test('begin → running → staged at once, with an event for each step', () => {
    const out = run(fresh(0), { kind: 'begin' });
    expect(out.release.state).toBe('staged');
    expect(out.commands).toEqual([]);
    expect(logOf(out)).toEqual([
      ['info', `release ${RE}, version 0.1.1 changed from waiting to running`],
      ['info', `release ${RE}, version 0.1.1 changed from running to staged`],
    ]);
  });

  test('publish → published at once, no commands, version bumped', () => {
    const out = run(release('staged', []), { kind: 'publish' });
    expect(out.release.state).toBe('published');
    expect(out.release.version).toBe('0.2.0');
    expect(out.commands).toEqual([]);
    expect(out.refused).toBeUndefined();
    expect(out.log.map((l) => l.message).at(-1)).toBe(
      `release ${RE}, version 0.2.0 changed from publishing to published`,
    );
  });

  test('cancel → canceled at once (no cancel calls to wait for)', () => {
    const out = run(release('staged', []), { kind: 'cancel' });
    expect(out.release.state).toBe('canceled');
    expect(out.commands).toEqual([]);
  });
});

describe('initialize refused', () => {
  test('task rejected, others canceled, release failed after every cancel answer', () => {
    const s1 = play(fresh(3), [{ kind: 'begin' }, ok(T1, 'initialize')]);
    const s2 = run(s1.release, fail(T2, 'initialize'));
    expect(s2.release.state).toBe('canceling');
    expect(s2.release.haltReason).toBe('fail');
    expect(s2.abort).toBe(true);
    expect(taskStates(s2.release)).toEqual(['initialized', 'rejected', 'waiting']);
    expect(commandsOf(s2)).toEqual(cmds('cancel', T1, T3));
    expect(logOf(s2)).toEqual([
      ['error', `request to initialize task failed: ${REASON}`],
      ['error', `task ${T2} changed from waiting to rejected`],
      ['info', `release ${RE}, version 0.1.1 changed from initializing to canceling`],
    ]);

    // T3's initialize answer arrives after the cancel went out: stale, ignored
    const stale = run(s2.release, ok(T3, 'initialize'));
    expect(stale.release).toEqual(s2.release);
    expect(stale.log).toEqual([]);
    // so is its aborted call failing
    expect(run(s2.release, fail(T3, 'initialize')).release).toEqual(s2.release);

    const s3 = run(s2.release, ok(T1, 'cancel'));
    expect(s3.release.state).toBe('canceling');
    expect(byId(s3.release, T1).state).toBe('canceled');

    const s4 = run(s3.release, ok(T3, 'cancel'));
    expect(s4.release.state).toBe('failed');
    expect(taskStates(s4.release)).toEqual(['canceled', 'rejected', 'canceled']);
    expect(logOf(s4)).toEqual([
      ['info', `task ${T3} changed from waiting to canceled`],
      ['error', `release ${RE}, version 0.1.1 changed from canceling to failed`],
    ]);
  });
});

describe('halt', () => {
  const staged3 = () =>
    release('staged', [
      ['staged', null],
      ['staged', null],
      ['staged', null],
    ]);

  test('cancel answered with a failure still cancels the task, with an error event', () => {
    const s = play(staged3(), [{ kind: 'cancel' }]);
    const out = run(s.release, fail(T2, 'cancel', 'connection refused'));
    expect(byId(out.release, T2).state).toBe('canceled');
    expect(byId(out.release, T2).awaiting).toBeNull();
    expect(logOf(out)).toEqual([
      ['error', 'request to cancel task failed: connection refused'],
      ['info', `task ${T2} changed from staged to canceled`],
    ]);
    expect(out.release.state).toBe('canceling');
  });

  test.each([
    ['user cancel', { kind: 'cancel' } as LifecycleEvent, 'canceled'],
    ['timeout', { kind: 'timeout', what: `release ${RE}` } as LifecycleEvent, 'canceled'],
    ['task reports canceled', reportEv(T1, 'cancelled'), 'canceled'],
    ['task reports failed', reportEv(T1, 'failed'), 'failed'],
    ['service down', { kind: 'service_down', taskServiceId: TS(T1) } as LifecycleEvent, 'failed'],
  ] as const)('%s: waits for every cancel answer, then %s', (_label, trigger, final) => {
    const s1 = run(staged3(), trigger);
    expect(s1.release.state).toBe('canceling');
    expect(s1.abort).toBe(true);
    const pending = s1.release.tasks.filter((t) => t.awaiting === 'cancel').map((t) => t.kfId);
    expect(pending.length).toBeGreaterThan(0);
    let r = s1.release;
    for (const [i, id] of pending.entries()) {
      const out = run(r, i % 2 ? fail(id, 'cancel') : ok(id, 'cancel'));
      r = out.release;
      expect(r.state).toBe(i === pending.length - 1 ? final : 'canceling');
      expect(out.abort).toBe(false);
    }
    expect(r.tasks.every((t) => ['canceled', 'failed'].includes(t.state))).toBe(true);
    expect(r.tasks.some((t) => t.awaiting === 'cancel')).toBe(false);
  });

  test('cancel with a reason records it', () => {
    const out = run(staged3(), { kind: 'cancel', reason: 'canceled by alice' });
    expect(out.log.map((l) => l.message)).toContain('canceled by alice');
    expect(out.release.haltReason).toBe('cancel');
  });

  test('a second cancel while canceling keeps the original reason', () => {
    const s = play(staged3(), [reportEv(T1, 'failed'), { kind: 'cancel' }]);
    expect(s.release.haltReason).toBe('fail');
    expect(s.commands).toEqual(cmds('cancel', T2, T3));
  });
});

describe('stale answers (awaiting mismatch) are ignored', () => {
  const cases: [string, ReleaseState, LifecycleEvent][] = [
    ['initialize answer for a task not waiting for it', 'initializing', ok(T1, 'initialize')],
    ['initialize failure for a task not waiting for it', 'initializing', fail(T1, 'initialize')],
    ['start answer for a task whose start was answered', 'running', ok(T1, 'start', 'running')],
    ['start failure for a task whose start was answered', 'running', fail(T1, 'start')],
    ['publish answer during running', 'running', ok(T2, 'publish', 'published')],
    ['publish failure for an answered publish', 'publishing', fail(T1, 'publish')],
    ['start answer overtaken by a cancel', 'canceling', ok(T2, 'start', 'staged')],
    ['start failure overtaken by a cancel', 'canceling', fail(T2, 'start')],
    ['cancel answer for a task not canceled', 'running', ok(T1, 'cancel')],
    ['cancel failure for a task not canceled', 'staged', fail(T1, 'cancel')],
    ['answer for an unknown task', 'running', ok('TA_ZZZZZZZZ', 'start', 'running')],
  ];
  test.each(cases)('%s (%s)', (_label, state, event) => {
    const input = FIXTURES[state]();
    const out = run(input, event);
    expect(out.release).toEqual(input);
    expect(out.commands).toEqual([]);
    expect(out.log).toEqual([]);
    expect(out.abort).toBe(false);
  });
});

describe('service state aliases', () => {
  const running2 = () =>
    release('running', [
      ['running', null],
      ['running', null],
    ]);

  test.each([
    ['cancelled', 'canceled'],
    ['cancelling', 'canceled'],
    ['canceling', 'canceled'],
    ['STAGED', 'staged'],
    ['Failed', 'failed'],
  ] as const)('running task reports %p → %s', (raw, mapped) => {
    const out = run(running2(), reportEv(T2, raw));
    expect(byId(out.release, T2).state).toBe(mapped);
  });

  test.each(['pending', 'initialized'])('initializing task reports %p → initialized', (raw) => {
    const out = run(FIXTURES.initializing(), reportEv(T2, raw));
    expect(byId(out.release, T2).state).toBe('initialized');
  });

  test.each(['exploded', 'queued', 'constructor', '__proto__', 'rejected'])(
    'unknown state %p → warning, state kept',
    (raw) => {
      const input = running2();
      const out = run(input, reportEv(T2, raw, 55));
      expect(out.release.state).toBe('running');
      expect(taskStates(out.release)).toEqual(['running', 'running']);
      expect(out.commands).toEqual([]);
      expect(out.abort).toBe(false);
      expect(out.log.length).toBe(1);
      expect(out.log[0]!.type).toBe('warning');
      expect(out.log[0]!.message).toContain(T2);
      expect(out.log[0]!.taskId).toBe(T2);
    },
  );

  test('unknown state in a poll answer → warning, state kept', () => {
    const out = run(running2(), poll(T2, 'weird'));
    expect(byId(out.release, T2).state).toBe('running');
    expect(out.log.map((l) => l.type)).toEqual(['warning']);
  });
});

describe('progress forms', () => {
  const running2 = () =>
    release('running', [
      ['running', null],
      ['running', null],
    ]);

  test.each([
    ['integer', 50, 50],
    ['float', 50.5, 50.5],
    ['"50%"', '50%', 50],
    ['"50"', '50', 50],
    ['null', null, null],
    ['missing', undefined, 30],
    ['garbage', 'garbage', 30],
    ['over 100', 250, 100],
  ] as const)('callback progress %s → %p', (_label, raw, value) => {
    const out = run(running2(), reportEv(T2, 'running', raw));
    expect(byId(out.release, T2).progress).toBe(value);
    expect(byId(out.release, T2).state).toBe('running');
    expect(out.log).toEqual([]);
  });

  test.each([
    ['integer', 70, 70],
    ['"70%"', '70%', 70],
    ['garbage', 'n/a', 30],
  ] as const)('poll progress %s → %p', (_label, raw, value) => {
    const out = run(running2(), poll(T2, 'running', raw));
    expect(byId(out.release, T2).progress).toBe(value);
  });

  test('progress-only callback (no state) updates progress only', () => {
    const out = run(running2(), { kind: 'report', taskId: T2, progress: '80%' });
    expect(byId(out.release, T2).progress).toBe(80);
    expect(out.release.state).toBe('running');
    expect(out.log).toEqual([]);
  });

  test('staged sets progress to 100', () => {
    const out = run(running2(), reportEv(T2, 'staged', 90));
    expect(byId(out.release, T2).progress).toBe(100);
  });
});

describe('impossible reports', () => {
  test('published while running → refused, warning, nothing else changes', () => {
    const input = release('running', [
      ['running', null],
      ['running', null],
    ]);
    const out = run(input, reportEv(T2, 'published', 100));
    expect(out.refused).toEqual(expect.any(String));
    expect(out.release).toEqual(input);
    expect(out.commands).toEqual([]);
    expect(out.abort).toBe(false);
    expect(out.log.map((l) => l.type)).toEqual(['warning']);
    expect(out.log[0]!.taskId).toBe(T2);
  });

  test('staged while initializing → refused', () => {
    const input = FIXTURES.initializing();
    const out = run(input, reportEv(T1, 'staged'));
    expect(out.refused).toEqual(expect.any(String));
    expect(out.release).toEqual(input);
  });

  test('backwards report (running for a staged task) → refused, progress untouched', () => {
    const input = release('running', [
      ['staged', null],
      ['running', null],
    ]);
    const out = run(input, reportEv(T1, 'running', 40));
    expect(out.refused).toEqual(expect.any(String));
    expect(out.release).toEqual(input);
    expect(out.log.map((l) => l.type)).toEqual(['warning']);
  });
});

describe('final releases', () => {
  test.each(['published', 'canceled', 'failed'] as const)(
    'late failure on a %s release → warning only',
    (state) => {
      const input = FIXTURES[state]();
      for (const e of [reportEv(T2, 'failed'), poll(T2, 'FAILED')]) {
        const out = run(input, e);
        expect(out.release).toEqual(input);
        expect(out.commands).toEqual([]);
        expect(out.abort).toBe(false);
        expect(out.refused).toBeUndefined();
        expect(out.log.map((l) => l.type)).toEqual(['warning']);
      }
    },
  );

  test.each(['published', 'canceled', 'failed'] as const)('%s: no event changes anything', (state) => {
    const input = FIXTURES[state]();
    for (const e of Object.values(EVENTS)) {
      const out = run(input, e);
      expect(out.release).toEqual(input);
      expect(out.commands).toEqual([]);
      expect(out.abort).toBe(false);
    }
  });
});

describe('purity', () => {
  test.each(RELEASE_STATES)('decide() does not mutate a %s release (deep-frozen input)', (state) => {
    for (const e of Object.values(EVENTS)) {
      const input = deepFreeze(FIXTURES[state]());
      const copy = structuredClone(input);
      expect(() => decide(input, e)).not.toThrow();
      expect(input).toEqual(copy);
    }
  });

  test('outcome release shares no task objects with the input', () => {
    const input = FIXTURES.running();
    const out = decide(input, { kind: 'cancel' });
    for (const t of out.release.tasks) expect(input.tasks).not.toContain(t);
    expect(out.release.tasks).not.toBe(input.tasks);
  });

  test('same input, same event → same outcome', () => {
    const e = EVENTS['ok:initialize'];
    expect(decide(FIXTURES.initializing(), e)).toEqual(decide(FIXTURES.initializing(), e));
  });
});

describe('versions', () => {
  test.each([
    [undefined, '0.0.0'],
    ['0.0.0', '0.0.1'],
    ['0.1.0', '0.1.1'],
    ['0.2.0', '0.2.1'],
    ['1.4.9', '1.4.10'],
  ] as const)('nextVersion(%p) = %p', (prev, next) => {
    expect(nextVersion(prev)).toBe(next);
  });

  test.each([
    ['0.0.0', false, '0.1.0'],
    ['0.1.1', false, '0.2.0'],
    ['0.1.1', true, '1.0.0'],
    ['1.2.3', true, '2.0.0'],
    ['1.2.3', false, '1.3.0'],
  ] as const)('publishedVersion(%p, major=%p) = %p', (v, major, out) => {
    expect(publishedVersion(v, major)).toBe(out);
  });

  test('spec example: 0.0.0 → published 0.1.0; next release 0.1.1 → published 0.2.0', () => {
    const first = publishedVersion(nextVersion(undefined), false);
    expect(first).toBe('0.1.0');
    const second = nextVersion(first);
    expect(second).toBe('0.1.1');
    expect(publishedVersion(second, false)).toBe('0.2.0');
  });
});

describe('wantsPolling', () => {
  const polled = new Set(['running/running', 'publishing/publishing']);
  const rows = RELEASE_STATES.flatMap((rs) =>
    TASK_STATES.map((ts) => [rs, ts, polled.has(`${rs}/${ts}`)] as const),
  );
  test.each(rows)('release %s, task %s → %p', (rs, ts, want) => {
    const r = release(rs, [[ts, null]]);
    expect(wantsPolling(r, r.tasks[0]!)).toBe(want);
  });
});

describe('failed polls count only for tasks being polled', () => {
  test('a running task whose poll fails → failed, release canceling (fail)', () => {
    const r = release('running', [
      ['running', null],
      ['running', null],
    ]);
    const out = decide(r, { kind: 'call_failed', taskId: T2, action: 'get_status', reason: REASON });
    expect(out.release.state).toBe('canceling');
    expect(out.release.haltReason).toBe('fail');
    expect(out.release.tasks.map((t) => t.state)).toEqual(['running', 'failed']);
    expect(out.commands).toEqual([{ action: 'cancel', taskId: T1 }]);
  });

  test('a publishing task whose poll fails → failed, release canceling (fail)', () => {
    const r = release('publishing', [
      ['publishing', null],
      ['publishing', null],
    ]);
    const out = decide(r, { kind: 'call_failed', taskId: T1, action: 'get_status', reason: REASON });
    expect(out.release.state).toBe('canceling');
    expect(out.release.tasks.map((t) => t.state)).toEqual(['failed', 'publishing']);
  });

  test('a staged task (a callback overtook the poll) ignores a failed poll answer', () => {
    const r = release('running', [
      ['staged', null],
      ['running', null],
    ]);
    const out = decide(r, { kind: 'call_failed', taskId: T1, action: 'get_status', reason: REASON });
    expect(out.release).toEqual(r);
    expect(out.log).toEqual([]);
  });
});
