import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
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

const POLL_RETRIES = 3;

let t: TestSystem;
let study: string;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  t = await startTestSystem('outcomes_poll', {
    POLL_INTERVAL_MS: '20',
    REQUEST_TIMEOUT_MS: '1000',
    POLL_RETRIES: String(POLL_RETRIES),
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

/** Every task except `except`'s is canceled and got exactly one cancel; `except`'s got none. */
function expectOthersCanceled(mock: MockHandle, release: { tasks: TaskJson[] }, except: string) {
  for (const task of release.tasks) {
    const cancels = mock.callsFor({ taskId: task.kf_id, action: 'cancel' });
    if (task.service_name === except) {
      expect(cancels).toHaveLength(0);
      continue;
    }
    expect(task.state).toBe('canceled');
    expect(cancels.map((c) => c.status)).toEqual([200]);
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
    expectOthersCanceled(mock, done, bad);
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
    expectOthersCanceled(mock, done, bad);
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
  test('get_status answered 503: failed at once (no retry of an HTTP answer), the release failed', async () => {
    const mock = await fresh(2, { stageMs: 60_000 });
    const bad = mock.serviceNames[0]!;
    mock.setBehaviour({ httpStatus: 503 }, bad, 'get_status');
    const created = await createRelease(t.api, [study]);
    const done = await finalRelease(created.kf_id);
    expect(done.state).toBe('failed');
    const failed = tasksByService(done).get(bad)!;
    expect(failed.state).toBe('failed');
    expectOthersCanceled(mock, done, bad);
    expect(mock.callsFor({ taskId: failed.kf_id, action: 'get_status' }).map((c) => c.status)).toEqual([503]);
    const events = await eventsOf(t.api, created.kf_id);
    const refusal = events.find((e) =>
      e.message.startsWith('request to get status of task failed: HTTP 503'),
    );
    expect(refusal?.event_type).toBe('error');
    expect(refusal!.task).toEndWith(`/tasks/${failed.kf_id}`);
    expect(events.some((e) => e.message === `task ${failed.kf_id} changed from running to failed`)).toBe(
      true,
    );
  });

  test(`get_status unreachable: failed only after ${POLL_RETRIES} transport retries`, async () => {
    const mock = await fresh(2, { stageMs: 60_000 });
    const bad = mock.serviceNames[1]!;
    mock.setBehaviour({ drop: true }, bad, 'get_status');
    const created = await createRelease(t.api, [study]);
    const done = await finalRelease(created.kf_id);
    expect(done.state).toBe('failed');
    const failed = tasksByService(done).get(bad)!;
    expect(failed.state).toBe('failed');
    expectOthersCanceled(mock, done, bad);
    const polls = mock.callsFor({ taskId: failed.kf_id, action: 'get_status' });
    expect(polls).toHaveLength(1 + POLL_RETRIES);
    expect(polls.every((c) => c.status === 0)).toBe(true);
    const events = await eventsOf(t.api, created.kf_id);
    const retries = events.filter((e) =>
      e.message.startsWith('request to get_status task failed (will retry):'),
    );
    expect(retries).toHaveLength(POLL_RETRIES);
    const final = events.filter((e) => e.message.startsWith('request to get status of task failed:'));
    expect(final).toHaveLength(1);
    expect(final[0]!.event_type).toBe('error');
    expect(final[0]!.task).toEndWith(`/tasks/${failed.kf_id}`);
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
