import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { type Config, loadConfig, MIN_ACK_WAIT_MS } from './config';
import { deriveTiming } from './timing';

/*
 * Every deadline that depends on another (src/timing.ts), checked for the defaults and for any
 * configuration the validation accepts: the invariants the other roles rely on.
 */

/** A configuration from generated settings (as the environment would give them). */
const configOf = (settings: Record<string, number>): Config =>
  loadConfig(Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, String(v)])));

const ms = (min: number, max: number) => fc.integer({ min, max });

/** Settings the validation accepts, from the smallest to far beyond the defaults. */
const settings = fc.record({
  POLL_INTERVAL_MS: ms(1, 3_600_000),
  HEALTH_INTERVAL_MS: ms(1, 3_600_000),
  HEALTH_FAILURE_THRESHOLD: ms(1, 100),
  REQUEST_TIMEOUT_MS: ms(1, 600_000),
  START_TIMEOUT_MS: ms(1, 3_600_000),
  PUBLISH_TIMEOUT_MS: ms(1, 3_600_000),
  COMMAND_ACK_WAIT_MS: ms(MIN_ACK_WAIT_MS, 600_000),
  COORDINATOR_ACK_WAIT_MS: ms(MIN_ACK_WAIT_MS, 600_000),
  GATEWAY_REPLY_TIMEOUT_MS: ms(1, 600_000),
});

const forEveryConfig = (check: (c: Config, t: ReturnType<typeof deriveTiming>) => void) =>
  fc.assert(
    fc.property(settings, (s) => {
      const c = configOf(s);
      check(c, deriveTiming(c));
    }),
    { numRuns: 300 },
  );

describe('deriveTiming with the defaults', () => {
  test('the values docs/configuration.md describes', () => {
    const t = deriveTiming(loadConfig({}));
    expect(t.lifecycle).toEqual({
      firstPollMs: 1_000,
      pollIntervalMs: 30_000,
      outageToleranceMs: 90_000, // 3 failed checks × 30 s
      hintIntervalMs: 1_000,
    });
    expect(t.deadlines).toEqual({ request: 15_000, start: 300_000, publish: 300_000 });
    expect(t.workerHeartbeatMs).toBe(3_333);
    expect(t.coordinatorHeartbeatMs).toBe(3_333);
    expect(t.coordinatorPullExpiresMs).toBe(5_000);
    expect(t.pollLeaseMs(15_000)).toBe(27_000);
    expect(t.lostAnswerGraceMs).toBe(30_000);
    expect(t.replyTimeoutMs).toBe(10_000);
    expect(t.callbackReplyTimeoutMs).toBe(1_000);
    expect(t.registrationCheckMs).toBe(10_000);
  });

  test('it reads the configuration and changes nothing in it; the same configuration gives the same values', () => {
    const config = loadConfig({ COMMAND_ACK_WAIT_MS: '4500' });
    const before = JSON.stringify(config);
    const a = deriveTiming(config);
    const b = deriveTiming(config);
    expect(JSON.stringify(config)).toBe(before);
    expect({ ...a, pollLeaseMs: a.pollLeaseMs(100) }).toEqual({ ...b, pollLeaseMs: b.pollLeaseMs(100) });
  });
});

describe('invariants for every configuration the validation accepts', () => {
  test('call deadlines are the configured ones; the outage tolerance is threshold × health interval', () => {
    forEveryConfig((c, t) => {
      expect(t.deadlines).toEqual({
        request: c.REQUEST_TIMEOUT_MS,
        start: c.START_TIMEOUT_MS,
        publish: c.PUBLISH_TIMEOUT_MS,
      });
      expect(t.lifecycle.outageToleranceMs).toBe(c.HEALTH_FAILURE_THRESHOLD * c.HEALTH_INTERVAL_MS);
    });
  });

  test('the adaptive poll cadence starts at most a second after an answer, never slower than the poll interval', () => {
    forEveryConfig((c, t) => {
      expect(t.lifecycle.firstPollMs).toBeGreaterThan(0);
      expect(t.lifecycle.firstPollMs).toBeLessThanOrEqual(1_000);
      expect(t.lifecycle.firstPollMs).toBeLessThanOrEqual(t.lifecycle.pollIntervalMs);
      expect(t.lifecycle.pollIntervalMs).toBe(c.POLL_INTERVAL_MS);
    });
  });

  test('a worker tells NATS at least three times per ack wait that a long call is under way', () => {
    forEveryConfig((c, t) => {
      expect(t.workerHeartbeatMs * 3).toBeLessThanOrEqual(c.COMMAND_ACK_WAIT_MS);
      // its pull requests live three heartbeats (at most 5 s): NATS refuses them under 1 s
      expect(Math.min(5_000, t.workerHeartbeatMs * 3)).toBeGreaterThanOrEqual(1_000);
    });
  });

  test('the coordinator does the same for the messages it holds; its pulls live 1 to 5 s, within the ack wait', () => {
    forEveryConfig((c, t) => {
      expect(t.coordinatorHeartbeatMs * 3).toBeLessThanOrEqual(c.COORDINATOR_ACK_WAIT_MS);
      expect(t.coordinatorPullExpiresMs).toBeLessThanOrEqual(c.COORDINATOR_ACK_WAIT_MS);
      expect(t.coordinatorPullExpiresMs).toBeLessThanOrEqual(5_000);
      expect(t.coordinatorPullExpiresMs).toBeGreaterThanOrEqual(1_000);
    });
  });

  test('a poll lease outlasts the poll and its redelivery to another worker', () => {
    forEveryConfig((c, t) => {
      for (const request of [1, c.REQUEST_TIMEOUT_MS, 10 * c.REQUEST_TIMEOUT_MS]) {
        expect(t.pollLeaseMs(request)).toBeGreaterThan(request + c.COMMAND_ACK_WAIT_MS);
      }
    });
  });

  test('an answer past its deadline is looked for longer than two redeliveries take before it counts as lost', () => {
    forEveryConfig((c, t) => {
      expect(t.lostAnswerGraceMs).toBeGreaterThan(2 * c.COMMAND_ACK_WAIT_MS);
    });
  });

  test('the gateway waits for a callback’s answer at most a second, and never longer than for any write', () => {
    forEveryConfig((c, t) => {
      expect(t.replyTimeoutMs).toBe(c.GATEWAY_REPLY_TIMEOUT_MS);
      expect(t.callbackReplyTimeoutMs).toBeLessThanOrEqual(1_000);
      expect(t.callbackReplyTimeoutMs).toBeLessThanOrEqual(t.replyTimeoutMs);
    });
  });

  test('the live /status check on registration gets at most the request deadline, and at most 10 s', () => {
    forEveryConfig((c, t) => {
      expect(t.registrationCheckMs).toBeLessThanOrEqual(c.REQUEST_TIMEOUT_MS);
      expect(t.registrationCheckMs).toBeLessThanOrEqual(10_000);
      expect(t.registrationCheckMs).toBeGreaterThan(0);
    });
  });
});
