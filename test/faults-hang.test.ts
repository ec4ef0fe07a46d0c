import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { expectNoDuplicate, soakOr } from './support/faults';
import { createStudy, eventsOf, registerMockServices, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

// A task service that accepts every request and never answers. Its calls end at the request
// deadline, so its releases fail (the hung task rejected, the others canceled) instead of waiting
// forever; meanwhile the hung calls hold a few of the worker's slots and nothing else: releases
// on the healthy services run from start to published while the hung calls are still pending.

const REQUEST_TIMEOUT_MS = 3_000;
const HUNG_RELEASES = soakOr(8, 40);
const NORMAL_RELEASES = soakOr(4, 20);
let t: TestSystem;
let mock: MockHandle;
let hangingId: string;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('faults_hang', {
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    // a cancel to the hung service is retried for the outage tolerance: 1 s here
    HEALTH_FAILURE_THRESHOLD: '1',
    HEALTH_INTERVAL_MS: '1000',
    WORKER_CONCURRENCY: String(HUNG_RELEASES * 2),
  });
  const registered = await registerMockServices(t.api, 3, { stageMs: 50, publishMs: 50 });
  mock = registered.mock;
  hangingId = registered.serviceIds[0]!;
  // from now on svc-0 takes every request (status and tasks) and never answers
  mock.setBehaviour({ hang: true }, mock.serviceNames[0]);
  study = await createStudy(t.api);
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('a task service that hangs on every action', () => {
  test('deadlines fire and its releases fail; other releases run at normal speed meanwhile', async () => {
    const hung: string[] = [];
    for (let i = 0; i < HUNG_RELEASES; i++) {
      const res = await t.api('POST', '/releases', { name: `hung ${i}`, studies: [study] });
      expect(res.status).toBe(201);
      hung.push(res.body.kf_id);
    }
    // only the two healthy services take part in the next releases
    expect((await t.api('PATCH', `/task-services/${hangingId}`, { enabled: false })).status).toBe(200);
    const normalStarted = performance.now();
    const normal: string[] = [];
    for (let i = 0; i < NORMAL_RELEASES; i++) {
      const res = await t.api('POST', '/releases', { name: `normal ${i}`, studies: [study] });
      expect(res.status).toBe(201);
      expect(res.body.tasks).toHaveLength(2);
      normal.push(res.body.kf_id);
    }
    for (const id of normal) {
      await waitForState(t.api, id, 'staged', 10_000);
      expect((await t.api('POST', `/releases/${id}/publish`)).status).toBe(200);
    }
    for (const id of normal) await waitForState(t.api, id, 'published', 10_000);
    const normalMs = performance.now() - normalStarted;
    // every healthy release finished while the hung calls were still waiting for their deadline
    const hangingCalls = mock.callsFor({ service: mock.serviceNames[0], action: 'initialize' });
    expect(hangingCalls).toHaveLength(HUNG_RELEASES);
    const stillInitializing = [];
    for (const id of hung) stillInitializing.push((await t.api('GET', `/releases/${id}`)).body.state);
    console.log(
      `hang: ${NORMAL_RELEASES} normal releases published in ${Math.round(normalMs)} ms with ${HUNG_RELEASES} calls hung (deadline ${REQUEST_TIMEOUT_MS} ms); hung releases then: ${[...new Set(stillInitializing)].join(', ')}`,
    );
    // i.e. before the first deadline fired: no healthy release waited behind a hung call
    expect(new Set(stillInitializing)).toEqual(new Set(['initializing']));
    for (const id of normal) {
      expectNoDuplicate(mock, id, 'start', 2);
      expectNoDuplicate(mock, id, 'publish', 2);
    }

    for (const id of hung) {
      const done = await waitForState(t.api, id, ['failed', 'canceled', 'published'], 30_000);
      expect(done.state).toBe('failed');
      const states = done.tasks.map((x: { service_name: string; state: string }) => [
        x.service_name,
        x.state,
      ]);
      expect(Object.fromEntries(states)).toEqual({
        [mock.serviceNames[0]!]: 'rejected',
        [mock.serviceNames[1]!]: 'canceled',
        [mock.serviceNames[2]!]: 'canceled',
      });
      const messages = (await eventsOf(t.api, id)).map((e) => e.message).join('\n');
      expect(messages).toContain(`timeout after ${REQUEST_TIMEOUT_MS} ms`);
      // nothing was started on a release whose initialize never answered
      expect(mock.calls.filter((c) => c.releaseId === id && c.action === 'start')).toEqual([]);
    }
  }, 120_000);
});
