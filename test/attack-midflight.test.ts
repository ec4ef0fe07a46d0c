import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRelease,
  createStudy,
  eventsOf,
  replaceServices,
  waitForState,
  waitForTaskStates,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

/**
 * Attack: things that happen to a release while it runs, from outside: its only service removed
 * by an operator, and a flood of credential-less callbacks (anyone can send them: task ids are
 * public reads). These held up; the tests guard what no other test covered.
 */

let t: TestSystem;
let study: string;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  t = await startTestSystem('attack_midflight', { POLL_INTERVAL_MS: '2000' });
  study = await createStudy(t.api);
});
afterAll(async () => {
  for (const m of mocks) await m.stop();
  await t?.stop();
});

describe('while a release runs', () => {
  /**
   * Removing a task service (DELETE hides and disables it) must not strand the releases it is
   * part of: docs/api.md says past tasks keep pointing at it; the scheduler keeps polling them
   * (src/coordinator/scheduler.ts joins task_services without looking at `deleted`). Held up.
   */
  test('its only service is removed: the release still stages and publishes', async () => {
    const { mock, serviceIds } = await replaceServices(t.api, 1, { stageMs: 1_500, publishMs: 300 });
    mocks.push(mock);
    const created = await createRelease(t.api, [study]);
    await waitForTaskStates(t.api, created.kf_id, 'running');
    expect((await t.api('DELETE', `/task-services/${serviceIds[0]}`)).status).toBe(204);
    await waitForState(t.api, created.kf_id, 'staged');
    expect((await t.api('POST', `/releases/${created.kf_id}/publish`)).status).toBe(200);
    const done = await waitForState(t.api, created.kf_id, ['published', 'failed', 'canceled']);
    expect(done.state).toBe('published');
  });

  /**
   * docs/lifecycle.md, Callbacks: a credential-less callback is a hint, "at most one extra poll
   * per task per second", and "the first such hint from a service within a release writes one
   * warning event". 300 of them in about a second for one task: every one answered 202, one
   * warning, and only a handful of polls. Held up.
   */
  test('300 credential-less callbacks for one task: all 202, one warning, polls stay about one a second', async () => {
    const { mock } = await replaceServices(t.api, 1, { stageMs: 60_000 });
    mocks.push(mock);
    const created = await createRelease(t.api, [study]);
    const running = await waitForTaskStates(t.api, created.kf_id, 'running');
    const taskId = running.tasks[0].kf_id as string;
    const pollsBefore = mock.callsFor({ taskId, action: 'get_status' }).length;
    const started = performance.now();
    const statuses: number[] = [];
    for (let wave = 0; wave < 6; wave++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => t.anonymous('PATCH', `/tasks/${taskId}`, { state: 'staged' })),
      );
      statuses.push(...answers.map((a) => a.status));
    }
    const seconds = (performance.now() - started) / 1000;
    const extraPolls = mock.callsFor({ taskId, action: 'get_status' }).length - pollsBefore;
    const warnings = (await eventsOf(t.api, created.kf_id)).filter((e) =>
      e.message.includes('arrive without credentials'),
    );
    console.log(
      `hint flood: ${statuses.length} callbacks in ${seconds.toFixed(1)} s, statuses ${[...new Set(statuses)]},`,
      `polls meanwhile ${extraPolls}, warnings ${warnings.length}`,
    );
    expect(new Set(statuses)).toEqual(new Set([202]));
    expect(warnings).toHaveLength(1);
    // one hint a second, plus the regular cadence (1 s, 2 s, …) and the one in flight
    expect(extraPolls).toBeLessThanOrEqual(Math.ceil(seconds) * 2 + 3);
    await t.api('DELETE', `/releases/${created.kf_id}`);
    await waitForState(t.api, created.kf_id, ['canceled', 'failed']);
  });
});
