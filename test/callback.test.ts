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
import { TASK_FIELDS } from './support/shapes';
import { startTestSystem, type TestSystem } from './support/system';

let t: TestSystem;
let mock: MockHandle;
let study: string;
let releaseId: string;
let taskIds: string[];

beforeAll(async () => {
  t = await startTestSystem('callback');
  study = await createStudy(t.api);
  // the services never finish on their own: polls keep answering running, only callbacks move the tasks
  ({ mock } = await registerMockServices(t.api, 2, { stageMs: 60_000 }));
  const created = await createRelease(t.api, [study]);
  releaseId = created.kf_id;
  taskIds = created.tasks.map((x) => x.kf_id);
  await waitForState(t.api, releaseId, 'running');
  await waitForTaskStates(t.api, releaseId, 'running');
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('PATCH /tasks/{id} (task service callback)', () => {
  test('an invalid state string is 400 {state: [...]} and changes nothing', async () => {
    const res = await t.api('PATCH', `/tasks/${taskIds[0]}`, { state: 'exploded' });
    expect(res.status).toBe(400);
    expect(Object.keys(res.body)).toEqual(['state']);
    expect(res.body.state).toHaveLength(1);
    const task = await t.api('GET', `/tasks/${taskIds[0]}`);
    expect(task.body.state).toBe('running');
  });

  test('a body without state or progress is 400; an unknown task is 404', async () => {
    const empty = await t.api('PATCH', `/tasks/${taskIds[0]}`, {});
    expect(empty.status).toBe(400);
    const unknown = await t.api('PATCH', '/tasks/TA_00000000', { state: 'staged' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ detail: 'Not found.' });
  });

  test('published for a running task is 409 with a warning event, and nothing changes', async () => {
    const res = await t.api('PATCH', `/tasks/${taskIds[0]}`, { state: 'published' });
    expect(res.status).toBe(409);
    expect(typeof res.body.detail).toBe('string');
    const release = await t.api('GET', `/releases/${releaseId}`);
    expect(release.body.state).toBe('running');
    expect(release.body.tasks.map((x: { state: string }) => x.state)).toEqual(['running', 'running']);
    const warnings = (await eventsOf(t.api, releaseId)).filter(
      (e) => e.event_type === 'warning' && e.task?.endsWith(`/tasks/${taskIds[0]}`),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toContain('published');
  });

  test('staged for a running task advances it; the release is staged when every task is', async () => {
    // a progress-only report is accepted (polls may overwrite the number, so only the answer is checked)
    const progress = await t.api('PATCH', `/tasks/${taskIds[0]}`, { progress: '40%' });
    expect(progress.status).toBe(200);
    expect(progress.body.state).toBe('running');

    const first = await t.api('PATCH', `/tasks/${taskIds[0]}`, { state: 'staged', progress: 100 });
    expect(first.status).toBe(200);
    expect(Object.keys(first.body)).toEqual(TASK_FIELDS);
    expect(first.body).toMatchObject({ kf_id: taskIds[0], state: 'staged', progress: 100 });
    // one task staged is not enough
    expect((await t.api('GET', `/releases/${releaseId}`)).body.state).toBe('running');

    const second = await t.api('PATCH', `/tasks/${taskIds[1]}`, { state: 'STAGED' });
    expect(second.status).toBe(200);
    expect(second.body.state).toBe('staged');
    const staged = await waitForState(t.api, releaseId, 'staged');
    expect(staged.tasks.map((x: { state: string }) => x.state)).toEqual(['staged', 'staged']);

    // the services themselves still say running: the callbacks alone moved the release
    for (const view of mock.tasks().filter((x) => x.release_id === releaseId)) {
      expect(view.state).toBe('running');
    }
    const messages = (await eventsOf(t.api, releaseId)).map((e) => e.message);
    for (const id of taskIds) expect(messages).toContain(`task ${id} changed from running to staged`);
    expect(messages).toContain(`release ${releaseId}, version 0.0.0 changed from running to staged`);
  });
});
