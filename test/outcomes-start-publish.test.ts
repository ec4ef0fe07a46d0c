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
  t = await startTestSystem('outcomes_start_publish', {
    REQUEST_TIMEOUT_MS: '1000',
    START_TIMEOUT_MS: '1500',
    PUBLISH_TIMEOUT_MS: '1500',
  });
  study = await createStudy(t.api);
});
afterAll(async () => {
  for (const m of mocks) await m.stop();
  await t?.stop();
});

/**
 * `bad`'s task failed after a refused (an HTTP answer) or an unanswered `action` that the service
 * did not take, the others canceled, the release failed; every task got that action exactly once
 * (start/publish are never resent) and every task got a cancel, the failed one too (its service
 * may hold work: docs/lifecycle.md, "Entering canceling").
 */
async function expectFailedOutcome(
  mock: MockHandle,
  releaseId: string,
  bad: string,
  action: 'start' | 'publish',
  how: { refused: string } | { unanswered: true },
) {
  const done = await waitForState(t.api, releaseId, ['failed', 'canceled', 'published']);
  expect(done.state).toBe('failed');
  const byService = tasksByService(done);
  const failed = byService.get(bad)!;
  expect(failed.state).toBe('failed');
  for (const name of mock.serviceNames.filter((n) => n !== bad)) {
    const task = byService.get(name)!;
    expect(task.state).toBe('canceled');
    // one cancel, or two when its start answer came back after the halt (it may have landed after the first)
    const cancels = mock.callsFor({ taskId: task.kf_id, action: 'cancel' }).map((c) => c.status);
    expect(cancels.length === 1 || cancels.length === 2).toBe(true);
    expect(cancels.every((status) => status === 200)).toBe(true);
  }
  // nothing left pending, running or staged at the services
  for (const view of mock.tasks().filter((x) => x.release_id === releaseId)) {
    expect(['canceled', 'published']).toContain(view.state);
  }
  // the failed task's service gets a cancel too: its copy of the task may be pending or running
  expect(mock.callsFor({ taskId: failed.kf_id, action: 'cancel' }).map((c) => c.status)).toEqual([200]);
  for (const task of done.tasks as Array<{ kf_id: string }>) {
    expect(mock.callsFor({ taskId: task.kf_id, action })).toHaveLength(1);
  }
  // the service saw at most one start per task (the refused one never reached the action)
  for (const view of mock.tasks().filter((x) => x.release_id === releaseId))
    expect(view.starts).toBe(view.service === bad && action === 'start' ? 0 : 1);

  const events = await eventsOf(t.api, releaseId);
  const call = events.find((e) =>
    e.message.startsWith(`request to ${action} task ${failed.kf_id} of ${bad} `),
  );
  expect(call!.task).toEndWith(`/tasks/${failed.kf_id}`);
  if ('refused' in how) {
    expect(call?.event_type).toBe('error');
    expect(call!.message).toContain(`failed: ${how.refused}`);
  } else {
    // no answer: the outcome was unknown until polls showed the service never took the action
    expect(call?.event_type).toBe('warning');
    expect(call!.message).toContain('its outcome is unknown');
    const notTaken = events.find((e) =>
      e.message.startsWith(`${action} of task ${failed.kf_id} of ${bad} was not taken`),
    );
    expect(notTaken?.event_type).toBe('error');
  }
  const halt = (await t.api('GET', `/releases/${releaseId}`)).body.halt;
  expect(halt).toMatchObject({ reason: 'failed', service_name: bad });
  expect(halt.task).toEndWith(`/tasks/${failed.kf_id}`);
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
    await expectFailedOutcome(mock, created.kf_id, bad, 'start', { refused: 'HTTP 503' });
    expect(mock.callsFor({ service: bad, action: 'start' }).map((c) => c.status)).toEqual([503]);
  });

  test('start connection dropped and never taken: polled until the start deadline, then failed; start never resent', async () => {
    const { mock } = await replaceServices(t.api, 3, { stageMs: 60_000 });
    mocks.push(mock);
    const bad = mock.serviceNames[2]!;
    mock.setBehaviour({ drop: true }, bad, 'start');
    const created = await createRelease(t.api, [study]);
    await expectFailedOutcome(mock, created.kf_id, bad, 'start', { unanswered: true });
    expect(mock.callsFor({ service: bad, action: 'start' }).map((c) => c.status)).toEqual([0]);
    // it was polled (at once after the lost answer) to find out
    const badTask = mock.tasks(bad).find((x) => x.release_id === created.kf_id)!;
    expect(mock.callsFor({ taskId: badTask.kf_id, action: 'get_status' }).length).toBeGreaterThan(0);
  });

  test('a start answered after its deadline that the service did take: the release is staged, nothing resent', async () => {
    // the service does all its work inside start and answers only when done (after 3 s; the deadline is 1.5 s)
    const { mock } = await replaceServices(t.api, 2, { stageMs: 3_000 });
    mocks.push(mock);
    const slow = mock.serviceNames[0]!;
    mock.setBehaviour({ replyWhenDone: true }, slow, 'start');
    const created = await createRelease(t.api, [study]);
    const staged = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 30_000);
    expect(staged.state).toBe('staged');
    for (const task of staged.tasks as Array<{ kf_id: string }>) {
      expect(mock.callsFor({ taskId: task.kf_id, action: 'start' })).toHaveLength(1);
      expect(mock.callsFor({ taskId: task.kf_id, action: 'cancel' })).toHaveLength(0);
    }
    const events = await eventsOf(t.api, created.kf_id);
    expect(
      events.some((e) => e.event_type === 'warning' && e.message.includes('its outcome is unknown')),
    ).toBe(true);
    expect(events.some((e) => e.event_type === 'error')).toBe(false);
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
    await expectFailedOutcome(mock, releaseId, bad, 'publish', { refused: 'HTTP 503' });
    expect(mock.callsFor({ service: bad, action: 'publish' }).map((c) => c.status)).toEqual([503]);
    // the release did not publish: its version is the one it was created with
    expect((await t.api('GET', `/releases/${releaseId}`)).body.version).toBe(created.version);
  });

  test('publish connection dropped and never taken: polled until the publish deadline, then failed; never resent', async () => {
    const { mock } = await replaceServices(t.api, 3, { stageMs: 20, publishMs: 60_000 });
    mocks.push(mock);
    const bad = mock.serviceNames[1]!;
    mock.setBehaviour({ drop: true }, bad, 'publish');
    const releaseId = (await stagedRelease(mock)).kf_id;
    const res = await t.api('POST', `/releases/${releaseId}/publish`);
    expect(res.status).toBe(200);
    await expectFailedOutcome(mock, releaseId, bad, 'publish', { unanswered: true });
    expect(mock.callsFor({ service: bad, action: 'publish' }).map((c) => c.status)).toEqual([0]);
  });

  test('a publish answered after its deadline that the service did take: published, nothing resent', async () => {
    const { mock } = await replaceServices(t.api, 2, { stageMs: 20, publishMs: 3_000 });
    mocks.push(mock);
    mock.setBehaviour({ replyWhenDone: true }, mock.serviceNames[1]!, 'publish');
    const releaseId = (await stagedRelease(mock)).kf_id;
    expect((await t.api('POST', `/releases/${releaseId}/publish`)).status).toBe(200);
    const done = await waitForState(t.api, releaseId, ['published', 'failed', 'canceled'], 30_000);
    expect(done.state).toBe('published');
    for (const task of done.tasks as Array<{ kf_id: string }>) {
      expect(mock.callsFor({ taskId: task.kf_id, action: 'publish' })).toHaveLength(1);
    }
  });
});
