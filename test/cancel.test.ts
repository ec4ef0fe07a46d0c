import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRelease,
  createStudy,
  eventsOf,
  registerMockServices,
  waitForState,
  waitForTaskStates,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

let t: TestSystem;
let mock: MockHandle;
let study: string;

beforeAll(async () => {
  // failing cancels are retried for the outage tolerance (HEALTH_FAILURE_THRESHOLD × HEALTH_INTERVAL_MS): 1 s
  t = await startTestSystem('cancel', { HEALTH_FAILURE_THRESHOLD: '1', HEALTH_INTERVAL_MS: '1000' });
  study = await createStudy(t.api);
  // the work never finishes during the test: only a cancel can end the release
  ({ mock } = await registerMockServices(t.api, 3, { stageMs: 60_000 }));
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('DELETE /releases/{id}', () => {
  let releaseId: string;
  let taskIds: string[];

  test('while running: 200 in canceling (or already canceled), one cancel per task, ends canceled', async () => {
    const created = await createRelease(t.api, [study]);
    releaseId = created.kf_id;
    taskIds = created.tasks.map((x) => x.kf_id);
    await waitForState(t.api, releaseId, 'running');
    await waitForTaskStates(t.api, releaseId, 'running');

    const res = await t.api('DELETE', `/releases/${releaseId}`);
    expect(res.status).toBe(200);
    expect(res.body.kf_id).toBe(releaseId);
    expect(['canceling', 'canceled']).toContain(res.body.state);

    const done = await waitForState(t.api, releaseId, 'canceled');
    expect(done.tasks.map((x: { state: string }) => x.state)).toEqual(['canceled', 'canceled', 'canceled']);

    // every task got exactly one cancel, and the services now hold them canceled
    for (const taskId of taskIds) {
      const cancels = mock.callsFor({ taskId, action: 'cancel' });
      expect(cancels).toHaveLength(1);
      expect(cancels[0]!.status).toBe(200);
    }
    for (const view of mock.tasks().filter((x) => x.release_id === releaseId)) {
      expect(view.state).toBe('canceled');
    }

    const messages = (await eventsOf(t.api, releaseId)).map((e) => e.message);
    expect(messages).toContain(`release ${releaseId}, version 0.0.0 changed from running to canceling`);
    expect(messages).toContain(`release ${releaseId}, version 0.0.0 changed from canceling to canceled`);
    for (const taskId of taskIds)
      expect(messages).toContain(`task ${taskId} changed from running to canceled`);
  });

  test('DELETE of a final release is 409 and sends nothing', async () => {
    const callsBefore = mock.calls.length;
    const res = await t.api('DELETE', `/releases/${releaseId}`);
    expect(res.status).toBe(409);
    expect(typeof res.body.detail).toBe('string');
    expect((await t.api('GET', `/releases/${releaseId}`)).body.state).toBe('canceled');
    expect(mock.calls.slice(callsBefore).filter((c) => c.action === 'cancel')).toHaveLength(0);
  });

  test('DELETE while an initialize hangs: canceled without waiting for it, every task is sent cancel', async () => {
    const hanging = mock.serviceNames[0]!;
    mock.setBehaviour({ hang: true }, hanging, 'initialize');
    try {
      const created = await createRelease(t.api, [study]);
      const id = created.kf_id;
      await until(
        () =>
          mock.callsFor({ service: hanging, action: 'initialize' }).some((c) => c.releaseId === id) &&
          mock.calls.filter((c) => c.releaseId === id && c.action === 'initialize').length === 3,
        { message: 'every initialize to arrive' },
      );
      expect((await t.api('GET', `/releases/${id}`)).body.state).toBe('initializing');

      const res = await t.api('DELETE', `/releases/${id}`);
      expect(res.status).toBe(200);
      expect(['canceling', 'canceled']).toContain(res.body.state);
      const done = await waitForState(t.api, id, ['canceled', 'failed']);
      expect(done.state).toBe('canceled');
      expect(done.tasks.map((x: { state: string }) => x.state)).toEqual(['canceled', 'canceled', 'canceled']);
      for (const task of done.tasks as Array<{ kf_id: string; service_name: string }>) {
        const cancels = mock.callsFor({ taskId: task.kf_id, action: 'cancel' });
        if (task.service_name !== hanging) {
          expect(cancels.map((c) => c.status)).toEqual([200]);
        } else {
          // that service never got the task (its initialize hung): it answers 404, a considered
          // answer that is recorded but not asked again, and the task is canceled anyway
          expect(cancels.map((c) => c.status)).toEqual([404]);
        }
      }
      // nothing was started: the release never left initializing before the cancel
      expect(mock.calls.filter((c) => c.releaseId === id && c.action === 'start')).toHaveLength(0);
    } finally {
      mock.setBehaviour({ hang: false }, hanging, 'initialize');
    }
  });

  test('a service that refuses cancel: retried a bounded number of times, its task still ends canceled', async () => {
    const refusing = mock.serviceNames[2]!;
    mock.setBehaviour({ httpStatus: 503 }, refusing, 'cancel');
    try {
      const created = await createRelease(t.api, [study]);
      const id = created.kf_id;
      await waitForTaskStates(t.api, id, 'running');
      const res = await t.api('DELETE', `/releases/${id}`);
      expect(res.status).toBe(200);
      const done = await waitForState(t.api, id, ['canceled', 'failed']);
      expect(done.state).toBe('canceled');
      expect(done.tasks.map((x: { state: string }) => x.state)).toEqual(['canceled', 'canceled', 'canceled']);

      const refused = done.tasks.find((x: { service_name: string }) => x.service_name === refusing);
      const attempts = mock.callsFor({ taskId: refused.kf_id, action: 'cancel' });
      expect(attempts.length).toBeGreaterThan(1);
      expect(attempts.length).toBeLessThanOrEqual(10); // within the 1 s window, pauses from 125 ms up
      expect(attempts.every((c) => c.status === 503)).toBe(true);
      const errors = (await eventsOf(t.api, id)).filter(
        (e) =>
          e.event_type === 'error' &&
          e.message.startsWith(`request to cancel task ${refused.kf_id} of ${refusing} failed`),
      );
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors.every((e) => e.task?.endsWith(`/tasks/${refused.kf_id}`))).toBe(true);
    } finally {
      mock.setBehaviour({ httpStatus: 0 }, refusing, 'cancel');
    }
  });

  test('DELETE of an unknown release is 404', async () => {
    const res = await t.api('DELETE', '/releases/RE_00000000');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ detail: 'Not found.' });
  });
});
