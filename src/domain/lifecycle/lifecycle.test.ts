import { describe, expect, test } from 'bun:test';
import {
  type AwaitedAction,
  type Context,
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
import type { LifecycleTiming } from './timing';

/*
 * Table-driven tests of docs/lifecycle.md: every release state × every event kind, plus scenarios.
 * Expectations follow the documented rules, not the implementation.
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

/** the database clock of every decision in these tests */
const NOW = 1_800_000_000_000;
const TIMING: LifecycleTiming = {
  firstPollMs: 1_000,
  pollIntervalMs: 30_000,
  outageToleranceMs: 90_000,
  hintIntervalMs: 1_000,
};
const CTX: Context = { now: NOW, timing: TIMING };
const DEADLINES = { request: 15_000, start: 300_000, publish: 300_000 };
const SVC = (taskId: string) => `svc-${Number(taskId.slice(3))}`;

function task(i: number, [state, awaiting]: TaskSpec): TaskView {
  const kfId = TASK_IDS[i]!;
  return {
    kfId,
    taskServiceId: TS(kfId),
    serviceName: SVC(kfId),
    state,
    progress: DEFAULT_PROGRESS[state],
    awaiting,
    awaitingUntil: awaiting ? NOW + 10_000 : null,
    unconfirmedUntil: null,
    unreachableSince: null,
    pollDelayMs: null,
    hintedAt: null,
    deadlines: DEADLINES,
  };
}

function release(
  state: ReleaseState,
  tasks: TaskSpec[],
  opts: {
    version?: string;
    isMajor?: boolean;
    haltReason?: HaltReason | null;
    highestPublished?: string;
  } = {},
): ReleaseView {
  return {
    kfId: RE,
    state,
    version: opts.version ?? '0.1.1',
    isMajor: opts.isMajor ?? false,
    halt: opts.haltReason
      ? {
          reason: opts.haltReason,
          taskId: null,
          serviceId: null,
          serviceName: null,
          message: 'halted',
          by: null,
          at: NOW - 1_000,
        }
      : null,
    publish: null,
    highestPublished: opts.highestPublished ?? null,
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
const NO_ANSWER = 'timeout after 15000 ms';
const TIMEOUT_WHAT = `task ${T2}`;

const EVENTS = {
  begin: { kind: 'begin' },
  publish: { kind: 'publish' },
  amend: { kind: 'amend', isMajor: true, by: 'admin' },
  cancel: { kind: 'cancel' },
  'ok:initialize': { kind: 'call_ok', taskId: T2, action: 'initialize', state: 'pending', progress: 0 },
  'ok:start': { kind: 'call_ok', taskId: T2, action: 'start', state: 'running', progress: 10 },
  'ok:get_status': { kind: 'call_ok', taskId: T2, action: 'get_status', state: 'running', progress: 40 },
  'ok:publish': { kind: 'call_ok', taskId: T2, action: 'publish', state: 'publishing', progress: 10 },
  'ok:cancel': { kind: 'call_ok', taskId: T2, action: 'cancel', state: 'canceled' },
  'failed:initialize': {
    kind: 'call_failed',
    taskId: T2,
    action: 'initialize',
    outcome: 'refused',
    reason: REASON,
  },
  'failed:start': { kind: 'call_failed', taskId: T2, action: 'start', outcome: 'refused', reason: REASON },
  'failed:get_status': {
    kind: 'call_failed',
    taskId: T2,
    action: 'get_status',
    outcome: 'refused',
    reason: REASON,
  },
  'failed:publish': {
    kind: 'call_failed',
    taskId: T2,
    action: 'publish',
    outcome: 'refused',
    reason: REASON,
  },
  'failed:cancel': { kind: 'call_failed', taskId: T2, action: 'cancel', outcome: 'refused', reason: REASON },
  'unknown:initialize': {
    kind: 'call_failed',
    taskId: T2,
    action: 'initialize',
    outcome: 'unknown',
    reason: NO_ANSWER,
  },
  'unknown:start': {
    kind: 'call_failed',
    taskId: T2,
    action: 'start',
    outcome: 'unknown',
    reason: NO_ANSWER,
  },
  'unknown:get_status': {
    kind: 'call_failed',
    taskId: T2,
    action: 'get_status',
    outcome: 'unknown',
    reason: NO_ANSWER,
  },
  'unknown:publish': {
    kind: 'call_failed',
    taskId: T2,
    action: 'publish',
    outcome: 'unknown',
    reason: NO_ANSWER,
  },
  'lost:initialize': { kind: 'answer_lost', taskId: T2, action: 'initialize' },
  'lost:start': { kind: 'answer_lost', taskId: T2, action: 'start' },
  'lost:publish': { kind: 'answer_lost', taskId: T2, action: 'publish' },
  'lost:cancel': { kind: 'answer_lost', taskId: T2, action: 'cancel' },
  poll_hint: { kind: 'poll_hint', taskId: T2 },
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
  /** polls scheduled: task → delay in ms */
  polls?: Record<string, number>;
  /** only task bookkeeping changed (hint time, poll interval, deadlines): not the states */
  bookkeeping?: boolean;
  /** is_major after the event; default unchanged */
  isMajor?: boolean;
}

const relLog = (from: ReleaseState, to: ReleaseState, version = '0.1.1'): LogSpec => [
  to === 'failed' ? 'error' : 'info',
  `release ${RE}, version ${version} changed from ${from} to ${to}`,
];
const taskLog = (id: string, from: TaskState, to: TaskState): LogSpec => [
  to === 'failed' || to === 'rejected' ? 'error' : 'info',
  `task ${id} changed from ${from} to ${to}`,
];
const cmds = (action: string, ...ids: string[]) => ids.map((id) => `${action} ${id}`);

const NONE: Expected = {};
const REFUSED: Expected = { refused: true };
const AMENDED: Expected = { isMajor: true, log: [['info', `release ${RE} marked major by admin`]] };
const TABLE: Record<ReleaseState, Record<EventName, Expected>> = {
  waiting: {
    begin: {
      state: 'initializing',
      commands: cmds('initialize', T1, T2, T3),
      log: [relLog('waiting', 'initializing')],
    },
    amend: AMENDED,
    publish: REFUSED,
    cancel: {
      state: 'canceled',
      abort: true,
      log: [relLog('waiting', 'canceling'), relLog('canceling', 'canceled')],
    },
    'ok:initialize': NONE,
    'ok:start': NONE,
    'ok:get_status': {
      refused: true,
      log: [
        [
          'warning',
          'refused poll report: task TA_00000002 may not move from waiting to running while its release is waiting',
        ],
      ],
    },
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'unknown:initialize': NONE,
    'unknown:start': NONE,
    'unknown:get_status': NONE,
    'unknown:publish': NONE,
    'lost:initialize': NONE,
    'lost:start': NONE,
    'lost:publish': NONE,
    'lost:cancel': NONE,
    poll_hint: {
      log: [
        ['warning', 'callbacks from svc-2 arrive without credentials; they are treated as a hint to poll'],
      ],
      bookkeeping: true,
    },
    'report:initialized': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to initialized while its release is waiting',
        ],
      ],
    },
    'report:running': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to running while its release is waiting',
        ],
      ],
    },
    'report:staged': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to staged while its release is waiting',
        ],
      ],
    },
    'report:publishing': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to publishing while its release is waiting',
        ],
      ],
    },
    'report:published': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to published while its release is waiting',
        ],
      ],
    },
    'report:canceled': {
      state: 'canceled',
      tasks: ['waiting', 'canceled', 'waiting'],
      abort: true,
      log: [
        taskLog(T2, 'waiting', 'canceled'),
        relLog('waiting', 'canceling'),
        relLog('canceling', 'canceled'),
      ],
    },
    'report:failed': {
      state: 'canceling',
      tasks: ['waiting', 'failed', 'waiting'],
      commands: cmds('cancel', T2),
      abort: true,
      log: [taskLog(T2, 'waiting', 'failed'), relLog('waiting', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['waiting', 'failed', 'waiting'],
      commands: cmds('cancel', T2),
      abort: true,
      log: [
        ['error', 'task service svc-2 is down: health check failed 4 times'],
        taskLog(T2, 'waiting', 'failed'),
        relLog('waiting', 'canceling'),
      ],
    },
    timeout: {
      state: 'canceled',
      abort: true,
      log: [
        ['warning', 'task TA_00000002 timed out'],
        relLog('waiting', 'canceling'),
        relLog('canceling', 'canceled'),
      ],
    },
  },
  initializing: {
    begin: NONE,
    amend: AMENDED,
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
    'ok:get_status': {
      refused: true,
      log: [
        [
          'warning',
          'refused poll report: task TA_00000002 may not move from waiting to running while its release is initializing',
        ],
      ],
    },
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': {
      state: 'canceling',
      tasks: ['initialized', 'rejected', 'initialized'],
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [
        ['error', 'request to initialize task TA_00000002 of svc-2 failed: HTTP 503'],
        taskLog(T2, 'waiting', 'rejected'),
        relLog('initializing', 'canceling'),
      ],
    },
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'unknown:initialize': {
      state: 'canceling',
      tasks: ['initialized', 'rejected', 'initialized'],
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [
        ['error', 'request to initialize task TA_00000002 of svc-2 failed: timeout after 15000 ms'],
        taskLog(T2, 'waiting', 'rejected'),
        relLog('initializing', 'canceling'),
      ],
    },
    'unknown:start': NONE,
    'unknown:get_status': NONE,
    'unknown:publish': NONE,
    'lost:initialize': {
      commands: cmds('initialize', T2),
      log: [
        [
          'warning',
          'the answer to initialize of task TA_00000002 of svc-2 was lost; sending initialize again',
        ],
      ],
      bookkeeping: true,
    },
    'lost:start': NONE,
    'lost:publish': NONE,
    'lost:cancel': NONE,
    poll_hint: {
      log: [
        ['warning', 'callbacks from svc-2 arrive without credentials; they are treated as a hint to poll'],
      ],
      bookkeeping: true,
    },
    'report:initialized': {
      tasks: ['initialized', 'initialized', 'initialized'],
      log: [taskLog(T2, 'waiting', 'initialized')],
    },
    'report:running': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to running while its release is initializing',
        ],
      ],
    },
    'report:staged': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to staged while its release is initializing',
        ],
      ],
    },
    'report:publishing': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to publishing while its release is initializing',
        ],
      ],
    },
    'report:published': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from waiting to published while its release is initializing',
        ],
      ],
    },
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
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [taskLog(T2, 'waiting', 'failed'), relLog('initializing', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['initialized', 'failed', 'initialized'],
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [
        ['error', 'task service svc-2 is down: health check failed 4 times'],
        taskLog(T2, 'waiting', 'failed'),
        relLog('initializing', 'canceling'),
      ],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2, T3),
      abort: true,
      log: [['warning', 'task TA_00000002 timed out'], relLog('initializing', 'canceling')],
    },
  },
  running: {
    begin: NONE,
    amend: AMENDED,
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
      log: [taskLog(T2, 'initialized', 'running')],
      polls: { T2: 1000 },
    },
    'ok:get_status': {
      tasks: ['staged', 'running'],
      log: [taskLog(T2, 'initialized', 'running')],
      polls: { T2: 1000 },
    },
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [
        ['error', 'request to start task TA_00000002 of svc-2 failed: HTTP 503'],
        taskLog(T2, 'initialized', 'failed'),
        relLog('running', 'canceling'),
      ],
    },
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'unknown:initialize': NONE,
    'unknown:start': {
      tasks: ['staged', 'running'],
      log: [
        [
          'warning',
          'request to start task TA_00000002 of svc-2 got no answer (timeout after 15000 ms); its outcome is unknown: polling to find out, never sending it again',
        ],
        taskLog(T2, 'initialized', 'running'),
      ],
      polls: { T2: 0 },
    },
    'unknown:get_status': NONE,
    'unknown:publish': NONE,
    'lost:initialize': NONE,
    'lost:start': {
      tasks: ['staged', 'running'],
      log: [
        [
          'warning',
          'request to start task TA_00000002 of svc-2 got no answer (its answer was lost); its outcome is unknown: polling to find out, never sending it again',
        ],
        taskLog(T2, 'initialized', 'running'),
      ],
      polls: { T2: 0 },
    },
    'lost:publish': NONE,
    'lost:cancel': NONE,
    poll_hint: {
      log: [
        ['warning', 'callbacks from svc-2 arrive without credentials; they are treated as a hint to poll'],
      ],
      bookkeeping: true,
    },
    'report:initialized': NONE,
    'report:running': {
      tasks: ['staged', 'running'],
      log: [taskLog(T2, 'initialized', 'running')],
      polls: { T2: 1000 },
    },
    'report:staged': {
      state: 'staged',
      tasks: ['staged', 'staged'],
      log: [taskLog(T2, 'initialized', 'staged'), relLog('running', 'staged')],
    },
    'report:publishing': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from initialized to publishing while its release is running',
        ],
      ],
    },
    'report:published': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from initialized to published while its release is running',
        ],
      ],
    },
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
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [taskLog(T2, 'initialized', 'failed'), relLog('running', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [
        ['error', 'task service svc-2 is down: health check failed 4 times'],
        taskLog(T2, 'initialized', 'failed'),
        relLog('running', 'canceling'),
      ],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [['warning', 'task TA_00000002 timed out'], relLog('running', 'canceling')],
    },
  },
  staged: {
    begin: NONE,
    amend: AMENDED,
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
    'ok:get_status': NONE,
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'unknown:initialize': NONE,
    'unknown:start': NONE,
    'unknown:get_status': NONE,
    'unknown:publish': NONE,
    'lost:initialize': NONE,
    'lost:start': NONE,
    'lost:publish': NONE,
    'lost:cancel': NONE,
    poll_hint: {
      log: [
        ['warning', 'callbacks from svc-2 arrive without credentials; they are treated as a hint to poll'],
      ],
      bookkeeping: true,
    },
    'report:initialized': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from staged to initialized while its release is staged',
        ],
      ],
    },
    'report:running': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from staged to running while its release is staged',
        ],
      ],
    },
    'report:staged': NONE,
    'report:publishing': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from staged to publishing while its release is staged',
        ],
      ],
    },
    'report:published': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from staged to published while its release is staged',
        ],
      ],
    },
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
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [taskLog(T2, 'staged', 'failed'), relLog('staged', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['staged', 'failed'],
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [
        ['error', 'task service svc-2 is down: health check failed 4 times'],
        taskLog(T2, 'staged', 'failed'),
        relLog('staged', 'canceling'),
      ],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [['warning', 'task TA_00000002 timed out'], relLog('staged', 'canceling')],
    },
  },
  publishing: {
    begin: NONE,
    amend: REFUSED,
    publish: REFUSED,
    cancel: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [relLog('publishing', 'canceling')],
    },
    'ok:initialize': NONE,
    'ok:start': NONE,
    'ok:get_status': NONE,
    'ok:publish': {
      tasks: ['published', 'publishing'],
      log: [taskLog(T2, 'staged', 'publishing')],
      polls: { T2: 1000 },
    },
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': {
      state: 'canceling',
      tasks: ['published', 'failed'],
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [
        ['error', 'request to publish task TA_00000002 of svc-2 failed: HTTP 503'],
        taskLog(T2, 'staged', 'failed'),
        relLog('publishing', 'canceling'),
      ],
    },
    'failed:cancel': NONE,
    'unknown:initialize': NONE,
    'unknown:start': NONE,
    'unknown:get_status': NONE,
    'unknown:publish': {
      tasks: ['published', 'publishing'],
      log: [
        [
          'warning',
          'request to publish task TA_00000002 of svc-2 got no answer (timeout after 15000 ms); its outcome is unknown: polling to find out, never sending it again',
        ],
        taskLog(T2, 'staged', 'publishing'),
      ],
      polls: { T2: 0 },
    },
    'lost:initialize': NONE,
    'lost:start': NONE,
    'lost:publish': {
      tasks: ['published', 'publishing'],
      log: [
        [
          'warning',
          'request to publish task TA_00000002 of svc-2 got no answer (its answer was lost); its outcome is unknown: polling to find out, never sending it again',
        ],
        taskLog(T2, 'staged', 'publishing'),
      ],
      polls: { T2: 0 },
    },
    'lost:cancel': NONE,
    poll_hint: {
      log: [
        ['warning', 'callbacks from svc-2 arrive without credentials; they are treated as a hint to poll'],
      ],
      bookkeeping: true,
    },
    'report:initialized': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from staged to initialized while its release is publishing',
        ],
      ],
    },
    'report:running': {
      refused: true,
      log: [
        [
          'warning',
          'refused callback report: task TA_00000002 may not move from staged to running while its release is publishing',
        ],
      ],
    },
    'report:staged': NONE,
    'report:publishing': {
      tasks: ['published', 'publishing'],
      log: [taskLog(T2, 'staged', 'publishing')],
      polls: { T2: 1000 },
    },
    'report:published': {
      state: 'published',
      tasks: ['published', 'published'],
      log: [taskLog(T2, 'staged', 'published'), relLog('publishing', 'published', '0.2.0')],
      version: '0.2.0',
    },
    'report:canceled': {
      state: 'canceling',
      tasks: ['published', 'canceled'],
      commands: cmds('cancel', T1),
      abort: true,
      log: [taskLog(T2, 'staged', 'canceled'), relLog('publishing', 'canceling')],
    },
    'report:failed': {
      state: 'canceling',
      tasks: ['published', 'failed'],
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [taskLog(T2, 'staged', 'failed'), relLog('publishing', 'canceling')],
    },
    service_down: {
      state: 'canceling',
      tasks: ['published', 'failed'],
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [
        ['error', 'task service svc-2 is down: health check failed 4 times'],
        taskLog(T2, 'staged', 'failed'),
        relLog('publishing', 'canceling'),
      ],
    },
    timeout: {
      state: 'canceling',
      commands: cmds('cancel', T1, T2),
      abort: true,
      log: [['warning', 'task TA_00000002 timed out'], relLog('publishing', 'canceling')],
    },
  },
  published: {
    begin: NONE,
    amend: REFUSED,
    publish: REFUSED,
    cancel: REFUSED,
    'ok:initialize': NONE,
    'ok:start': NONE,
    'ok:get_status': NONE,
    'ok:publish': NONE,
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'unknown:initialize': NONE,
    'unknown:start': NONE,
    'unknown:get_status': NONE,
    'unknown:publish': NONE,
    'lost:initialize': NONE,
    'lost:start': NONE,
    'lost:publish': NONE,
    'lost:cancel': NONE,
    poll_hint: NONE,
    'report:initialized': NONE,
    'report:running': NONE,
    'report:staged': NONE,
    'report:publishing': NONE,
    'report:published': NONE,
    'report:canceled': NONE,
    'report:failed': {
      log: [['warning', 'task TA_00000002 reported failed after it was published (ignored)']],
    },
    service_down: NONE,
    timeout: NONE,
  },
  canceling: {
    begin: NONE,
    amend: REFUSED,
    publish: REFUSED,
    cancel: NONE,
    'ok:initialize': NONE,
    'ok:start': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'start of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'ok:get_status': NONE,
    'ok:publish': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'publish of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'ok:cancel': {
      state: 'failed',
      tasks: ['canceled', 'canceled', 'failed'],
      log: [taskLog(T2, 'running', 'canceled'), relLog('canceling', 'failed')],
    },
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': {
      state: 'failed',
      tasks: ['canceled', 'canceled', 'failed'],
      log: [
        ['error', 'request to cancel task TA_00000002 of svc-2 failed: HTTP 503'],
        taskLog(T2, 'running', 'canceled'),
        relLog('canceling', 'failed'),
      ],
    },
    'unknown:initialize': NONE,
    'unknown:start': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'start of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'unknown:get_status': NONE,
    'unknown:publish': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'publish of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'lost:initialize': NONE,
    'lost:start': NONE,
    'lost:publish': NONE,
    'lost:cancel': {
      commands: cmds('cancel', T2),
      log: [['warning', 'the answer to cancel of task TA_00000002 of svc-2 was lost; sending cancel again']],
      bookkeeping: true,
    },
    poll_hint: {
      log: [
        ['warning', 'callbacks from svc-2 arrive without credentials; they are treated as a hint to poll'],
      ],
      bookkeeping: true,
    },
    'report:initialized': NONE,
    'report:running': NONE,
    'report:staged': NONE,
    'report:publishing': NONE,
    'report:published': NONE,
    'report:canceled': {
      tasks: ['canceled', 'canceled', 'failed'],
      log: [taskLog(T2, 'running', 'canceled')],
    },
    'report:failed': { tasks: ['canceled', 'failed', 'failed'], log: [taskLog(T2, 'running', 'failed')] },
    service_down: {
      tasks: ['canceled', 'failed', 'failed'],
      log: [
        ['error', 'task service svc-2 is down: health check failed 4 times'],
        taskLog(T2, 'running', 'failed'),
      ],
    },
    timeout: { log: [['warning', 'task TA_00000002 timed out']] },
  },
  canceled: {
    begin: NONE,
    amend: REFUSED,
    publish: REFUSED,
    cancel: REFUSED,
    'ok:initialize': NONE,
    'ok:start': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'start of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'ok:get_status': NONE,
    'ok:publish': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'publish of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'unknown:initialize': NONE,
    'unknown:start': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'start of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'unknown:get_status': NONE,
    'unknown:publish': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'publish of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'lost:initialize': NONE,
    'lost:start': NONE,
    'lost:publish': NONE,
    'lost:cancel': NONE,
    poll_hint: NONE,
    'report:initialized': NONE,
    'report:running': NONE,
    'report:staged': NONE,
    'report:publishing': NONE,
    'report:published': NONE,
    'report:canceled': NONE,
    'report:failed': {
      log: [['warning', 'task TA_00000002 reported failed after it was canceled (ignored)']],
    },
    service_down: NONE,
    timeout: NONE,
  },
  failed: {
    begin: NONE,
    amend: REFUSED,
    publish: REFUSED,
    cancel: REFUSED,
    'ok:initialize': NONE,
    'ok:start': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'start of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'ok:get_status': NONE,
    'ok:publish': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'publish of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'ok:cancel': NONE,
    'failed:initialize': NONE,
    'failed:start': NONE,
    'failed:get_status': NONE,
    'failed:publish': NONE,
    'failed:cancel': NONE,
    'unknown:initialize': NONE,
    'unknown:start': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'start of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'unknown:get_status': NONE,
    'unknown:publish': {
      commands: cmds('cancel', T2),
      log: [
        [
          'warning',
          'publish of task TA_00000002 of svc-2 may have been taken after the release halted; sending cancel again',
        ],
      ],
    },
    'lost:initialize': NONE,
    'lost:start': NONE,
    'lost:publish': NONE,
    'lost:cancel': NONE,
    poll_hint: NONE,
    'report:initialized': NONE,
    'report:running': NONE,
    'report:staged': NONE,
    'report:publishing': NONE,
    'report:published': NONE,
    'report:canceled': NONE,
    'report:failed': {
      log: [['warning', 'task TA_00000002 reported failed after it was canceled (ignored)']],
    },
    service_down: NONE,
    timeout: NONE,
  },
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
  const out = decide(frozen, event, CTX);
  expect(frozen).toEqual(before);
  return out;
}

const logOf = (out: Outcome): unknown[][] => out.log.map((l) => [l.type, l.message]);
const commandsOf = (out: Outcome) => out.commands.map((c) => `${c.action} ${c.taskId}`);
const taskStates = (r: ReleaseView) => r.tasks.map((t) => t.state);
const byId = (r: ReleaseView, id: string) => r.tasks.find((t) => t.kfId === id)!;

const BOOKKEEPING = [
  'awaitingUntil',
  'unconfirmedUntil',
  'unreachableSince',
  'pollDelayMs',
  'hintedAt',
] as const;
const withoutBookkeeping = (r: ReleaseView) => ({
  ...r,
  tasks: r.tasks.map((t) => {
    const copy: Partial<TaskView> = { ...t };
    for (const k of BOOKKEEPING) delete copy[k];
    return copy;
  }),
});

const HALTED: ReadonlySet<ReleaseState> = new Set(['canceling', 'canceled', 'failed']);

/** Invariants that hold for every outcome. */
function checkInvariants(input: ReleaseView, out: Outcome) {
  // every command's task now waits for that command's answer, but a cancel sent again after a late
  // start/publish answer of a halted release, which nothing waits for
  for (const c of out.commands) {
    const late = c.action === 'cancel' && HALTED.has(out.release.state) && HALTED.has(input.state);
    if (!late) expect(byId(out.release, c.taskId).awaiting).toBe(c.action as AwaitedAction);
    expect(c.timeoutMs).toBeGreaterThan(0);
  }
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
  test('the table covers 9 states × 32 events', () => {
    expect(ROWS.length).toBe(9 * 32);
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
    expect(out.release.isMajor).toBe(exp.isMajor ?? input.isMajor);
    if (exp.progress !== undefined) expect(byId(out.release, T2).progress).toBe(exp.progress);
    expect(Object.fromEntries(out.polls)).toEqual(
      Object.fromEntries(
        Object.entries(exp.polls ?? {}).map(([k, v]) => [TASK_IDS[Number(k.slice(1)) - 1], v]),
      ),
    );
    // an event that changes nothing leaves the release exactly as it was
    if (!exp.state && !exp.tasks && !exp.commands && exp.progress === undefined && !exp.polls) {
      const after = { ...out.release, isMajor: input.isMajor };
      if (exp.bookkeeping) expect(withoutBookkeeping(after)).toEqual(withoutBookkeeping(input));
      else expect(after).toEqual(input);
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
  ({ kind: 'call_failed', taskId, action, outcome: 'refused', reason }) as LifecycleEvent;
const noAnswer = (taskId: string, action: AwaitedAction | 'get_status', reason = NO_ANSWER) =>
  ({ kind: 'call_failed', taskId, action, outcome: 'unknown', reason }) as LifecycleEvent;
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
    expect(s2.release.halt).toEqual({
      reason: 'fail',
      taskId: T2,
      serviceId: TS(T2),
      serviceName: SVC(T2),
      message: `initialize refused: ${REASON}`,
      by: null,
      at: NOW,
    });
    expect(s2.abort).toBe(true);
    expect(taskStates(s2.release)).toEqual(['initialized', 'rejected', 'waiting']);
    // the refusing service gets a cancel too: its copy of the task may exist
    expect(commandsOf(s2)).toEqual(cmds('cancel', T1, T2, T3));
    expect(logOf(s2)).toEqual([
      ['error', `request to initialize task ${T2} of ${SVC(T2)} failed: ${REASON}`],
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
    expect(s4.release.state).toBe('canceling');
    const s5 = run(s4.release, ok(T2, 'cancel'));
    expect(s5.release.state).toBe('failed');
    expect(taskStates(s5.release)).toEqual(['canceled', 'rejected', 'canceled']);
    expect(logOf(s5)).toEqual([
      ['info', `cancel of task ${T2} of ${SVC(T2)} ended; the task stays rejected`],
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
      ['error', `request to cancel task ${T2} of ${SVC(T2)} failed: connection refused`],
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
    expect(out.release.halt?.reason).toBe('cancel');
  });

  test('a cancel records who asked and when', () => {
    const out = run(staged3(), { kind: 'cancel', by: 'alice' });
    expect(out.release.halt).toEqual({
      reason: 'cancel',
      taskId: null,
      serviceId: null,
      serviceName: null,
      message: 'canceled by alice',
      by: 'alice',
      at: NOW,
    });
  });

  test('a second cancel while canceling keeps the original reason', () => {
    const s = play(staged3(), [reportEv(T1, 'failed'), { kind: 'cancel', by: 'bob' }]);
    expect(s.release.halt).toMatchObject({ reason: 'fail', taskId: T1, by: null });
    // the failed task's service may still hold its staged data: it is canceled too
    expect(s.commands).toEqual(cmds('cancel', T1, T2, T3));
  });

  test('only a service that reported the task canceled is left out of the cancels', () => {
    const out = run(staged3(), reportEv(T3, 'canceled'));
    expect(out.release.halt).toMatchObject({ reason: 'cancel', taskId: T3, serviceName: SVC(T3) });
    expect(commandsOf(out)).toEqual(cmds('cancel', T1, T2));
  });

  test('tasks that were never sent anything get no cancel', () => {
    const out = run(fresh(2), { kind: 'cancel' });
    expect(out.commands).toEqual([]);
    expect(out.release.state).toBe('canceled');
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
    ['start refusal overtaken by a cancel', 'canceling', fail(T2, 'start')],
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
      expect(out.abort).toBe(false);
      // only a start or publish that may have landed after the halt is canceled once more
      const late =
        state !== 'published' &&
        e.kind !== 'report' &&
        'action' in e &&
        ['start', 'publish'].includes(e.action) &&
        !('outcome' in e && e.outcome === 'refused');
      expect(commandsOf(out)).toEqual(late && e.kind !== 'answer_lost' ? cmds('cancel', T2) : []);
    }
  });
});

describe('purity', () => {
  test.each(RELEASE_STATES)('decide() does not mutate a %s release (deep-frozen input)', (state) => {
    for (const e of Object.values(EVENTS)) {
      const input = deepFreeze(FIXTURES[state]());
      const copy = structuredClone(input);
      expect(() => decide(input, e, CTX)).not.toThrow();
      expect(input).toEqual(copy);
    }
  });

  test('outcome release shares no task objects with the input', () => {
    const input = FIXTURES.running();
    const out = decide(input, { kind: 'cancel' }, CTX);
    for (const t of out.release.tasks) expect(input.tasks).not.toContain(t);
    expect(out.release.tasks).not.toBe(input.tasks);
  });

  test('a caller that hands its task list over (tasksOwned) gets the same outcomes, and no task object is changed', () => {
    // every state, every event in turn: one chain copying the list per event, one updating it in
    // place; a refused event is dropped (as the coordinator drops it) and must leave the list as it was
    for (const state of RELEASE_STATES) {
      let copied = FIXTURES[state]();
      let owned: ReleaseView = { ...FIXTURES[state](), tasks: FIXTURES[state]().tasks.slice() };
      for (const e of Object.values(EVENTS)) {
        for (const t of owned.tasks) deepFreeze(t);
        const listBefore = owned.tasks.slice();
        const a = decide(copied, e, CTX);
        const b = decide(owned, e, CTX, { tasksOwned: true });
        expect(b.release.tasks).toBe(owned.tasks);
        expect(b.refused).toEqual(a.refused);
        if (a.refused) {
          expect(owned.tasks).toEqual(listBefore);
          for (let i = 0; i < listBefore.length; i++) expect(owned.tasks[i]).toBe(listBefore[i]!);
          continue;
        }
        expect(b).toEqual(a);
        copied = a.release;
        owned = b.release;
      }
    }
  });

  test('a refused report leaves a handed-over list as it was (no bookkeeping of the refused event is kept)', () => {
    const view: ReleaseView = { ...FIXTURES.running(), tasks: FIXTURES.running().tasks.slice() };
    view.tasks[0] = { ...view.tasks[0]!, unconfirmedUntil: NOW + 3_600_000, unreachableSince: NOW - 10_000 };
    const before = structuredClone(view.tasks);
    const report = decide(view, { kind: 'report', taskId: view.tasks[0]!.kfId, state: 'published' }, CTX, {
      tasksOwned: true,
    });
    expect(report.refused).toBeDefined();
    expect(view.tasks).toEqual(before);
  });

  test('a list whose order changed between events is still read by task id', () => {
    const view = FIXTURES.running();
    const [first, second] = [view.tasks[0]!.kfId, view.tasks[1]!.kfId];
    decide(view, { kind: 'report', taskId: second, progress: 40 }, CTX);
    view.tasks.reverse();
    const firstBefore = byId(view, first);
    const out = decide(view, { kind: 'report', taskId: second, state: 'staged' }, CTX);
    expect(out.transitions.filter((t) => t.entity === 'task').map((t) => [t.kfId, t.to])).toEqual([
      [second, 'staged'],
    ]);
    expect(byId(out.release, first)).toBe(firstBefore);
  });

  test('same input, same event → same outcome', () => {
    const e = EVENTS['ok:initialize'];
    expect(decide(FIXTURES.initializing(), e, CTX)).toEqual(decide(FIXTURES.initializing(), e, CTX));
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
    const out = decide(r, fail(T2, 'get_status'), CTX);
    expect(out.release.state).toBe('canceling');
    expect(out.release.halt?.reason).toBe('fail');
    expect(out.release.tasks.map((t) => t.state)).toEqual(['running', 'failed']);
    expect(commandsOf(out)).toEqual(cmds('cancel', T1, T2));
  });

  test('a publishing task whose poll fails → failed, release canceling (fail)', () => {
    const r = release('publishing', [
      ['publishing', null],
      ['publishing', null],
    ]);
    const out = decide(r, fail(T1, 'get_status'), CTX);
    expect(out.release.state).toBe('canceling');
    expect(out.release.tasks.map((t) => t.state)).toEqual(['failed', 'publishing']);
  });

  test('a staged task (a callback overtook the poll) ignores a failed poll answer', () => {
    const r = release('running', [
      ['staged', null],
      ['running', null],
    ]);
    const out = decide(r, fail(T1, 'get_status'), CTX);
    expect(out.release).toEqual(r);
    expect(out.log).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// the revised rules: unanswered calls, outages, hints, versions (docs/lifecycle.md)

/** decide() at another moment than NOW */
const at = (ms: number, r: ReleaseView, e: LifecycleEvent) => decide(r, e, { now: ms, timing: TIMING });

describe('a start without an answer: outcome unknown', () => {
  const running = () =>
    play(fresh(2), [{ kind: 'begin' }, ok(T1, 'initialize'), ok(T2, 'initialize')]).release;

  test('never resent; the task is running (unconfirmed) and polled at once', () => {
    const out = run(running(), noAnswer(T2, 'start'));
    expect(out.commands).toEqual([]);
    expect(byId(out.release, T2)).toMatchObject({ state: 'running', awaiting: null });
    // the deadline of the call (its awaitingUntil), then as long again for a slow service to act on it
    expect(byId(out.release, T2).unconfirmedUntil).toBe(NOW + 2 * DEADLINES.start);
    expect(Object.fromEntries(out.polls)).toEqual({ [T2]: 0 });
    expect(out.release.state).toBe('running');
    expect(out.log[0]).toMatchObject({ type: 'warning', taskId: T2 });
  });

  test('a poll showing the work confirms it', () => {
    const r = run(running(), noAnswer(T2, 'start')).release;
    const out = run(r, poll(T2, 'running', 20));
    expect(byId(out.release, T2).unconfirmedUntil).toBeNull();
    expect(byId(out.release, T2).progress).toBe(20);
    expect(out.release.state).toBe('running');
  });

  test('a poll still saying pending before the start deadline: wait, polling on the cadence', () => {
    const r = run(running(), noAnswer(T2, 'start')).release;
    const out = at(NOW + 5_000, r, poll(T2, 'pending'));
    expect(byId(out.release, T2).state).toBe('running');
    expect(out.release.state).toBe('running');
    expect(out.polls.get(T2)).toBe(TIMING.firstPollMs);
    expect(out.log).toEqual([]);
  });

  test('a poll still saying pending twice the start deadline after the start: failed, every task canceled', () => {
    const r = run(running(), noAnswer(T2, 'start')).release;
    const out = at(byId(r, T2).unconfirmedUntil!, r, poll(T2, 'pending'));
    expect(byId(out.release, T2).state).toBe('failed');
    expect(out.release.state).toBe('canceling');
    expect(out.release.halt).toMatchObject({ reason: 'fail', taskId: T2, serviceName: SVC(T2) });
    expect(out.release.halt?.message).toContain('was not taken');
    expect(commandsOf(out)).toEqual(cmds('cancel', T1, T2));
  });

  test('a refused start (an HTTP answer) still fails at once and cancels the refusing service too', () => {
    const out = run(running(), fail(T2, 'start', 'HTTP 503: busy'));
    expect(byId(out.release, T2).state).toBe('failed');
    expect(commandsOf(out)).toEqual(cmds('cancel', T1, T2));
    expect(out.release.halt?.message).toBe('start refused: HTTP 503: busy');
  });

  test('a start answer counted as lost that arrives after all settles the outcome', () => {
    const lost = run(running(), { kind: 'answer_lost', taskId: T2, action: 'start' }).release;
    expect(byId(lost, T2).unconfirmedUntil).not.toBeNull();
    const out = run(lost, ok(T2, 'start', 'staged'));
    expect(byId(out.release, T2)).toMatchObject({ state: 'staged', unconfirmedUntil: null });
  });

  test('publish without an answer: publishing (unconfirmed), reconciled by polls the same way', () => {
    const r = play(
      release('staged', [
        ['staged', null],
        ['staged', null],
      ]),
      [{ kind: 'publish', by: 'alice' }],
    ).release;
    expect(r.publish).toEqual({ by: 'alice', at: NOW });
    const s1 = run(r, noAnswer(T2, 'publish'));
    expect(byId(s1.release, T2).state).toBe('publishing');
    expect(s1.commands).toEqual([]);
    const early = at(NOW + 1_000, s1.release, poll(T2, 'staged'));
    expect(early.release.state).toBe('publishing');
    const late = at(byId(s1.release, T2).unconfirmedUntil!, s1.release, poll(T2, 'staged'));
    expect(byId(late.release, T2).state).toBe('failed');
  });
});

describe('a service that goes back (polls show an earlier state than it reported)', () => {
  const publishing = () =>
    release('publishing', [
      ['published', null],
      ['publishing', null],
    ]);

  test('the first such poll: a warning naming both states; the release waits for the publish deadline', () => {
    const out = run(publishing(), poll(T2, 'staged', 100));
    expect(out.release.state).toBe('publishing');
    expect(byId(out.release, T2)).toMatchObject({
      state: 'publishing',
      unconfirmedUntil: NOW + DEADLINES.publish,
    });
    expect(out.log).toEqual([
      expect.objectContaining({
        type: 'warning',
        taskId: T2,
        message: expect.stringContaining('reports staged after it had reported publishing'),
      }),
    ]);
    expect(out.polls.has(T2)).toBe(true);
  });

  test('later polls still going back: no second warning until the deadline, then failed and every task canceled', () => {
    const first = run(publishing(), poll(T2, 'staged')).release;
    const again = at(NOW + 5_000, first, poll(T2, 'staged'));
    expect(again.log).toEqual([]);
    expect(again.release.state).toBe('publishing');
    const late = at(NOW + DEADLINES.publish, again.release, poll(T2, 'staged'));
    expect(byId(late.release, T2).state).toBe('failed');
    expect(late.release.halt).toMatchObject({ reason: 'fail', taskId: T2, serviceName: SVC(T2) });
    expect(commandsOf(late)).toEqual(cmds('cancel', T1, T2));
  });

  test('a poll that shows the work again confirms it', () => {
    const first = run(publishing(), poll(T2, 'staged')).release;
    const out = at(NOW + 5_000, first, poll(T2, 'publishing', 60));
    expect(byId(out.release, T2)).toMatchObject({
      state: 'publishing',
      unconfirmedUntil: null,
      progress: 60,
    });
  });

  test('a running task reported pending again is treated the same way', () => {
    const r = release('running', [
      ['running', null],
      ['running', null],
    ]);
    const out = run(r, poll(T2, 'pending'));
    expect(byId(out.release, T2).unconfirmedUntil).toBe(NOW + DEADLINES.start);
    expect(out.log[0]).toMatchObject({ type: 'warning', taskId: T2 });
  });

  test('a publish without an answer whose poll shows even less than staged also fails at the deadline', () => {
    const awaiting = release('publishing', [
      ['published', null],
      ['publishing', 'publish'],
    ]);
    const s1 = run(awaiting, noAnswer(T2, 'publish')).release;
    expect(byId(s1, T2).unconfirmedUntil).not.toBeNull();
    const late = at(byId(s1, T2).unconfirmedUntil!, s1, poll(T2, 'running'));
    expect(byId(late.release, T2).state).toBe('failed');
  });
});

describe('a task that made no progress for the task timeout', () => {
  test('the halt names the task and its service', () => {
    const r = release('running', [
      ['running', null],
      ['running', null],
    ]);
    const out = run(r, { kind: 'timeout', what: `task ${T2} (no progress for 2 h)`, taskId: T2 });
    expect(out.release.halt).toMatchObject({
      reason: 'cancel',
      taskId: T2,
      serviceId: TS(T2),
      serviceName: SVC(T2),
    });
    expect(out.release.halt?.message).toBe(`task ${T2} (no progress for 2 h) timed out`);
  });
});

describe('polls ride out outages', () => {
  const running2 = () =>
    release('running', [
      ['running', null],
      ['running', null],
    ]);

  test('no answer: poll again with backoff, no failure within the outage tolerance', () => {
    let r = running2();
    const delays: number[] = [];
    for (let t = 0; t < TIMING.outageToleranceMs; t += 10_000) {
      const out = at(NOW + t, r, noAnswer(T2, 'get_status', 'connection refused'));
      expect(out.release.state).toBe('running');
      delays.push(out.polls.get(T2)!);
      r = out.release;
    }
    expect(delays.slice(0, 6)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
    expect(byId(r, T2).unreachableSince).toBe(NOW);
  });

  test('only one warning per outage, and an info when the service answers again', () => {
    const s1 = run(running2(), noAnswer(T2, 'get_status', 'HTTP 503'));
    expect(s1.log.map((l) => l.type)).toEqual(['warning']);
    const s2 = at(NOW + 2_000, s1.release, noAnswer(T2, 'get_status', 'HTTP 503'));
    expect(s2.log).toEqual([]);
    const s3 = at(NOW + 4_000, s2.release, poll(T2, 'running'));
    expect(logOf(s3)).toEqual([['info', `${SVC(T2)} answers polls again after 4 s`]]);
    expect(byId(s3.release, T2).unreachableSince).toBeNull();
  });

  test('past the outage tolerance: failed, the release halts naming the service', () => {
    const s1 = run(running2(), noAnswer(T2, 'get_status', 'connection refused'));
    const out = at(
      NOW + TIMING.outageToleranceMs,
      s1.release,
      noAnswer(T2, 'get_status', 'connection refused'),
    );
    expect(byId(out.release, T2).state).toBe('failed');
    expect(out.release.halt?.message).toBe(
      `${SVC(T2)} did not answer polls for 90 s (last: connection refused)`,
    );
    expect(commandsOf(out)).toEqual(cmds('cancel', T1, T2));
  });

  test('a refusal (404: the service forgot the task) fails at once', () => {
    const out = run(running2(), fail(T2, 'get_status', 'HTTP 404'));
    expect(byId(out.release, T2).state).toBe('failed');
  });
});

describe('adaptive poll cadence', () => {
  test('first poll 1 s after a start answer, then doubling up to the poll interval', () => {
    const r = release('running', [['initialized', 'start']]);
    const s = run(r, ok(T1, 'start', 'running'));
    expect(s.polls.get(T1)).toBe(1_000);
    let view = s.release;
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      const out = run(view, poll(T1, 'running'));
      delays.push(out.polls.get(T1)!);
      view = out.release;
    }
    expect(delays).toEqual([2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  test('a callback that moves a task into a polled state schedules its first poll', () => {
    const out = run(release('running', [['initialized', 'start']]), reportEv(T1, 'running'));
    expect(out.polls.get(T1)).toBe(1_000);
  });
});

describe('callbacks without credentials: a hint to poll', () => {
  const running2 = () =>
    release('running', [
      ['running', null],
      ['running', null],
    ]);

  test('the first hint records one warning and polls at once', () => {
    const out = run(running2(), { kind: 'poll_hint', taskId: T2 });
    expect(out.log.map((l) => [l.type, l.message])).toEqual([
      ['warning', `callbacks from ${SVC(T2)} arrive without credentials; they are treated as a hint to poll`],
    ]);
    expect(out.polls.get(T2)).toBe(0);
    expect(out.release.tasks.map((t) => t.state)).toEqual(['running', 'running']);
  });

  test('at most one extra poll per task per second, no second warning', () => {
    const s1 = run(running2(), { kind: 'poll_hint', taskId: T2 });
    const s2 = at(NOW + 500, s1.release, { kind: 'poll_hint', taskId: T2 });
    expect(s2.polls.size).toBe(0);
    expect(s2.log).toEqual([]);
    const s3 = at(NOW + 1_000, s2.release, { kind: 'poll_hint', taskId: T2 });
    expect(s3.polls.get(T2)).toBe(0);
    expect(s3.log).toEqual([]);
  });
});

describe('answers that can no longer come', () => {
  test('initialize: sent again (it is idempotent)', () => {
    const out = run(FIXTURES.initializing(), { kind: 'answer_lost', taskId: T2, action: 'initialize' });
    expect(commandsOf(out)).toEqual(cmds('initialize', T2));
    expect(out.release.state).toBe('initializing');
  });

  test('cancel: sent again while the cancel phase lasts, then given up with an error', () => {
    const r = FIXTURES.canceling();
    expect(commandsOf(run(r, { kind: 'answer_lost', taskId: T2, action: 'cancel' }))).toEqual(
      cmds('cancel', T2),
    );
    const late = at(NOW + 10 * 60_000, r, { kind: 'answer_lost', taskId: T2, action: 'cancel' });
    expect(late.commands).toEqual([]);
    expect(late.release.state).toBe('failed');
    expect(late.log.map((l) => l.type)).toContain('error');
  });

  test('start lost before any worker sent it: sent again, the task still waiting for it', () => {
    const out = run(FIXTURES.running(), {
      kind: 'answer_lost',
      taskId: T2,
      action: 'start',
      neverSent: true,
    });
    expect(commandsOf(out)).toEqual(cmds('start', T2));
    expect(out.release.state).toBe('running');
    const t2 = out.release.tasks.find((t) => t.kfId === T2)!;
    expect({ state: t2.state, awaiting: t2.awaiting, unconfirmed: t2.unconfirmedUntil }).toEqual({
      state: 'initialized',
      awaiting: 'start',
      unconfirmed: null,
    });
    expect(t2.awaitingUntil).toBeGreaterThan(NOW);
    expect(out.log).toEqual([
      {
        type: 'warning',
        message: 'start of task TA_00000002 of svc-2 was lost before any worker sent it; sending start again',
        taskId: T2,
        taskServiceId: t2.taskServiceId,
      },
    ]);
  });

  test('publish lost before any worker sent it: sent again', () => {
    const out = run(FIXTURES.publishing(), {
      kind: 'answer_lost',
      taskId: T2,
      action: 'publish',
      neverSent: true,
    });
    expect(commandsOf(out)).toEqual(cmds('publish', T2));
    expect(out.release.state).toBe('publishing');
  });

  test('a start that may have been sent is never sent again: its outcome is found by polling', () => {
    const out = run(FIXTURES.running(), { kind: 'answer_lost', taskId: T2, action: 'start' });
    expect(out.commands).toEqual([]);
    expect(out.polls.get(T2)).toBe(0);
  });

  test('never sent, but the release halted meanwhile: nothing is sent', () => {
    const out = run(FIXTURES.canceling(), {
      kind: 'answer_lost',
      taskId: T2,
      action: 'start',
      neverSent: true,
    });
    expect(out.commands).toEqual([]);
  });
});

describe('a start that may have landed after the halt is canceled again', () => {
  test('late 200 to start while canceling: one more cancel, nothing else changes', () => {
    const input = FIXTURES.canceling();
    const out = run(input, ok(T2, 'start', 'running'));
    expect(commandsOf(out)).toEqual(cmds('cancel', T2));
    expect(out.release).toEqual(input);
  });

  test('late unanswered start on a failed release: canceled again too', () => {
    const out = run(FIXTURES.failed(), noAnswer(T2, 'start'));
    expect(commandsOf(out)).toEqual(cmds('cancel', T2));
  });

  test('a refused late start needs no cancel', () => {
    expect(run(FIXTURES.failed(), fail(T2, 'start')).commands).toEqual([]);
  });
});

describe('calls that were never sent (no token could be had for them)', () => {
  const NO_TOKEN =
    'no token for the audience urn:idp:x: the OAuth token endpoint https://idp.example/oauth/token answered 403 (access_denied)';
  const notSent = (taskId: string, action: AwaitedAction | 'get_status', reason = NO_TOKEN) =>
    ({ kind: 'call_failed', taskId, action, outcome: 'not_sent', reason }) as LifecycleEvent;
  const running = () =>
    play(fresh(2), [{ kind: 'begin' }, ok(T1, 'initialize'), ok(T2, 'initialize')]).release;

  test('initialize not sent: task rejected, the release halts naming the service and the reason', () => {
    const s1 = play(fresh(2), [{ kind: 'begin' }]);
    const out = run(s1.release, notSent(T2, 'initialize'));
    expect(taskStates(out.release)).toEqual(['waiting', 'rejected']);
    expect(out.release.state).toBe('canceling');
    expect(out.release.halt).toMatchObject({ reason: 'fail', taskId: T2, serviceName: SVC(T2) });
    expect(out.release.halt?.message).toBe(`initialize of task ${T2} of ${SVC(T2)} not sent: ${NO_TOKEN}`);
    expect(logOf(out)[0]).toEqual([
      'error',
      `request to initialize task ${T2} of ${SVC(T2)} was not sent: ${NO_TOKEN}`,
    ]);
  });

  test('start not sent: a definite non-delivery, not an unknown outcome: failed at once, no polls', () => {
    const out = run(running(), notSent(T2, 'start'));
    expect(byId(out.release, T2).state).toBe('failed');
    expect(byId(out.release, T2).unconfirmedUntil).toBeNull();
    expect(out.polls.size).toBe(0);
    expect(out.release.halt?.message).toBe(`start of task ${T2} of ${SVC(T2)} not sent: ${NO_TOKEN}`);
    expect(commandsOf(out)).toEqual(cmds('cancel', T1, T2));
  });

  test('a poll not sent fails the task at once (it is not an outage of the service)', () => {
    const r = release('running', [
      ['running', null],
      ['running', null],
    ]);
    const out = decide(r, notSent(T2, 'get_status'), CTX);
    expect(byId(out.release, T2).state).toBe('failed');
    expect(byId(out.release, T2).unreachableSince).toBeNull();
    expect(out.release.halt?.message).toBe(`get_status of task ${T2} of ${SVC(T2)} not sent: ${NO_TOKEN}`);
  });

  test('a cancel not sent counts as done, with an error event saying it was not sent', () => {
    const s = play(
      release('staged', [
        ['staged', null],
        ['staged', null],
      ]),
      [{ kind: 'cancel' }],
    );
    const out = run(s.release, notSent(T2, 'cancel'));
    expect(byId(out.release, T2).state).toBe('canceled');
    expect(logOf(out)[0]).toEqual([
      'error',
      `request to cancel task ${T2} of ${SVC(T2)} was not sent: ${NO_TOKEN}`,
    ]);
  });

  test('a start not sent after the release halted needs no extra cancel (it never left)', () => {
    expect(run(FIXTURES.failed(), notSent(T2, 'start')).commands).toEqual([]);
    expect(run(FIXTURES.canceling(), notSent(T2, 'start', 'the release was halted')).commands).toEqual([]);
  });
});

describe('published versions never go backwards', () => {
  test('a release created before a major one publishes after it: next minor of the highest', () => {
    const r = release('publishing', [['publishing', null]], { version: '0.1.1', highestPublished: '1.0.0' });
    const out = run(r, poll(T1, 'published'));
    expect(out.release.state).toBe('published');
    expect(out.release.version).toBe('1.1.0');
  });

  test('is_major after a higher release: the next major', () => {
    expect(publishedVersion('0.1.1', true, '1.2.0')).toBe('2.0.0');
  });

  test('nothing published yet: from the release own version', () => {
    expect(publishedVersion('0.0.3', false, null)).toBe('0.1.0');
  });
});
