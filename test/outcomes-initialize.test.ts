import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import {
  createRelease,
  createStudy,
  eventsOf,
  replaceServices,
  tasksByService,
  waitForState,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// initialize 503 is covered by failure-initialize.test.ts; here: a timeout and a refused connection
const REQUEST_TIMEOUT_MS = 500;

let t: TestSystem;
let study: string;
const mocks: MockHandle[] = [];

beforeAll(async () => {
  t = await startTestSystem('outcomes_initialize', { REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
  study = await createStudy(t.api);
});
afterAll(async () => {
  for (const m of mocks) await m.stop();
  await t?.stop();
});

/** The common outcome: `refusing`'s task rejected, every other task canceled, the release failed. */
async function expectRejectedOutcome(
  releaseId: string,
  refusing: string,
  others: Array<{ mock: MockHandle; name: string }>,
  reason: string,
) {
  const done = await waitForState(t.api, releaseId, ['failed', 'canceled', 'published']);
  expect(done.state).toBe('failed');
  const byService = tasksByService(done);
  const rejected = byService.get(refusing)!;
  expect(rejected.state).toBe('rejected');
  for (const o of others) {
    const task = byService.get(o.name)!;
    expect(task.state).toBe('canceled');
    expect(o.mock.callsFor({ taskId: task.kf_id, action: 'initialize' }).map((c) => c.status)).toEqual([200]);
    expect(o.mock.callsFor({ taskId: task.kf_id, action: 'cancel' }).map((c) => c.status)).toEqual([200]);
    // nothing was started anywhere
    expect(o.mock.callsFor({ taskId: task.kf_id, action: 'start' })).toHaveLength(0);
  }

  const events = await eventsOf(t.api, releaseId);
  const refusal = events.find((e) =>
    e.message.startsWith(`request to initialize task ${rejected.kf_id} of ${refusing} failed:`),
  );
  expect(refusal).toBeDefined();
  expect(refusal!.event_type).toBe('error');
  expect(refusal!.message).toContain(reason);
  expect(refusal!.task).toEndWith(`/tasks/${rejected.kf_id}`);
  const messages = events.map((e) => e.message);
  expect(messages).toContain(`task ${rejected.kf_id} changed from waiting to rejected`);
  expect(
    events.find((e) => e.message === `task ${rejected.kf_id} changed from waiting to rejected`)!.event_type,
  ).toBe('error');
  expect(messages).toContain(
    `release ${releaseId}, version ${done.version} changed from initializing to canceling`,
  );
  const failedMove = events.find(
    (e) => e.message === `release ${releaseId}, version ${done.version} changed from canceling to failed`,
  );
  expect(failedMove?.event_type).toBe('error');
  expect(done.halt).toMatchObject({ reason: 'failed', service_name: refusing });
  return { rejected, done };
}

describe('a service refuses initialize', () => {
  test('initialize times out (the service hangs): rejected, the others canceled, the release failed', async () => {
    const { mock } = await replaceServices(t.api, 3);
    mocks.push(mock);
    const hanging = mock.serviceNames[0]!;
    mock.setBehaviour({ hang: true }, hanging, 'initialize');

    const created = await createRelease(t.api, [study]);
    const { rejected } = await expectRejectedOutcome(
      created.kf_id,
      hanging,
      mock.serviceNames.slice(1).map((name) => ({ mock, name })),
      `timeout after ${REQUEST_TIMEOUT_MS} ms`,
    );
    // the release halted only once the request deadline had passed (on the database's clock)
    const halted = (await t.api('GET', `/releases/${created.kf_id}`)).body;
    expect(
      Date.parse(halted.states_at.canceling) - Date.parse(halted.states_at.initializing),
    ).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    // exactly one initialize reached the hanging service (never retried) and it was never answered
    const inits = mock.callsFor({ taskId: rejected.kf_id, action: 'initialize' });
    expect(inits.map((c) => c.status)).toEqual([0]);
    // its service may have created the task after all (the answer was only late): it gets a cancel too
    expect(mock.callsFor({ taskId: rejected.kf_id, action: 'cancel' }).length).toBeGreaterThanOrEqual(1);
  });

  test('initialize finds no one listening (connection refused): rejected, the others canceled, the release failed', async () => {
    const { mock } = await replaceServices(t.api, 2);
    mocks.push(mock);
    // a second mock, registered while it is up, then stopped before the release begins
    const gone = await startMock({ services: ['gone'] });
    mocks.push(gone);
    const reg = await t.api('POST', '/task-services', {
      name: 'gone',
      url: gone.serviceUrl('gone'),
      author: 'test',
    });
    expect(reg.status).toBe(201);
    await gone.stop();
    await until(
      async () => (await fetch(`${gone.serviceUrl('gone')}/status`).catch(() => undefined)) === undefined,
      {
        message: 'the stopped mock to refuse connections',
      },
    );

    const created = await createRelease(t.api, [study]);
    expect(created.tasks).toHaveLength(3);
    await expectRejectedOutcome(
      created.kf_id,
      'gone',
      mock.serviceNames.map((name) => ({ mock, name })),
      'connection refused',
    );
    expect(gone.calls.filter((c) => c.releaseId === created.kf_id)).toHaveLength(0);
  });
});
