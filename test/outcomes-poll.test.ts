import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { outage } from './support/faults';
import {
  createRelease,
  createRunningRelease,
  createStudy,
  eventsOf,
  replaceServices,
  type TaskJson,
  tasksByService,
  waitForState,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

/** the outage tolerance: HEALTH_FAILURE_THRESHOLD × HEALTH_INTERVAL_MS */
const HEALTH_INTERVAL_MS = 1_000;
const HEALTH_FAILURE_THRESHOLD = 3;
const TOLERANCE_S = (HEALTH_INTERVAL_MS * HEALTH_FAILURE_THRESHOLD) / 1000;

let t: TestSystem;
let study: string;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  t = await startTestSystem('outcomes_poll', {
    POLL_INTERVAL_MS: '20',
    REQUEST_TIMEOUT_MS: '1000',
    HEALTH_INTERVAL_MS: String(HEALTH_INTERVAL_MS),
    HEALTH_FAILURE_THRESHOLD: String(HEALTH_FAILURE_THRESHOLD),
  });
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

async function finalRelease(releaseId: string) {
  return waitForState(t.api, releaseId, ['failed', 'canceled', 'published']);
}

/**
 * Every task was sent a cancel, `failed`'s too (its service may hold work), and none is left
 * pending, running or staged at its service; a task whose service itself reported canceled gets none.
 */
function expectAllCanceled(
  mock: MockHandle,
  release: { tasks: TaskJson[] },
  special: { failed: string } | { reportedCanceled: string },
) {
  for (const task of release.tasks) {
    const cancels = mock.callsFor({ taskId: task.kf_id, action: 'cancel' });
    if ('reportedCanceled' in special && task.service_name === special.reportedCanceled) {
      expect(cancels).toHaveLength(0);
      continue;
    }
    expect(cancels.length).toBeGreaterThanOrEqual(1);
    expect(cancels.every((c) => c.status === 200)).toBe(true);
    if (!('failed' in special && task.service_name === special.failed)) expect(task.state).toBe('canceled');
  }
  // (a service that reported the task canceled is taken at its word)
  const trusted = release.tasks.filter(
    (t) => !('reportedCanceled' in special && t.service_name === special.reportedCanceled),
  );
  for (const view of mock.tasks().filter((x) => trusted.some((t) => t.kf_id === x.kf_id))) {
    expect(['canceled', 'failed']).toContain(view.state);
  }
}

describe('poll answers', () => {
  test('a poll answers failed: that task failed, the others canceled, the release failed', async () => {
    const mock = await fresh(3, { stageMs: 60_000 });
    const bad = mock.serviceNames[0]!;
    mock.setBehaviour({ failAfterMs: 150 }, bad, 'start');
    const created = await createRelease(t.api, [study]);
    const done = await finalRelease(created.kf_id);
    expect(done.state).toBe('failed');
    const failed = tasksByService(done).get(bad)!;
    expect(failed.state).toBe('failed');
    expectAllCanceled(mock, done, { failed: bad });
    // the coordinator learnt it by polling: the last get_status of that task answered failed
    const polls = mock.callsFor({ taskId: failed.kf_id, action: 'get_status' });
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect(mock.tasks(bad).find((x) => x.kf_id === failed.kf_id)?.state).toBe('failed');

    const events = await eventsOf(t.api, created.kf_id);
    const move = events.find((e) => e.message === `task ${failed.kf_id} changed from running to failed`);
    expect(move?.event_type).toBe('error');
    const messages = events.map((e) => e.message);
    expect(messages).toContain(
      `release ${created.kf_id}, version ${done.version} changed from running to canceling`,
    );
    expect(messages).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to failed`,
    );
  });

  test('a poll answers cancelled: that task canceled, the others canceled, the release canceled', async () => {
    const mock = await fresh(3, { stageMs: 60_000 });
    const bad = mock.serviceNames[1]!;
    // the service spells its running task "cancelled" in get_status answers: a cancel it did itself
    mock.setBehaviour({ stateAliases: { running: 'cancelled' } }, bad, 'get_status');
    const created = await createRelease(t.api, [study]);
    const done = await finalRelease(created.kf_id);
    expect(done.state).toBe('canceled');
    const canceled = tasksByService(done).get(bad)!;
    expect(canceled.state).toBe('canceled');
    expectAllCanceled(mock, done, { reportedCanceled: bad });
    const polls = mock.callsFor({ taskId: canceled.kf_id, action: 'get_status' });
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect((polls[0]!.body as { action: string }).action).toBe('get_status');

    const events = await eventsOf(t.api, created.kf_id);
    const move = events.find((e) => e.message === `task ${canceled.kf_id} changed from running to canceled`);
    expect(move?.event_type).toBe('info');
    const messages = events.map((e) => e.message);
    expect(messages).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to canceled`,
    );
    expect(events.filter((e) => e.event_type === 'error')).toHaveLength(0);
  });

  test('services that never call back: staged and published come from polls alone', async () => {
    const mock = await fresh(2, { stageMs: 150, publishMs: 150, behaviour: { callback: 'never' } });
    const created = await createRelease(t.api, [study]);
    const staged = await waitForState(t.api, created.kf_id, 'staged');
    expect(staged.tasks.map((x: TaskJson) => [x.state, x.progress])).toEqual([
      ['staged', 100],
      ['staged', 100],
    ]);
    const publish = await t.api('POST', `/releases/${created.kf_id}/publish`);
    expect(publish.status).toBe(200);
    const published = await waitForState(t.api, created.kf_id, 'published');
    expect(published.tasks.map((x: TaskJson) => x.state)).toEqual(['published', 'published']);
    expect(published.version).not.toBe(created.version);
    expect(mock.callbacks).toHaveLength(0);
    for (const task of published.tasks as TaskJson[]) {
      const polls = mock.callsFor({ taskId: task.kf_id, action: 'get_status' });
      expect(polls.length).toBeGreaterThanOrEqual(2); // at least one per phase
      expect(polls.every((c) => c.status === 200)).toBe(true);
      expect(mock.callsFor({ taskId: task.kf_id, action: 'start' })).toHaveLength(1);
      expect(mock.callsFor({ taskId: task.kf_id, action: 'publish' })).toHaveLength(1);
    }
    const messages = (await eventsOf(t.api, created.kf_id)).map((e) => e.message);
    for (const task of published.tasks as TaskJson[]) {
      expect(messages).toContain(`task ${task.kf_id} changed from running to staged`);
      expect(messages).toContain(`task ${task.kf_id} changed from publishing to published`);
    }
    expect(messages).toContain(
      `release ${created.kf_id}, version ${created.version} changed from running to staged`,
    );
    expect(messages).toContain(
      `release ${created.kf_id}, version ${published.version} changed from publishing to published`,
    );
  });
});

describe('poll not answered', () => {
  test('get_status refused (404: the service forgot the task): failed at once, everything canceled', async () => {
    const mock = await fresh(2, { stageMs: 60_000 });
    const bad = mock.serviceNames[0]!;
    mock.setBehaviour({ httpStatus: 404 }, bad, 'get_status');
    const created = await createRelease(t.api, [study]);
    const done = await finalRelease(created.kf_id);
    expect(done.state).toBe('failed');
    const failed = tasksByService(done).get(bad)!;
    expect(failed.state).toBe('failed');
    expectAllCanceled(mock, done, { failed: bad });
    expect(mock.callsFor({ taskId: failed.kf_id, action: 'get_status' }).map((c) => c.status)).toEqual([404]);
    const events = await eventsOf(t.api, created.kf_id);
    const refusal = events.find((e) =>
      e.message.startsWith(`request to get status of task ${failed.kf_id} of ${bad} failed: HTTP 404`),
    );
    expect(refusal?.event_type).toBe('error');
    expect(refusal!.task).toEndWith(`/tasks/${failed.kf_id}`);
    expect(events.some((e) => e.message === `task ${failed.kf_id} changed from running to failed`)).toBe(
      true,
    );
  });

  test('a service restarting for 2 s (503, then connections reset) does not fail the release', async () => {
    const mock = await fresh(2, { stageMs: 3_000 });
    const restarting = mock.serviceNames[0]!;
    const created = await createRunningRelease(t.api, [study]);
    mock.setBehaviour({ httpStatus: 503 }, restarting, 'get_status');
    await outage(1_000);
    mock.setBehaviour({ httpStatus: 0, drop: true }, restarting, 'get_status');
    await outage(1_000);
    mock.setBehaviour({ drop: false }, restarting, 'get_status');
    const staged = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 20_000);
    expect(staged.state).toBe('staged');
    const task = tasksByService(staged).get(restarting)!;
    const statuses = mock.callsFor({ taskId: task.kf_id, action: 'get_status' }).map((c) => c.status);
    expect(statuses).toContain(503);
    expect(statuses).toContain(0);
    expect(statuses.at(-1)).toBe(200);
    const events = await eventsOf(t.api, created.kf_id);
    // one warning for the outage, one note when it answers again; no error
    expect(events.filter((e) => e.event_type === 'error')).toHaveLength(0);
    expect(events.filter((e) => e.message.includes('polling again for up to'))).toHaveLength(1);
    expect(events.some((e) => e.message.startsWith(`${restarting} answers polls again after`))).toBe(true);
  });

  test(`get_status unreachable for longer than the outage tolerance (${TOLERANCE_S} s): failed, everything canceled`, async () => {
    const mock = await fresh(2, { stageMs: 60_000 });
    const bad = mock.serviceNames[1]!;
    mock.setBehaviour({ drop: true }, bad, 'get_status');
    const created = await createRelease(t.api, [study]);
    const done = await finalRelease(created.kf_id);
    expect(done.state).toBe('failed');
    const failed = tasksByService(done).get(bad)!;
    expect(failed.state).toBe('failed');
    expectAllCanceled(mock, done, { failed: bad });
    const polls = mock.callsFor({ taskId: failed.kf_id, action: 'get_status' });
    // retried with growing pauses, not in the same millisecond
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(polls.every((c) => c.status === 0)).toBe(true);
    const gaps = polls.slice(1).map((c, i) => c.at - polls[i]!.at);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(10);
    expect(polls.at(-1)!.at - polls[0]!.at).toBeGreaterThanOrEqual(TOLERANCE_S * 1000 - 1_000);
    const events = await eventsOf(t.api, created.kf_id);
    const final = events.filter((e) => e.message.startsWith(`${bad} did not answer polls for`));
    expect(final).toHaveLength(1);
    expect(final[0]!.event_type).toBe('error');
    expect(final[0]!.task).toEndWith(`/tasks/${failed.kf_id}`);
    expect(done.halt).toMatchObject({ reason: 'failed', service_name: bad });
  });
});

describe('state names and progress forms', () => {
  test('aliases and upper case are mapped; an unknown name is a warning, the state kept, the release completes', async () => {
    const mock = await fresh(2, { stageMs: 60_000, publishMs: 50 });
    const [aliased, odd] = mock.serviceNames as [string, string];
    mock.setBehaviour(
      { stateAliases: { pending: 'initialized' }, upperCaseStates: true, stageMs: 100 },
      aliased,
    );
    mock.setBehaviour({ stageMs: 600 }, odd);
    mock.setBehaviour({ stateAliases: { running: 'warming-up' } }, odd, 'get_status');
    const created = await createRelease(t.api, [study]);
    const oddTask = created.tasks.find((x) => (x as TaskJson).service_name === odd)!;

    // while the odd service is still working, its answers are warnings and its task stays running
    const warning = await until(
      async () =>
        (await eventsOf(t.api, created.kf_id)).find(
          (e) => e.event_type === 'warning' && e.message.includes('"warming-up"'),
        ),
      { message: 'a warning naming the unknown state' },
    );
    expect(warning.message).toBe(
      `task ${oddTask.kf_id} reported unknown state "warming-up" in poll; state kept`,
    );
    expect(warning.task).toEndWith(`/tasks/${oddTask.kf_id}`);
    expect((await t.api('GET', `/tasks/${oddTask.kf_id}`)).body.state).toBe('running');

    const staged = await waitForState(t.api, created.kf_id, 'staged');
    expect(staged.tasks.map((x: TaskJson) => x.state)).toEqual(['staged', 'staged']);
    expect((await t.api('POST', `/releases/${created.kf_id}/publish`)).status).toBe(200);
    const published = await waitForState(t.api, created.kf_id, ['published', 'failed', 'canceled']);
    expect(published.state).toBe('published');
    expect(published.tasks.map((x: TaskJson) => x.state)).toEqual(['published', 'published']);

    // the aliased service really spoke upper case / "INITIALIZED"
    const aliasedTask = tasksByService(published).get(aliased)!;
    expect(mock.callsFor({ taskId: aliasedTask.kf_id }).every((c) => c.status === 200)).toBe(true);
    const events = await eventsOf(t.api, created.kf_id);
    const warnings = events.filter((e) => e.event_type === 'warning');
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.every((e) => e.task?.endsWith(`/tasks/${oddTask.kf_id}`))).toBe(true);
    expect(warnings.every((e) => e.message.includes('warming-up'))).toBe(true);
    expect(events.filter((e) => e.event_type === 'error')).toHaveLength(0);
    const messages = events.map((e) => e.message);
    expect(messages).toContain(`task ${aliasedTask.kf_id} changed from running to staged`);
    expect(messages).toContain(`task ${oddTask.kf_id} changed from running to staged`);
  });

  test('progress as int, float, "50%", null or missing breaks nothing; numeric progress shows in GET /tasks/{id}', async () => {
    const forms = ['int', 'float', 'string', 'null', 'missing'] as const;
    const mock = await fresh(forms.length, { stageMs: 60_000, publishMs: 50 });
    forms.forEach((form, i) => {
      mock.setBehaviour({ progressForm: form, stageMs: 1_500 }, mock.serviceNames[i]!);
    });
    const created = await createRunningRelease(t.api, [study]);
    const byForm = new Map(
      forms.map((form, i) => [
        form,
        (created.tasks as TaskJson[]).find((x) => x.service_name === mock.serviceNames[i])!.kf_id,
      ]),
    );

    for (const form of ['int', 'float', 'string'] as const) {
      const task = await until(
        async () => {
          const res = await t.api('GET', `/tasks/${byForm.get(form)}`);
          return typeof res.body.progress === 'number' && res.body.progress > 0 && res.body.progress < 100
            ? res.body
            : undefined;
        },
        { message: `progress of the ${form} task to show` },
      );
      expect(task.state).toBe('running');
      if (form !== 'float') expect(Number.isInteger(task.progress)).toBe(true);
    }
    for (const form of ['null', 'missing'] as const) {
      const res = await t.api('GET', `/tasks/${byForm.get(form)}`);
      expect(res.status).toBe(200);
      expect(res.body.state).toBe('running');
      expect(res.body.progress).toBeNull();
    }

    const staged = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled']);
    expect(staged.state).toBe('staged');
    for (const task of staged.tasks as TaskJson[])
      expect([task.state, task.progress]).toEqual(['staged', 100]);
    expect((await t.api('POST', `/releases/${created.kf_id}/publish`)).status).toBe(200);
    const published = await waitForState(t.api, created.kf_id, ['published', 'failed', 'canceled']);
    expect(published.state).toBe('published');
    const events = await eventsOf(t.api, created.kf_id);
    expect(events.filter((e) => e.event_type !== 'info')).toHaveLength(0);
  });
});
