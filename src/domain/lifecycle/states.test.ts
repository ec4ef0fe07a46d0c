import { describe, expect, test } from 'bun:test';
import {
  ACTIONS,
  DEADLINE_RELEASE_STATES,
  isFinalRelease,
  isFinalTask,
  isReleaseState,
  isTaskState,
  mapServiceState,
  OPEN_RELEASE_STATES,
  OPEN_TASK_STATES,
  parseProgress,
  RELEASE_STATES,
  TASK_RANK,
  TASK_STATES,
} from './states';

describe('state lists', () => {
  test('release states are the nine of the spec, in lifecycle order', () => {
    expect([...RELEASE_STATES]).toEqual([
      'waiting',
      'initializing',
      'running',
      'staged',
      'publishing',
      'published',
      'canceling',
      'canceled',
      'failed',
    ]);
  });

  test('task states are the nine of the spec, in lifecycle order', () => {
    expect([...TASK_STATES]).toEqual([
      'waiting',
      'initialized',
      'running',
      'staged',
      'publishing',
      'published',
      'rejected',
      'failed',
      'canceled',
    ]);
  });

  test('actions of the task service protocol', () => {
    expect([...ACTIONS].sort()).toEqual(['cancel', 'get_status', 'initialize', 'publish', 'start']);
  });

  test.each(RELEASE_STATES.map((s) => [s, ['published', 'canceled', 'failed'].includes(s)] as const))(
    'release state %s final=%p',
    (state, final) => {
      expect(isFinalRelease(state)).toBe(final);
    },
  );

  test.each(
    TASK_STATES.map((s) => [s, ['published', 'rejected', 'failed', 'canceled'].includes(s)] as const),
  )('task state %s final=%p', (state, final) => {
    expect(isFinalTask(state)).toBe(final);
  });

  test('isReleaseState / isTaskState accept only exact names', () => {
    for (const s of RELEASE_STATES) expect(isReleaseState(s)).toBe(true);
    for (const s of TASK_STATES) expect(isTaskState(s)).toBe(true);
    for (const s of ['', 'STAGED', 'cancelled', 'pending', 'rejected ', 'constructor', '__proto__']) {
      expect(isReleaseState(s)).toBe(false);
    }
    expect(isReleaseState('rejected')).toBe(false);
    expect(isReleaseState('initialized')).toBe(false);
    expect(isTaskState('initializing')).toBe(false);
    expect(isTaskState('canceling')).toBe(false);
    expect(isTaskState('constructor')).toBe(false);
  });

  test('TASK_RANK orders the forward path strictly and puts final failures above it', () => {
    const path = ['waiting', 'initialized', 'running', 'staged', 'publishing', 'published'] as const;
    for (let i = 1; i < path.length; i++) {
      expect(TASK_RANK[path[i]!]).toBeGreaterThan(TASK_RANK[path[i - 1]!]);
    }
    for (const s of ['rejected', 'failed', 'canceled'] as const) {
      expect(TASK_RANK[s]).toBeGreaterThan(TASK_RANK.published);
    }
  });
});

describe('mapServiceState', () => {
  test.each([
    ['pending', 'initialized'],
    ['initialized', 'initialized'],
    ['running', 'running'],
    ['staged', 'staged'],
    ['publishing', 'publishing'],
    ['published', 'published'],
    ['canceled', 'canceled'],
    ['cancelled', 'canceled'],
    ['canceling', 'canceled'],
    ['cancelling', 'canceled'],
    ['failed', 'failed'],
    // case-insensitive
    ['STAGED', 'staged'],
    ['Pending', 'initialized'],
    ['CANCELLED', 'canceled'],
    ['Published', 'published'],
    ['FAILED', 'failed'],
  ] as const)('%p → %p', (raw, mapped) => {
    expect(mapServiceState(raw)).toBe(mapped);
  });

  test.each([
    ['unknown word', 'exploded'],
    ['empty', ''],
    ['our-only state waiting', 'waiting'],
    ['our-only state rejected', 'rejected'],
    ['release state initializing', 'initializing'],
    ['number', 42],
    ['null', null],
    ['undefined', undefined],
    ['object', { state: 'staged' }],
    ['array', ['staged']],
    ['boolean', true],
  ] as const)('%s → undefined', (_label, raw) => {
    expect(mapServiceState(raw)).toBeUndefined();
  });

  // Names inherited from Object.prototype must not be taken for known states
  // (spec: "Anything else: keep the task's state, record a warning event").
  test.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])(
    'prototype key %p → undefined',
    (raw) => {
      expect(mapServiceState(raw)).toBeUndefined();
    },
  );
});

describe('parseProgress', () => {
  test.each([
    ['integer', 50, 50],
    ['zero', 0, 0],
    ['hundred', 100, 100],
    ['float', 50.5, 50.5],
    ['percent string', '50%', 50],
    ['float percent string', '12.5%', 12.5],
    ['numeric string', '50', 50],
    ['padded string', ' 75 % ', 75],
    ['above 100 clamped', 150, 100],
    ['negative clamped', -5, 0],
    ['negative string clamped', '-5%', 0],
    ['too small for real', 1e-320, 0],
    ['negative zero', -0, 0],
    ['smallest real kept', 1e-40, 1e-40],
  ] as const)('%s (%p) → %p', (_label, raw, value) => {
    expect(parseProgress(raw)).toBe(value);
  });

  test('explicit null → null', () => {
    expect(parseProgress(null)).toBeNull();
  });

  test.each([
    ['missing', undefined],
    ['garbage', 'garbage'],
    ['half-number', '50 percent'],
    ['empty string', ''],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['object', { value: 50 }],
    ['boolean', true],
  ] as const)('%s → undefined (unreadable)', (_label, raw) => {
    expect(parseProgress(raw)).toBeUndefined();
  });
});

describe('state lists the SQL uses (never retyped in a statement)', () => {
  test('open states are exactly the ones that are not final', () => {
    expect(OPEN_RELEASE_STATES).toEqual(RELEASE_STATES.filter((s) => !isFinalRelease(s)));
    expect(OPEN_TASK_STATES).toEqual(TASK_STATES.filter((s) => !isFinalTask(s)));
  });
  test('a deadline applies to open releases that are not already canceling', () => {
    expect(DEADLINE_RELEASE_STATES).toEqual(['waiting', 'initializing', 'running', 'staged', 'publishing']);
  });
});
