import { describe, expect, test } from 'bun:test';
import { axisTicks, formatDuration, longestWork, percentOf, releaseAxis, taskPhases } from './phases';

// Where a release's time went, computed from `states_at`: the numbers the chart and the
// durations table of the release page show.

const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const created = new Date(T0);

describe('task phases from states_at', () => {
  test('a published task: initialize (until started), running, staged, publishing; total is wall time', () => {
    const p = taskPhases(
      {
        state: 'published',
        createdAt: created,
        statesAt: {
          waiting: at(0),
          initialized: at(100),
          running: at(150),
          staged: at(4150),
          publishing: at(64_150),
          published: at(65_150),
        },
      },
      T0 + 999_999,
    );
    expect(p.durations).toEqual({ initialize: 150, running: 4000, staged: 60_000, publishing: 1000 });
    expect(p.spans.map((s) => s.phase)).toEqual(['initialize', 'running', 'staged', 'publishing']);
    expect(p.spans.some((s) => s.ongoing)).toBe(false);
    expect(p.ongoing).toBe(false);
    expect(p.total).toBe(65_150);
  });

  test('a running task: its phase runs until `until` and is marked ongoing', () => {
    const p = taskPhases(
      {
        state: 'running',
        createdAt: created,
        statesAt: { waiting: at(0), initialized: at(10), running: at(20) },
      },
      T0 + 5020,
    );
    expect(p.durations).toEqual({ initialize: 20, running: 5000 });
    expect(p.spans.at(-1)).toMatchObject({ phase: 'running', ongoing: true });
    expect(p.ongoing).toBe(true);
    expect(p.total).toBe(5020);
  });

  test('a failed task ends its bar when it failed; states entered at the same moment keep their order', () => {
    const p = taskPhases(
      {
        state: 'failed',
        createdAt: created,
        statesAt: { failed: at(900), running: at(20), initialized: at(20), waiting: at(0) },
      },
      T0 + 100_000,
    );
    expect(p.spans.map((s) => [s.phase, s.to - s.from])).toEqual([
      ['initialize', 20],
      ['running', 880],
    ]);
    expect(p.total).toBe(900);
  });

  test('without states_at (older rows) the task starts at its creation', () => {
    const p = taskPhases({ state: 'waiting', createdAt: created, statesAt: {} }, T0 + 300);
    expect(p.durations).toEqual({ initialize: 300 });
    expect(p.start).toBe(T0);
  });

  test('a time that does not parse is ignored, never NaN', () => {
    const p = taskPhases(
      { state: 'running', createdAt: created, statesAt: { waiting: at(0), running: 'yesterday' } },
      T0 + 50,
    );
    expect(p.total).toBe(50);
    expect(p.durations).toEqual({ initialize: 50 });
  });
});

describe('release axis', () => {
  const release = { createdAt: created, statesAt: { waiting: at(0) }, stateChangedAt: new Date(T0 + 7000) };

  test('a final release ends when it entered its final state; an active one ends now', () => {
    const final = releaseAxis(
      { ...release, state: 'failed', statesAt: { waiting: at(0), failed: at(6000) } },
      T0 + 1e9,
    );
    expect(final).toEqual({ start: T0, end: T0 + 6000, ongoing: false });
    expect(releaseAxis({ ...release, state: 'running' }, T0 + 2500)).toEqual({
      start: T0,
      end: T0 + 2500,
      ongoing: true,
    });
    // without a recorded time for the final state, the last state change
    expect(releaseAxis({ ...release, state: 'canceled' }, T0 + 1e9).end).toBe(T0 + 7000);
  });

  test('positions are clamped percentages; ticks label the time since creation', () => {
    const axis = { start: T0, end: T0 + 8000, ongoing: false };
    expect(percentOf(axis, T0 + 2000)).toBe(25);
    expect(percentOf(axis, T0 - 5)).toBe(0);
    expect(percentOf(axis, T0 + 9000)).toBe(100);
    expect(axisTicks(axis).map((t) => t.label)).toEqual(['0', '+2.0 s', '+4.0 s', '+6.0 s', '+8.0 s']);
    // an axis of no length still has a width (no division by zero)
    expect(releaseAxis({ ...release, state: 'running' }, T0).end).toBe(T0 + 1);
  });
});

test('durations read like a person writes them', () => {
  expect([0, 850, 4249, 42_000, 192_000, 180_000, 7_500_000, 97_200_000].map(formatDuration)).toEqual([
    '0 ms',
    '850 ms',
    '4.2 s',
    '42 s',
    '3 min 12 s',
    '3 min',
    '2 h 5 min',
    '1 d 3 h',
  ]);
});

test('the longest work names the task that held the release up; waiting for publish does not count', () => {
  const phases = (durations: Record<string, number>) => ({
    spans: [],
    start: 0,
    end: 0,
    ongoing: false,
    total: 0,
    durations,
  });
  expect(
    longestWork([
      { name: 'search-index', phases: phases({ initialize: 10, running: 4000, staged: 90_000 }) },
      { name: 'file-portal', phases: phases({ initialize: 10, running: 9000, staged: 85_000 }) },
    ]),
  ).toEqual({ name: 'file-portal', phase: 'running', ms: 9000 });
  expect(longestWork([{ name: 'x', phases: phases({}) }])).toBeUndefined();
});
