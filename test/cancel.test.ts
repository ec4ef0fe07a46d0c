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

let t: TestSystem;
let mock: MockHandle;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('cancel');
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

  test('DELETE of an unknown release is 404', async () => {
    const res = await t.api('DELETE', '/releases/RE_00000000');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ detail: 'Not found.' });
  });
});
