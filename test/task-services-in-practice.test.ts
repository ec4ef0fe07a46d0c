import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRelease,
  createStudy,
  eventsOf,
  replaceServices,
  tasksByService,
  waitForState,
  waitForTaskStates,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

/*
 * What real task services do and the coordinator must tolerate (docs/task-service-protocol.md,
 * "What real services do"; docs/lifecycle.md): callbacks without credentials, tokens bound to a
 * service, per-service deadlines, duplicate registrations, published versions, why a release halted.
 * The coordinator runs with its production poll interval (30 s): anything that ends in seconds here
 * ends so because of the adaptive cadence and the poll hints, not because polls are frequent.
 */

let t: TestSystem;
let study: string;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  t = await startTestSystem('in_practice', { POLL_INTERVAL_MS: '30000', SCHEDULER_TICK_MS: '50' });
  study = await createStudy(t.api);
});
afterAll(async () => {
  for (const m of mocks) await m.stop();
  await t?.stop();
});

async function fresh(count: number, options: Parameters<typeof replaceServices>[2] = {}) {
  const { mock, serviceIds } = await replaceServices(t.api, count, options);
  mocks.push(mock);
  return { mock, serviceIds };
}

describe('callbacks without credentials', () => {
  test('are not applied but make the coordinator poll at once: the release stages in about a second, one warning', async () => {
    // the services call back when staged, with no Authorization header at all
    const { mock } = await fresh(2, {
      stageMs: 300,
      coordinatorUrl: t.url,
      behaviour: { callback: 'after' },
    });
    const created = await createRelease(t.api, [study]);
    const staged = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 10_000);
    expect(staged.state).toBe('staged');
    await until(() => mock.callbacks.length === 2, { message: 'both callbacks to be answered' });
    for (const cb of mock.callbacks) expect(cb.status).toBe(202);
    const events = await eventsOf(t.api, created.kf_id);
    const warnings = events.filter((e) => e.message.includes('arrive without credentials'));
    expect(warnings).toHaveLength(2); // one per service of the release
    expect(warnings.map((w) => w.event_type)).toEqual(['warning', 'warning']);
    // staged came from polls (a hint, or the first poll 1 s after the start answer), never from a callback
    for (const task of staged.tasks as Array<{ kf_id: string }>) {
      expect(mock.callsFor({ taskId: task.kf_id, action: 'get_status' }).length).toBeGreaterThanOrEqual(1);
    }
  });

  test('the answer says nothing was applied; unknown tasks and finished ones are 401 as before', async () => {
    await fresh(1, { stageMs: 60_000 });
    const created = await createRelease(t.api, [study]);
    await waitForTaskStates(t.api, created.kf_id, 'running');
    const taskId = created.tasks[0]!.kf_id;
    const anon = await t.anonymous('PATCH', `/tasks/${taskId}`, { state: 'staged' });
    expect(anon.status).toBe(202);
    expect(anon.body.detail).toContain('Not applied');
    expect((await t.api('GET', `/tasks/${taskId}`)).body.state).toBe('running');
    expect((await t.anonymous('PATCH', '/tasks/TA_00000000', { state: 'staged' })).status).toBe(401);
    await t.api('DELETE', `/releases/${created.kf_id}`);
    await waitForState(t.api, created.kf_id, 'canceled');
    expect((await t.anonymous('PATCH', `/tasks/${taskId}`, { state: 'staged' })).status).toBe(401);
  });
});

describe('service tokens bound to a task service', () => {
  test('a bound service accepts callbacks only from its own token; an unbound one from any; /status warns about unbound ones', async () => {
    const { mock, serviceIds } = await fresh(2, { stageMs: 60_000 });
    const [boundId, unboundId] = serviceIds as [string, string];
    expect(
      (await t.api('PATCH', `/task-services/${boundId}`, { token_subject: 'search-client' })).status,
    ).toBe(200);
    const created = await createRelease(t.api, [study]);
    await waitForTaskStates(t.api, created.kf_id, 'running');
    const byService = tasksByService((await t.api('GET', `/releases/${created.kf_id}`)).body);
    const boundTask = byService.get(mock.serviceNames[0]!)!.kf_id;
    const unboundTask = byService.get(mock.serviceNames[1]!)!.kf_id;
    const own = await t.mint({ username: 'search-client', roles: [], service: true });
    const other = await t.mint({ username: 'portal-client', roles: [], service: true });
    const as = (token: string) => ({ authorization: `Bearer ${token}` });

    const refused = await t.api('PATCH', `/tasks/${boundTask}`, { progress: 10 }, as(other));
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toContain(boundId);
    expect((await t.api('PATCH', `/tasks/${boundTask}`, { progress: 20 }, as(own))).status).toBe(200);
    expect((await t.api('PATCH', `/tasks/${unboundTask}`, { progress: 30 }, as(other))).status).toBe(200);
    // the refused one never reached the coordinator: its progress is the bound service's own
    expect((await t.api('GET', `/tasks/${boundTask}`)).body.progress).toBe(20);

    const status = await t.anonymous('GET', '/status');
    expect(status.body.warnings).toHaveLength(1);
    expect(status.body.warnings[0]).toContain(mock.serviceNames[1]!);
    expect(status.body.warnings[0]).not.toContain(`${mock.serviceNames[0]!},`);
    expect(unboundId).toMatch(/^TS_/);
    await t.api('DELETE', `/releases/${created.kf_id}`);
  });
});

describe('registration', () => {
  test('a second enabled registration of a URL or a name is 409 naming the existing one', async () => {
    const { mock, serviceIds } = await fresh(1);
    const url = mock.serviceUrl(mock.serviceNames[0]!);
    const sameUrl = await t.api('POST', '/task-services', { name: 'copy', url: `${url}/` });
    expect(sameUrl.status).toBe(409);
    expect(sameUrl.body.detail).toContain(serviceIds[0]!);
    const sameName = await t.api('POST', '/task-services', { name: mock.serviceNames[0], url: `${url}x` });
    expect(sameName.status).toBe(409);
    // a disabled copy may exist, but enabling it is refused while the first is enabled
    const disabled = await t.api('POST', '/task-services', { name: 'copy', url, enabled: false });
    expect(disabled.status).toBe(201);
    const enable = await t.api('PATCH', `/task-services/${disabled.body.kf_id}`, { enabled: true });
    expect(enable.status).toBe(409);
  });

  test('per-service deadlines: a start slower than the service own start deadline has an unknown outcome, found by polls', async () => {
    const { mock, serviceIds } = await fresh(1, { stageMs: 1_500 });
    const settings = { start_timeout_ms: 500, request_timeout_ms: 2_000 };
    const res = await t.api('PATCH', `/task-services/${serviceIds[0]}`, settings);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ...settings, publish_timeout_ms: null, token_subject: null });
    mock.setBehaviour({ replyWhenDone: true }, mock.serviceNames[0]!, 'start');
    const created = await createRelease(t.api, [study]);
    const staged = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 15_000);
    expect(staged.state).toBe('staged');
    const events = await eventsOf(t.api, created.kf_id);
    expect(events.find((e) => e.message.includes('its outcome is unknown'))?.message).toContain(
      'timeout after 500 ms',
    );
    expect(mock.callsFor({ action: 'start' }).filter((c) => c.releaseId === created.kf_id)).toHaveLength(1);
  });

  test('bad settings are 400 naming the field', async () => {
    const { serviceIds } = await fresh(1);
    const bad = await t.api('PATCH', `/task-services/${serviceIds[0]}`, {
      start_timeout_ms: 5,
      token_audience: '',
    });
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body).sort()).toEqual(['start_timeout_ms', 'token_audience']);
  });
});

describe('why a release halted, and versions', () => {
  test('a failed release names the task, the service and the answer (REST and GraphQL); error events name the service', async () => {
    const { mock } = await fresh(2, { stageMs: 60_000 });
    const bad = mock.serviceNames[1]!;
    mock.setBehaviour({ httpStatus: 503 }, bad, 'start');
    const created = await createRelease(t.api, [study]);
    const failed = await waitForState(t.api, created.kf_id, ['failed', 'canceled'], 15_000);
    expect(failed.state).toBe('failed');
    const badTask = tasksByService(failed).get(bad)!;
    expect(failed.halt).toMatchObject({
      reason: 'failed',
      service_name: bad,
      canceled_by: null,
      message: expect.stringContaining('start refused: HTTP 503'),
    });
    expect(failed.halt.task).toEndWith(`/tasks/${badTask.kf_id}`);
    expect(failed.halt.task_service).toContain('/task-services/TS_');
    const errors = (await eventsOf(t.api, created.kf_id)).filter((e) => e.event_type === 'error');
    for (const e of errors.filter((x) => x.message.startsWith('request to')))
      expect(e.message).toContain(bad);
    const gql = await t.api('POST', '/graphql', {
      query: `query($id: ID!) { release(id: $id) { state halt { reason serviceName message canceledBy task { kfId } } } }`,
      variables: { id: btoa(`ReleaseNode:${created.kf_id}`) },
    });
    expect(gql.body.errors).toBeUndefined();
    expect(gql.body.data.release.halt).toMatchObject({
      reason: 'failed',
      serviceName: bad,
      canceledBy: null,
      task: { kfId: badTask.kf_id },
    });
  });

  test('a canceled release names who canceled it; publish records who published', async () => {
    await fresh(1, { stageMs: 60_000 });
    const created = await createRelease(t.api, [study]);
    expect((await t.api('DELETE', `/releases/${created.kf_id}`)).status).toBe(200);
    const canceled = await waitForState(t.api, created.kf_id, 'canceled');
    expect(canceled.halt).toMatchObject({ reason: 'canceled', canceled_by: 'test-admin', task: null });
    expect(Object.keys(canceled.states_at)).toEqual(
      expect.arrayContaining(['waiting', 'initializing', 'running', 'canceling', 'canceled']),
    );
  });

  test('a release created before a major one and published after it publishes above it (never backwards)', async () => {
    await fresh(1, { stageMs: 20, publishMs: 20 });
    const older = await createRelease(t.api, [study]);
    const major = await createRelease(t.api, [study], { is_major: true });
    await waitForState(t.api, older.kf_id, 'staged');
    await waitForState(t.api, major.kf_id, 'staged');
    expect((await t.api('POST', `/releases/${major.kf_id}/publish`)).status).toBe(200);
    const majorDone = await waitForState(t.api, major.kf_id, 'published');
    expect((await t.api('POST', `/releases/${older.kf_id}/publish`)).status).toBe(200);
    const olderDone = await waitForState(t.api, older.kf_id, 'published');
    expect(majorDone.version).toMatch(/^\d+\.0\.0$/);
    const [maj] = majorDone.version.split('.').map(Number);
    expect(olderDone.version).toBe(`${maj}.1.0`);
    expect(olderDone.published_by).toBe('test-admin');
    expect(olderDone.published_at).toEqual(expect.any(String));
  });
});
