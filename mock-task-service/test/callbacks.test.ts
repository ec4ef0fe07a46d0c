import { afterEach, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../src/index.ts';
import { startReceiver, task, until } from './helpers.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(callback: 'before' | 'after' | 'never', extra: Parameters<typeof startMock>[0] = {}) {
  const receiver = startReceiver();
  cleanups.push(() => receiver.server.stop(true));
  const mock: MockHandle = await startMock({
    services: 1,
    stageMs: 100,
    publishMs: 80,
    coordinatorUrl: `${receiver.url}/`,
    callbackToken: 'cb-secret',
    behaviour: { callback },
    ...extra,
  });
  cleanups.push(() => mock.stop());
  return { receiver, mock, base: mock.serviceUrl('svc-0') };
}

describe('callbacks', () => {
  test("'after': PATCH /tasks/{id} with {state, progress} and the bearer token once staged, then published", async () => {
    const { receiver, mock, base } = await setup('after');
    await task(base, 'initialize', 'TA_A');
    const start = await task(base, 'start', 'TA_A');
    expect(start.body.state).toBe('running');
    await until(() => receiver.patches.length === 1, 3000, 'staged callback');
    expect(receiver.patches[0]).toMatchObject({
      taskId: 'TA_A',
      body: { state: 'staged', progress: 100 },
      authorization: 'Bearer cb-secret',
    });
    await task(base, 'publish', 'TA_A');
    await until(() => receiver.patches.length === 2, 3000, 'published callback');
    expect(receiver.patches[1]!.body).toEqual({ state: 'published', progress: 100 });
    // The receiver has the PATCH before the mock has its answer.
    await until(() => mock.callbacks.every((c) => c.status !== 0), 3000, 'callback answers');
    expect(mock.callbacks.map((c) => c.status)).toEqual([204, 204]);
    expect(mock.callbackErrors).toBe(0);
  });

  test("'after' reports a failure (failAfterMs) and uses the state aliases", async () => {
    const { receiver, base } = await setup('after', {
      behaviour: { callback: 'after', failAfterMs: 30, stageMs: 5000, upperCaseStates: true },
    });
    await task(base, 'initialize', 'TA_F');
    await task(base, 'start', 'TA_F');
    await until(() => receiver.patches.length === 1, 3000, 'failed callback');
    expect(receiver.patches[0]!.body).toMatchObject({ state: 'FAILED' });
  });

  test("'before': the callback arrives before the start reply, which says staged", async () => {
    const { receiver, base } = await setup('before');
    await task(base, 'initialize', 'TA_B');
    const start = await task(base, 'start', 'TA_B');
    const repliedAt = Date.now();
    expect(start.body).toMatchObject({ state: 'staged', progress: 100 });
    expect(receiver.patches).toHaveLength(1);
    expect(receiver.patches[0]!.at).toBeLessThanOrEqual(repliedAt);
    expect(receiver.patches[0]!.body).toEqual({ state: 'staged', progress: 100 });
    const publish = await task(base, 'publish', 'TA_B');
    expect(publish.body.state).toBe('published');
    expect(receiver.patches.map((p) => (p.body as { state: string }).state)).toEqual(['staged', 'published']);
  });

  test("callbackAuth 'none': that service's callbacks carry no Authorization header, others keep the token", async () => {
    const receiver = startReceiver();
    cleanups.push(() => receiver.server.stop(true));
    const mock = await startMock({
      services: ['plain', 'anonymous'],
      coordinatorUrl: receiver.url,
      callbackToken: 'cb-secret',
      behaviour: { callback: 'after', immediate: true },
      perService: { anonymous: { callbackAuth: 'none' } },
    });
    cleanups.push(() => mock.stop());
    for (const service of ['plain', 'anonymous']) {
      await task(mock.serviceUrl(service), 'initialize', `TA_${service}`);
      await task(mock.serviceUrl(service), 'start', `TA_${service}`);
    }
    await until(() => receiver.patches.length === 2, 3000, 'two callbacks');
    const authOf = (taskId: string) => receiver.patches.find((p) => p.taskId === taskId)?.authorization;
    expect(authOf('TA_plain')).toBe('Bearer cb-secret');
    expect(authOf('TA_anonymous')).toBeNull();
    expect(mock.behaviourOf('plain', 'start').callbackAuth).toBe('bearer');
  });

  test("'before' with callbackAuth 'none': the unauthenticated PATCH arrives before the start reply", async () => {
    const { receiver, base } = await setup('before', {
      behaviour: { callback: 'before', callbackAuth: 'none' },
    });
    await task(base, 'initialize', 'TA_BN');
    const start = await task(base, 'start', 'TA_BN');
    const repliedAt = Date.now();
    expect(start.body.state).toBe('staged');
    expect(receiver.patches).toHaveLength(1);
    expect(receiver.patches[0]!.at).toBeLessThanOrEqual(repliedAt);
    expect(receiver.patches[0]!.authorization).toBeNull();
  });

  test("'before' still calls back when the caller gave up on the start reply", async () => {
    const { receiver, mock, base } = await setup('before', { stageMs: 300 });
    await task(base, 'initialize', 'TA_BG');
    const gaveUp = await task(base, 'start', 'TA_BG', {}, { signal: AbortSignal.timeout(50) }).then(
      () => 'answered',
      () => 'gave up',
    );
    expect(gaveUp).toBe('gave up');
    await until(() => receiver.patches.length === 1, 3000, 'callback after the caller gave up');
    expect(receiver.patches[0]!.body).toEqual({ state: 'staged', progress: 100 });
    await until(() => mock.callsFor({ action: 'start', taskId: 'TA_BG' })[0]?.status === 0, 3000, 'record');
  });

  test("'never': no callbacks, polling still works", async () => {
    const { receiver, mock, base } = await setup('never');
    await task(base, 'initialize', 'TA_N');
    await task(base, 'start', 'TA_N');
    await until(async () => (await task(base, 'get_status', 'TA_N')).body.state === 'staged');
    expect(receiver.patches).toHaveLength(0);
    expect(mock.callbacks).toHaveLength(0);
  });

  test('callback failures (non-2xx, unreachable, timeout) are recorded and never crash the mock', async () => {
    const rejecting = startReceiver(() => new Response('conflict', { status: 409 }));
    cleanups.push(() => rejecting.server.stop(true));
    const m1 = await startMock({
      coordinatorUrl: rejecting.url,
      behaviour: { callback: 'after', immediate: true },
    });
    cleanups.push(() => m1.stop());
    await task(m1.url, 'initialize', 'TA_E1');
    await task(m1.url, 'start', 'TA_E1');
    await until(() => m1.callbackErrors === 1, 3000, '409 callback');
    expect(m1.callbacks[0]).toMatchObject({ status: 409, error: 'HTTP 409' });

    // Unreachable: a port that was just closed.
    const gone = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: () => new Response('x') });
    const goneUrl = `http://127.0.0.1:${gone.port}`;
    await gone.stop(true);
    const m2 = await startMock({
      coordinatorUrl: goneUrl,
      behaviour: { callback: 'before', immediate: true },
    });
    cleanups.push(() => m2.stop());
    await task(m2.url, 'initialize', 'TA_E2');
    const reply = await task(m2.url, 'start', 'TA_E2');
    expect(reply.status).toBe(200);
    expect(m2.callbackErrors).toBe(1);
    expect(m2.callbacks[0]!.status).toBe(0);

    // Timeout: the receiver never answers within callbackTimeoutMs.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const slow = startReceiver(async () => {
      await held;
      return new Response(null, { status: 204 });
    });
    cleanups.push(() => slow.server.stop(true));
    cleanups.push(() => release());
    const m3 = await startMock({
      coordinatorUrl: slow.url,
      behaviour: { callback: 'before', immediate: true, callbackTimeoutMs: 100 },
    });
    cleanups.push(() => m3.stop());
    await task(m3.url, 'initialize', 'TA_E3');
    expect((await task(m3.url, 'start', 'TA_E3')).status).toBe(200);
    expect(m3.callbacks[0]!.error).toBe('timeout');
    expect((await fetch(`${m3.url}/status`)).status).toBe(200);
  });

  test('no callback for a task forgotten or canceled before its timer fires', async () => {
    const { receiver, mock, base } = await setup('after', { stageMs: 80 });
    await task(base, 'initialize', 'TA_X');
    await task(base, 'start', 'TA_X');
    await task(base, 'cancel', 'TA_X');
    await task(base, 'initialize', 'TA_Y');
    await task(base, 'start', 'TA_Y');
    mock.forgetTasks();
    await task(base, 'initialize', 'TA_Z');
    await task(base, 'start', 'TA_Z');
    await until(() => receiver.patches.length === 1, 3000, 'TA_Z callback');
    expect(receiver.patches.map((p) => p.taskId)).toEqual(['TA_Z']);
  });
});
