import { afterAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRunningRelease,
  createStudy,
  eventsOf,
  registerMockServices,
  type TaskJson,
  tasksByService,
  waitForState,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// each case needs its own deadlines, so each runs on its own system
const systems: TestSystem[] = [];
const mocks: MockHandle[] = [];

afterAll(async () => {
  for (const m of mocks) await m.stop();
  for (const s of systems) await s.stop();
});

async function system(label: string, env: Record<string, string>) {
  const t = await startTestSystem(label, env);
  systems.push(t);
  const study = await createStudy(t.api);
  return { t, study };
}

async function services(t: TestSystem, count: number, options: Parameters<typeof registerMockServices>[2]) {
  const { mock, serviceIds } = await registerMockServices(t.api, count, options);
  mocks.push(mock);
  return { mock, serviceIds };
}

describe('timeouts', () => {
  test('a task without progress for TASK_TIMEOUT_MS: the release is canceled, the event names that task', async () => {
    const TASK_TIMEOUT_MS = 800;
    const { t, study } = await system('timeout_task', { TASK_TIMEOUT_MS: String(TASK_TIMEOUT_MS) });
    const { mock } = await services(t, 2, { stageMs: 60_000 });
    const [stuck, moving] = mock.serviceNames as [string, string];
    // the stuck service never reports any progress; the other one moves 1% every 50 ms
    mock.setBehaviour({ progressForm: 'null' }, stuck);
    mock.setBehaviour({ stageMs: 5_000 }, moving);

    const created = await createRunningRelease(t.api, [study]);
    const done = await waitForState(t.api, created.kf_id, ['canceled', 'failed', 'published'], 10_000);
    expect(done.state).toBe('canceled');
    // not before the timeout (on the database's clock, where the release records when it entered each
    // state); how soon after it is bounded by the wait above, not asserted on the test's clock
    expect(Date.parse(done.states_at.canceling) - Date.parse(done.states_at.running)).toBeGreaterThanOrEqual(
      TASK_TIMEOUT_MS - 100,
    );
    expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled']);
    for (const task of done.tasks as TaskJson[]) {
      expect(mock.callsFor({ taskId: task.kf_id, action: 'cancel' }).map((c) => c.status)).toEqual([200]);
    }
    const byService = tasksByService(done);
    const stuckTask = byService.get(stuck)!;
    const movingTask = byService.get(moving)!;
    const events = await eventsOf(t.api, created.kf_id);
    const timedOut = events.filter((e) => e.message.endsWith('timed out'));
    expect(timedOut.length).toBeGreaterThanOrEqual(1);
    expect(timedOut[0]!.message).toBe(`task ${stuckTask.kf_id} (no progress for 800 ms) timed out`);
    expect(timedOut[0]!.event_type).toBe('warning');
    expect(events.some((e) => e.message.includes(movingTask.kf_id) && e.message.includes('timed out'))).toBe(
      false,
    );
    const messages = events.map((e) => e.message);
    expect(messages).toContain(
      `release ${created.kf_id}, version ${done.version} changed from running to canceling`,
    );
    expect(messages).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to canceled`,
    );
    expect(events.filter((e) => e.event_type === 'error')).toHaveLength(0);
  });

  test('a release older than RELEASE_TIMEOUT_MS: canceled, the event names the release', async () => {
    const RELEASE_TIMEOUT_MS = 1_000;
    const { t, study } = await system('timeout_release', { RELEASE_TIMEOUT_MS: String(RELEASE_TIMEOUT_MS) });
    // both services keep making progress: only the release deadline can end it
    const { mock } = await services(t, 2, { stageMs: 60_000 });
    const created = await createRunningRelease(t.api, [study]);
    const done = await waitForState(t.api, created.kf_id, ['canceled', 'failed', 'published'], 10_000);
    expect(done.state).toBe('canceled');
    // not before the release's deadline, on the database's clock
    expect(Date.parse(done.states_at.canceling) - Date.parse(done.states_at.waiting)).toBeGreaterThanOrEqual(
      RELEASE_TIMEOUT_MS - 100,
    );
    expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled']);
    for (const task of done.tasks as TaskJson[]) {
      expect(mock.callsFor({ taskId: task.kf_id, action: 'cancel' }).map((c) => c.status)).toEqual([200]);
    }
    const events = await eventsOf(t.api, created.kf_id);
    const timedOut = events.filter((e) => e.message.endsWith('timed out'));
    expect(timedOut.map((e) => [e.event_type, e.message])).toEqual([
      ['warning', `release ${created.kf_id} timed out`],
    ]);
    expect(events.map((e) => e.message)).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to canceled`,
    );
  });
});

describe('health checks', () => {
  test('a service down past the threshold fails its task and the release; back up, it is ok again', async () => {
    const THRESHOLD = 3;
    const { t, study } = await system('health_down', {
      HEALTH_INTERVAL_MS: '50',
      HEALTH_FAILURE_THRESHOLD: String(THRESHOLD),
    });
    const { mock, serviceIds } = await services(t, 2, { stageMs: 60_000 });
    const [down, fine] = mock.serviceNames as [string, string];
    const downId = serviceIds[0]!;
    const created = await createRunningRelease(t.api, [study]);
    const before = await t.api('GET', `/task-services/${downId}`);
    expect(before.body.health_status).toBe('ok');

    mock.setBehaviour({ statusMode: 'down' }, down, 'status');
    const seenDown = await until(
      async () => {
        const res = await t.api('GET', `/task-services/${downId}`);
        return res.body.health_status === 'down' ? res.body : undefined;
      },
      { message: 'the service to be down' },
    );
    expect(seenDown.last_ok_status).toBeGreaterThan(THRESHOLD);

    const done = await waitForState(t.api, created.kf_id, ['failed', 'canceled', 'published']);
    expect(done.state).toBe('failed');
    const byService = tasksByService(done);
    const failedTask = byService.get(down)!;
    expect(failedTask.state).toBe('failed');
    expect(byService.get(fine)!.state).toBe('canceled');
    expect(
      mock.callsFor({ taskId: byService.get(fine)!.kf_id, action: 'cancel' }).map((c) => c.status),
    ).toEqual([200]);
    // the down service may still hold work (only its /status is down): it is sent a cancel too
    expect(mock.callsFor({ taskId: failedTask.kf_id, action: 'cancel' }).length).toBeGreaterThanOrEqual(1);
    const downChecks = mock.callsFor({ service: down, action: 'status' }).filter((c) => c.status === 503);
    expect(downChecks.length).toBeGreaterThan(THRESHOLD);

    const events = await eventsOf(t.api, created.kf_id);
    const downEvent = events.find((e) => e.message.startsWith(`task service ${down} is down`));
    expect(downEvent?.event_type).toBe('error');
    expect(downEvent!.task).toEndWith(`/tasks/${failedTask.kf_id}`);
    const messages = events.map((e) => e.message);
    expect(messages).toContain(`task ${failedTask.kf_id} changed from running to failed`);
    expect(messages).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to failed`,
    );
    // the other service stayed healthy
    const other = await t.api('GET', `/task-services/${serviceIds[1]}`);
    expect([other.body.health_status, other.body.last_ok_status]).toEqual(['ok', 0]);

    mock.setBehaviour({ statusMode: 'up' }, down, 'status');
    const up = await until(
      async () => {
        const res = await t.api('GET', `/task-services/${downId}`);
        return res.body.health_status === 'ok' ? res.body : undefined;
      },
      { message: 'the service to be up again' },
    );
    expect(up.last_ok_status).toBe(0);
    const serviceEvents = await t.api('GET', `/events?task_service=${downId}&limit=100`);
    const texts = (serviceEvents.body.results as Array<{ message: string }>).map((e) => e.message);
    expect(texts).toContain(`task service ${down} (${downId}) is up again`);
    expect(texts.some((m) => m.startsWith(`task service ${down} (${downId}) is down:`))).toBe(true);
  });
});
