import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { createRelease, createStudy, eventsOf, registerMockServices, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

let t: TestSystem;
let mock: MockHandle;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('failure_initialize');
  study = await createStudy(t.api);
  ({ mock } = await registerMockServices(t.api, 3));
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('a service refuses initialize', () => {
  test('503 on initialize: that task rejected, the others canceled, the release failed', async () => {
    const refusing = mock.serviceNames[1]!;
    mock.setBehaviour({ httpStatus: 503 }, refusing, 'initialize');

    const created = await createRelease(t.api, [study]);
    const failed = await waitForState(t.api, created.kf_id, ['failed', 'canceled', 'published']);
    expect(failed.state).toBe('failed');

    const byService = new Map<string, { kf_id: string; state: string }>(
      failed.tasks.map((x: { service_name: string; kf_id: string; state: string }) => [x.service_name, x]),
    );
    const rejected = byService.get(refusing)!;
    expect(rejected.state).toBe('rejected');
    expect(mock.callsFor({ service: refusing, action: 'initialize' }).map((c) => c.status)).toEqual([503]);

    for (const name of mock.serviceNames.filter((n) => n !== refusing)) {
      const task = byService.get(name)!;
      expect(task.state).toBe('canceled');
      expect(mock.callsFor({ taskId: task.kf_id, action: 'cancel' }).length).toBeGreaterThanOrEqual(1);
    }
    // its service may hold a copy of the task, so it is sent a cancel too: once, since its 404 ("no
    // such task") is a considered answer; and nobody was started
    expect(mock.callsFor({ taskId: rejected.kf_id, action: 'cancel' }).map((c) => c.status)).toEqual([404]);
    expect(mock.callsFor({ action: 'start' })).toHaveLength(0);

    const events = await eventsOf(t.api, created.kf_id);
    const refusal = events.find((e) =>
      e.message.startsWith(`request to initialize task ${rejected.kf_id} of ${refusing} failed: HTTP 503`),
    );
    expect(refusal).toBeDefined();
    expect(refusal!.event_type).toBe('error');
    expect(refusal!.task).toEndWith(`/tasks/${rejected.kf_id}`);
    const rejectedMove = events.find(
      (e) => e.message === `task ${rejected.kf_id} changed from waiting to rejected`,
    );
    expect(rejectedMove?.event_type).toBe('error');
    const failedMove = events.find(
      (e) => e.message === `release ${created.kf_id}, version 0.0.0 changed from canceling to failed`,
    );
    expect(failedMove?.event_type).toBe('error');
  });
});
