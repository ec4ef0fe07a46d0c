import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import {
  type ActionDeadlines,
  answerBudget,
  callDeadline,
  cancelPhaseLimit,
  cancelRetryPause,
  firstPollDelay,
  type LifecycleTiming,
  nextPollDelay,
} from './timing';

const deadlines: ActionDeadlines = { request: 15_000, start: 300_000, publish: 200_000 };
const timing: LifecycleTiming = {
  firstPollMs: 1_000,
  pollIntervalMs: 30_000,
  outageToleranceMs: 90_000,
  hintIntervalMs: 1_000,
};

describe('call deadlines and answer budgets', () => {
  test('start and publish have their own deadline; every other call the request deadline', () => {
    expect(callDeadline('start', deadlines)).toBe(300_000);
    expect(callDeadline('publish', deadlines)).toBe(200_000);
    for (const action of ['initialize', 'get_status', 'cancel'] as const)
      expect(callDeadline(action, deadlines)).toBe(15_000);
  });

  test('a cancel may take the outage tolerance plus two calls (its last attempt begins just before the window closes)', () => {
    expect(answerBudget('cancel', deadlines, timing)).toBe(90_000 + 2 * 15_000);
    expect(answerBudget('start', deadlines, timing)).toBe(300_000);
    expect(answerBudget('get_status', deadlines, timing)).toBe(15_000);
  });

  test('a release stays in canceling at most three cancel budgets', () => {
    expect(cancelPhaseLimit(deadlines, timing)).toBe(3 * (90_000 + 30_000));
  });
});

describe('pauses between cancel attempts', () => {
  test('from an eighth of the window (10 ms to 1 s), doubling', () => {
    expect([0, 1, 2, 3].map((a) => cancelRetryPause(a, 90_000))).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect(cancelRetryPause(0, 400)).toBe(50);
    expect(cancelRetryPause(0, 20)).toBe(10);
  });

  test('never past half the window nor 30 s, never below the first pause, never negative', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        (attempt, windowMs) => {
          const pause = cancelRetryPause(attempt, windowMs);
          const first = cancelRetryPause(0, windowMs);
          expect(pause).toBeGreaterThanOrEqual(first);
          expect(pause).toBeLessThanOrEqual(30_000);
          expect(pause).toBeLessThanOrEqual(Math.max(first, Math.floor(windowMs / 2)));
          expect(cancelRetryPause(attempt + 1, windowMs)).toBeGreaterThanOrEqual(pause);
        },
      ),
    );
  });
});

describe('adaptive poll cadence', () => {
  test('first poll after firstPollMs, then doubling up to the poll interval', () => {
    const delays: number[] = [];
    let previous: number | null = null;
    for (let i = 0; i < 8; i++) {
      previous = nextPollDelay(previous, timing);
      delays.push(previous);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  test('a poll interval shorter than firstPollMs caps the first poll too', () => {
    const fast = { ...timing, firstPollMs: 1_000, pollIntervalMs: 20 };
    expect(firstPollDelay(fast)).toBe(20);
    expect(nextPollDelay(null, fast)).toBe(20);
    expect(nextPollDelay(20, fast)).toBe(20);
  });

  test('every delay lies between the first delay and the poll interval, and never shrinks', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.option(fc.integer({ min: 0, max: 2_000_000 }), { nil: null }),
        (firstPollMs, pollIntervalMs, previous) => {
          const t = { ...timing, firstPollMs, pollIntervalMs };
          const next = nextPollDelay(previous, t);
          expect(next).toBeGreaterThanOrEqual(firstPollDelay(t));
          expect(next).toBeLessThanOrEqual(pollIntervalMs);
          if (previous !== null && previous <= pollIntervalMs) expect(next).toBeGreaterThanOrEqual(previous);
        },
      ),
    );
  });
});
