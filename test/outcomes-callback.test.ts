import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRelease,
  createRunningRelease,
  createStudy,
  eventsOf,
  replaceServices,
  startTestSystemWithPublicUrl,
  type TaskJson,
  waitForState,
} from './support/fixtures';
import type { TestSystem } from './support/system';
import { until } from './support/until';

// Polls are a minute apart here: within a test only callbacks (PATCH /tasks/{id}) move tasks.
let t: TestSystem;
let study: string;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  t = await startTestSystemWithPublicUrl('outcomes_callback', { POLL_INTERVAL_MS: '60000' });
  study = await createStudy(t.api);
});
afterAll(async () => {
  for (const m of mocks) await m.stop();
  await t?.stop();
});

async function fresh(count: number, options: Parameters<typeof replaceServices>[2] = {}) {
  const { mock } = await replaceServices(t.api, count, options);
  mocks.push(mock);
  return mock;
}

describe('callbacks have the effects of polls', () => {
  test('services calling back staged and published drive the release to published without a poll', async () => {
    const mock = await fresh(2, {
      stageMs: 100,
      publishMs: 100,
      coordinatorUrl: t.url,
      // callbacks need a token where the gateway checks them (an ADMIN token stands in for a service's)
      callbackToken: (t as TestSystem & { adminToken?: string }).adminToken,
      behaviour: { callback: 'after' },
    });
    const created = await createRelease(t.api, [study]);
    const staged = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled']);
    expect(staged.state).toBe('staged');
    expect((await t.api('POST', `/releases/${created.kf_id}/publish`)).status).toBe(200);
    const published = await waitForState(t.api, created.kf_id, ['published', 'failed', 'canceled']);
    expect(published.state).toBe('published');
    expect(published.tasks.map((x: TaskJson) => [x.state, x.progress])).toEqual([
      ['published', 100],
      ['published', 100],
    ]);
    const taskIds = (published.tasks as TaskJson[]).map((x) => x.kf_id);
    for (const id of taskIds) {
      expect(mock.callsFor({ taskId: id, action: 'get_status' })).toHaveLength(0);
      const states = mock.callbacks
        .filter((c) => c.taskId === id)
        .map((c) => (c.body as { state: string }).state);
      expect(states).toEqual(['staged', 'published']);
    }
    // the last callback's answer may still be on its way back to the mock
    await until(() => mock.callbacks.every((c) => c.status !== 0), {
      message: 'every callback to be answered',
    });
    expect(mock.callbacks.map((c) => [c.status, c.error])).toEqual(
      mock.callbacks.map(() => [200, undefined]),
    );
    const messages = (await eventsOf(t.api, created.kf_id)).map((e) => e.message);
    for (const id of taskIds) {
      expect(messages).toContain(`task ${id} changed from running to staged`);
      expect(messages).toContain(`task ${id} changed from publishing to published`);
    }
  });

  test('callback failed: that task failed, the others canceled, the release failed', async () => {
    const mock = await fresh(3, { stageMs: 60_000 });
    const created = await createRunningRelease(t.api, [study]);
    const failing = created.tasks[0]!.kf_id;
    const res = await t.api('PATCH', `/tasks/${failing}`, { state: 'failed' });
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('failed');
    const done = await waitForState(t.api, created.kf_id, ['failed', 'canceled', 'published']);
    expect(done.state).toBe('failed');
    for (const task of done.tasks as TaskJson[]) {
      const cancels = mock.callsFor({ taskId: task.kf_id, action: 'cancel' });
      if (task.kf_id === failing) {
        // the service said failed, not canceled: it may still hold work, so it is sent a cancel too
        expect(task.state).toBe('failed');
        expect(cancels.map((c) => c.status)).toEqual([200]);
      } else {
        expect(task.state).toBe('canceled');
        expect(cancels.map((c) => c.status)).toEqual([200]);
      }
    }
    const events = await eventsOf(t.api, created.kf_id);
    expect(
      events.find((e) => e.message === `task ${failing} changed from running to failed`)?.event_type,
    ).toBe('error');
    expect(events.map((e) => e.message)).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to failed`,
    );
  });

  test('callback cancelled: every task and the release canceled; a late failed is recorded but changes nothing', async () => {
    const mock = await fresh(2, { stageMs: 60_000 });
    const created = await createRunningRelease(t.api, [study]);
    const [first, second] = created.tasks.map((x) => x.kf_id) as [string, string];
    const res = await t.api('PATCH', `/tasks/${first}`, { state: 'cancelled' });
    expect(res.status).toBe(200);
    expect(res.body.state).toBe('canceled');
    const done = await waitForState(t.api, created.kf_id, ['failed', 'canceled', 'published']);
    expect(done.state).toBe('canceled');
    expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled']);
    expect(mock.callsFor({ taskId: first, action: 'cancel' })).toHaveLength(0);
    expect(mock.callsFor({ taskId: second, action: 'cancel' }).map((c) => c.status)).toEqual([200]);
    const messages = (await eventsOf(t.api, created.kf_id)).map((e) => e.message);
    expect(messages).toContain(`task ${first} changed from running to canceled`);
    expect(messages).toContain(`task ${second} changed from running to canceled`);
    expect(messages).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to canceled`,
    );

    const late = await t.api('PATCH', `/tasks/${second}`, { state: 'failed' });
    expect(late.status).toBeLessThan(500);
    expect((await t.api('GET', `/tasks/${second}`)).body.state).toBe('canceled');
    expect((await t.api('GET', `/releases/${created.kf_id}`)).body.state).toBe('canceled');
    const warnings = (await eventsOf(t.api, created.kf_id)).filter((e) => e.event_type === 'warning');
    expect(warnings.map((e) => e.message)).toEqual([
      `task ${second} reported failed after it was canceled (ignored)`,
    ]);
  });

  test('callback progress: shown in GET /tasks/{id}, the state kept', async () => {
    await fresh(1, { stageMs: 60_000, behaviour: { progressForm: 'null' } });
    const created = await createRunningRelease(t.api, [study]);
    const id = created.tasks[0]!.kf_id;
    const a = await t.api('PATCH', `/tasks/${id}`, { progress: 37.5 });
    expect(a.status).toBe(200);
    expect([a.body.state, a.body.progress]).toEqual(['running', 37.5]);
    expect((await t.api('GET', `/tasks/${id}`)).body.progress).toBe(37.5);
    const b = await t.api('PATCH', `/tasks/${id}`, { progress: '55%' });
    expect(b.status).toBe(200);
    const shown = await t.api('GET', `/tasks/${id}`);
    expect([shown.body.state, shown.body.progress]).toEqual(['running', 55]);
    expect((await t.api('GET', `/releases/${created.kf_id}`)).body.state).toBe('running');
    expect(await t.api('DELETE', `/releases/${created.kf_id}`).then((r) => r.status)).toBe(200);
    await waitForState(t.api, created.kf_id, 'canceled');
  });

  test('impossible transitions are refused 409, recorded as warnings, never applied', async () => {
    await fresh(2, { stageMs: 60_000 });
    const created = await createRunningRelease(t.api, [study]);
    const [first, second] = created.tasks.map((x) => x.kf_id) as [string, string];
    // backwards (pending = initialized) and too far ahead (publishing while the release runs)
    for (const state of ['pending', 'publishing']) {
      const res = await t.api('PATCH', `/tasks/${first}`, { state });
      expect(res.status).toBe(409);
      expect(typeof res.body.detail).toBe('string');
    }
    // a staged task may not go back to running
    expect((await t.api('PATCH', `/tasks/${second}`, { state: 'staged' })).status).toBe(200);
    const back = await t.api('PATCH', `/tasks/${second}`, { state: 'RUNNING' });
    expect(back.status).toBe(409);

    const release = await t.api('GET', `/releases/${created.kf_id}`);
    expect(release.body.state).toBe('running');
    expect(release.body.tasks.map((x: TaskJson) => x.state)).toEqual(['running', 'staged']);
    const events = await eventsOf(t.api, created.kf_id);
    const warnings = events.filter((e) => e.event_type === 'warning');
    expect(warnings).toHaveLength(3);
    expect(warnings[0]!.task).toEndWith(`/tasks/${first}`);
    expect(warnings[0]!.message).toContain('initialized');
    expect(warnings[1]!.message).toContain('publishing');
    expect(warnings[2]!.task).toEndWith(`/tasks/${second}`);
    expect(warnings[2]!.message).toContain('running');
    const moves = events.filter((e) => e.message.startsWith(`task ${first} changed`)).map((e) => e.message);
    expect(moves).toEqual([
      `task ${first} changed from waiting to initialized`,
      `task ${first} changed from initialized to running`,
    ]);
    expect(await t.api('DELETE', `/releases/${created.kf_id}`).then((r) => r.status)).toBe(200);
    await waitForState(t.api, created.kf_id, 'canceled');
  });
});
