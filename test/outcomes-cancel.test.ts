import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { MockHandle } from '../mock-task-service/src/index';
import type { ResultBatch, TaskResult } from '../src/infra/bus/messages';
import { busNames } from '../src/infra/bus/subjects';
import {
  createRelease,
  createRunningRelease,
  createStudy,
  eventsOf,
  replaceServices,
  type TaskJson,
  tasksByService,
  waitForState,
  waitForTaskStates,
} from './support/fixtures';
import { NATS_URL, startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

/**
 * A failing cancel is retried with growing pauses for the outage tolerance (HEALTH_FAILURE_THRESHOLD
 * × HEALTH_INTERVAL_MS): 1 s here.
 */
const RETRY_WINDOW = { HEALTH_FAILURE_THRESHOLD: '1', HEALTH_INTERVAL_MS: '1000' };
const RETRY_WINDOW_MS = 1_000;
// long on purpose: a hung start must be aborted by the cancel, not by this deadline
const LONG_REQUEST_TIMEOUT_MS = 10_000;
const SHORT_REQUEST_TIMEOUT_MS = 300;

let t: TestSystem; // long request deadline
let short: TestSystem; // short request deadline (for a service that hangs on cancel)
let study: string;
let shortStudy: string;
let nc: NatsConnection;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  [t, short] = await Promise.all([
    startTestSystem('outcomes_cancel', {
      REQUEST_TIMEOUT_MS: String(LONG_REQUEST_TIMEOUT_MS),
      ...RETRY_WINDOW,
    }),
    startTestSystem('outcomes_cancel_short', {
      REQUEST_TIMEOUT_MS: String(SHORT_REQUEST_TIMEOUT_MS),
      ...RETRY_WINDOW,
    }),
  ]);
  study = await createStudy(t.api);
  shortStudy = await createStudy(short.api);
  nc = await connect({ servers: NATS_URL });
});
afterAll(async () => {
  await nc?.close();
  for (const m of mocks) await m.stop();
  await t?.stop();
  await short?.stop();
});

async function fresh(sys: TestSystem, count: number, options: Parameters<typeof replaceServices>[2] = {}) {
  const { mock } = await replaceServices(sys.api, count, options);
  mocks.push(mock);
  return mock;
}

describe('DELETE /releases/{id}', () => {
  test('every task that is not final gets exactly one cancel (staged ones too); all end canceled', async () => {
    const mock = await fresh(t, 3, { stageMs: 60_000 });
    const quick = mock.serviceNames[0]!;
    mock.setBehaviour({ immediate: true }, quick, 'start');
    const created = await createRelease(t.api, [study]);
    await until(
      async () => {
        const r = (await t.api('GET', `/releases/${created.kf_id}`)).body;
        const states = (r.tasks as TaskJson[]).map((x) => `${x.service_name}:${x.state}`).sort();
        return r.state === 'running' && states.join() === `${quick}:staged,svc-1:running,svc-2:running`;
      },
      { message: 'one task staged, two running' },
    );
    const res = await t.api('DELETE', `/releases/${created.kf_id}`);
    expect(res.status).toBe(200);
    expect(['canceling', 'canceled']).toContain(res.body.state);
    const done = await waitForState(t.api, created.kf_id, ['canceled', 'failed', 'published']);
    expect(done.state).toBe('canceled');
    expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled', 'canceled']);
    for (const task of done.tasks as TaskJson[]) {
      expect(mock.callsFor({ taskId: task.kf_id, action: 'cancel' }).map((c) => c.status)).toEqual([200]);
    }
    const messages = (await eventsOf(t.api, created.kf_id)).map((e) => e.message);
    const staged = tasksByService(done).get(quick)!;
    expect(messages).toContain(`task ${staged.kf_id} changed from staged to canceled`);
  });

  test('a start hanging at the service is aborted at once by the cancel; the release is canceled long before the request deadline', async () => {
    const mock = await fresh(t, 2, { stageMs: 60_000 });
    const hanging = mock.serviceNames[0]!;
    mock.setBehaviour({ hang: true }, hanging, 'start');
    const created = await createRelease(t.api, [study]);
    const hungTask = (created.tasks as TaskJson[]).find((x) => x.service_name === hanging)!.kf_id;
    await until(() => mock.callsFor({ taskId: hungTask, action: 'start' }).length === 1, {
      message: 'the start to reach the hanging service',
    });
    await waitForState(t.api, created.kf_id, 'running');

    // watch the worker's results for that task (core NATS sees JetStream publishes; a worker
    // reports what it finished in one tick as one batch)
    const results: TaskResult[] = [];
    const sub = nc.subscribe(busNames(t.prefix).resultBatch, {
      callback: (_err, msg) => {
        for (const r of msg.json<ResultBatch>().results) if (r.taskId === hungTask) results.push(r);
      },
    });
    await nc.flush();
    try {
      const res = await t.api('DELETE', `/releases/${created.kf_id}`);
      expect(res.status).toBe(200);
      const done = await waitForState(t.api, created.kf_id, ['canceled', 'failed', 'published'], 3_000);
      expect(done.state).toBe('canceled');
      expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled']);

      const aborted = await until(() => results.find((r) => r.action === 'start'), {
        timeoutMs: 3_000,
        message: 'the aborted start to report',
      });
      expect(aborted.ok).toBe(false);
      expect(aborted.error).toBe('aborted (release halted)');
      // cut short by the abort, not ended by its own (long) deadline
      expect(aborted.latencyMs).toBeLessThan(LONG_REQUEST_TIMEOUT_MS);
    } finally {
      sub.unsubscribe();
    }
    // the service saw one start, never answered, and a cancel; the aborted start may have reached
    // it after that cancel, so it is canceled once more (docs/lifecycle.md: a late start is canceled again)
    expect(mock.callsFor({ taskId: hungTask, action: 'start' }).map((c) => c.status)).toEqual([0]);
    await until(() => mock.callsFor({ taskId: hungTask, action: 'cancel' }).length === 2, {
      message: 'the second cancel after the aborted start',
    });
    expect(mock.callsFor({ taskId: hungTask, action: 'cancel' }).map((c) => c.status)).toEqual([200, 200]);
    const events = await eventsOf(t.api, created.kf_id);
    expect(events.filter((e) => e.event_type === 'error')).toHaveLength(0);
    expect(events.some((e) => e.message.includes('may have been taken after the release halted'))).toBe(true);
  });

  test(`a service answering 503 to cancel: retried for ${RETRY_WINDOW_MS} ms with growing pauses, error events, the task still canceled`, async () => {
    const mock = await fresh(t, 2, { stageMs: 60_000 });
    const refusing = mock.serviceNames[1]!;
    mock.setBehaviour({ httpStatus: 503 }, refusing, 'cancel');
    const created = await createRunningRelease(t.api, [study]);
    expect((await t.api('DELETE', `/releases/${created.kf_id}`)).status).toBe(200);
    const done = await waitForState(t.api, created.kf_id, ['canceled', 'failed', 'published']);
    expect(done.state).toBe('canceled');
    expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled']);
    const refused = tasksByService(done).get(refusing)!;
    const attempts = mock.callsFor({ taskId: refused.kf_id, action: 'cancel' });
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts.every((c) => c.status === 503)).toBe(true);
    // the pauses grow, and the attempts stay within the window
    const gaps = attempts.slice(1).map((c, i) => c.at - attempts[i]!.at);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]!);
    expect(attempts.at(-1)!.at - attempts[0]!.at).toBeLessThan(RETRY_WINDOW_MS);
    const events = await eventsOf(t.api, created.kf_id);
    const retried = events.filter((e) =>
      e.message.startsWith(
        `request to cancel task ${refused.kf_id} of ${refusing} failed (will retry): HTTP 503`,
      ),
    );
    expect(retried).toHaveLength(attempts.length - 1);
    const final = events.filter((e) =>
      e.message.startsWith(`request to cancel task ${refused.kf_id} of ${refusing} failed: HTTP 503`),
    );
    expect(final).toHaveLength(1);
    for (const e of [...retried, ...final]) {
      expect(e.event_type).toBe('error');
      expect(e.task).toEndWith(`/tasks/${refused.kf_id}`);
    }
    expect(events.map((e) => e.message)).toContain(`task ${refused.kf_id} changed from running to canceled`);
  });

  test('a service hanging on cancel: the release still ends canceled, bounded by the retry window and one deadline', async () => {
    const mock = await fresh(short, 2, { stageMs: 60_000 });
    const hanging = mock.serviceNames[0]!;
    mock.setBehaviour({ hang: true }, hanging, 'cancel');
    const created = await createRunningRelease(short.api, [shortStudy]);
    const res = await short.api('DELETE', `/releases/${created.kf_id}`);
    expect(res.status).toBe(200);
    const bound = RETRY_WINDOW_MS + 2 * SHORT_REQUEST_TIMEOUT_MS + 3_000;
    const done = await waitForState(short.api, created.kf_id, ['canceled', 'failed', 'published'], bound);
    expect(done.state).toBe('canceled');
    // two cancel attempts, each waiting out the deadline, before it gave up (on the database's clock)
    expect(Date.parse(done.states_at.canceled) - Date.parse(done.states_at.canceling)).toBeGreaterThanOrEqual(
      2 * SHORT_REQUEST_TIMEOUT_MS - 50,
    );
    expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled']);
    const hungTask = tasksByService(done).get(hanging)!;
    const attempts = mock.callsFor({ taskId: hungTask.kf_id, action: 'cancel' }).map((c) => c.status);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.every((s) => s === 0)).toBe(true);
    const events = await eventsOf(short.api, created.kf_id);
    const final = events.find((e) =>
      e.message.startsWith(`request to cancel task ${hungTask.kf_id} of ${hanging} failed: timeout after`),
    );
    expect(final?.event_type).toBe('error');
    expect(events.map((e) => e.message)).toContain(
      `release ${created.kf_id}, version ${done.version} changed from canceling to canceled`,
    );
  });
});

describe('POST /releases/{id}/publish out of turn', () => {
  test('publish of a running release is 409 and sends nothing', async () => {
    const mock = await fresh(t, 1, { stageMs: 60_000 });
    const created = await createRunningRelease(t.api, [study]);
    const res = await t.api('POST', `/releases/${created.kf_id}/publish`);
    expect(res.status).toBe(409);
    expect(typeof res.body.detail).toBe('string');
    expect((await t.api('GET', `/releases/${created.kf_id}`)).body.state).toBe('running');
    expect(mock.callsFor({ action: 'publish' })).toHaveLength(0);
    await t.api('DELETE', `/releases/${created.kf_id}`);
    const done = await waitForTaskStates(t.api, created.kf_id, 'canceled');
    expect(done.tasks).toHaveLength(1);
    const again = await t.api('POST', `/releases/${created.kf_id}/publish`);
    expect(again.status).toBe(409);
    expect((await t.api('POST', '/releases/RE_00000000/publish')).status).toBe(404);
  });
});
