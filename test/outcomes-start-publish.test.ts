import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRelease,
  createStudy,
  eventsOf,
  replaceServices,
  tasksByService,
  waitForState,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

let t: TestSystem;
let study: string;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  t = await startTestSystem('outcomes_start_publish', { REQUEST_TIMEOUT_MS: '1000' });
  study = await createStudy(t.api);
});
afterAll(async () => {
  for (const m of mocks) await m.stop();
  await t?.stop();
});

/**
 * `bad`'s task failed after a refused or unreachable `action`, the others canceled, the release
 * failed; every task got that action exactly once (start/publish are never retried blindly).
 */
async function expectFailedOutcome(
  mock: MockHandle,
  releaseId: string,
  bad: string,
  action: 'start' | 'publish',
  reason: string,
) {
  const done = await waitForState(t.api, releaseId, ['failed', 'canceled', 'published']);
  expect(done.state).toBe('failed');
  const byService = tasksByService(done);
  const failed = byService.get(bad)!;
  expect(failed.state).toBe('failed');
  for (const name of mock.serviceNames.filter((n) => n !== bad)) {
    const task = byService.get(name)!;
    expect(task.state).toBe('canceled');
    expect(mock.callsFor({ taskId: task.kf_id, action: 'cancel' }).map((c) => c.status)).toEqual([200]);
  }
  // a failed task is final: no cancel for it
  expect(mock.callsFor({ taskId: failed.kf_id, action: 'cancel' })).toHaveLength(0);
  for (const task of done.tasks as Array<{ kf_id: string }>) {
    expect(mock.callsFor({ taskId: task.kf_id, action })).toHaveLength(1);
  }
  // the service saw at most one start per task (the refused one never reached the action)
  for (const view of mock.tasks().filter((x) => x.release_id === releaseId))
    expect(view.starts).toBe(view.service === bad && action === 'start' ? 0 : 1);

  const events = await eventsOf(t.api, releaseId);
  const refusal = events.find((e) => e.message.startsWith(`request to ${action} task failed:`));
  expect(refusal?.event_type).toBe('error');
  expect(refusal!.message).toContain(reason);
  expect(refusal!.task).toEndWith(`/tasks/${failed.kf_id}`);
  const phase = action === 'start' ? 'running' : 'publishing';
  const from = action === 'start' ? ['initialized', 'running'] : ['staged', 'publishing'];
  const move = events.find(
    (e) => e.task?.endsWith(`/tasks/${failed.kf_id}`) && / changed from \w+ to failed$/.test(e.message),
  );
  expect(move?.event_type).toBe('error');
  expect(from.some((f) => move!.message === `task ${failed.kf_id} changed from ${f} to failed`)).toBe(true);
  const messages = events.map((e) => e.message);
  expect(messages).toContain(
    `release ${releaseId}, version ${done.version} changed from ${phase} to canceling`,
  );
  expect(messages).toContain(
    `release ${releaseId}, version ${done.version} changed from canceling to failed`,
  );
}

describe('start refused or unreachable', () => {
  test('start answered 503: that task failed, the others canceled, the release failed, start never resent', async () => {
    const { mock } = await replaceServices(t.api, 3, { stageMs: 60_000 });
    mocks.push(mock);
    const bad = mock.serviceNames[1]!;
    mock.setBehaviour({ httpStatus: 503 }, bad, 'start');
    const created = await createRelease(t.api, [study]);
    await expectFailedOutcome(mock, created.kf_id, bad, 'start', 'HTTP 503');
    expect(mock.callsFor({ service: bad, action: 'start' }).map((c) => c.status)).toEqual([503]);
  });

  test('start connection dropped: that task failed, the others canceled, the release failed, start never resent', async () => {
    const { mock } = await replaceServices(t.api, 3, { stageMs: 60_000 });
    mocks.push(mock);
    const bad = mock.serviceNames[2]!;
    mock.setBehaviour({ drop: true }, bad, 'start');
    const created = await createRelease(t.api, [study]);
    await expectFailedOutcome(mock, created.kf_id, bad, 'start', '');
    expect(mock.callsFor({ service: bad, action: 'start' }).map((c) => c.status)).toEqual([0]);
  });
});

describe('publish refused or unreachable', () => {
  /** A release whose tasks are all staged at the service; publishing them takes a minute. */
  async function stagedRelease(mock: MockHandle) {
    const created = await createRelease(t.api, [study]);
    const staged = await waitForState(t.api, created.kf_id, 'staged');
    expect(staged.tasks).toHaveLength(mock.serviceNames.length);
    return created;
  }

  test('publish answered 503: that task failed, the others canceled, the release failed, publish never resent', async () => {
    const { mock } = await replaceServices(t.api, 3, { stageMs: 20, publishMs: 60_000 });
    mocks.push(mock);
    const bad = mock.serviceNames[0]!;
    mock.setBehaviour({ httpStatus: 503 }, bad, 'publish');
    const created = await stagedRelease(mock);
    const releaseId = created.kf_id;
    const res = await t.api('POST', `/releases/${releaseId}/publish`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ message: 'publishing' });
    await expectFailedOutcome(mock, releaseId, bad, 'publish', 'HTTP 503');
    expect(mock.callsFor({ service: bad, action: 'publish' }).map((c) => c.status)).toEqual([503]);
    // the release did not publish: its version is the one it was created with
    expect((await t.api('GET', `/releases/${releaseId}`)).body.version).toBe(created.version);
  });

  test('publish connection dropped: that task failed, the others canceled, the release failed, publish never resent', async () => {
    const { mock } = await replaceServices(t.api, 3, { stageMs: 20, publishMs: 60_000 });
    mocks.push(mock);
    const bad = mock.serviceNames[1]!;
    mock.setBehaviour({ drop: true }, bad, 'publish');
    const releaseId = (await stagedRelease(mock)).kf_id;
    const res = await t.api('POST', `/releases/${releaseId}/publish`);
    expect(res.status).toBe(200);
    await expectFailedOutcome(mock, releaseId, bad, 'publish', '');
    expect(mock.callsFor({ service: bad, action: 'publish' }).map((c) => c.status)).toEqual([0]);
  });
});
