import { afterEach, describe, expect, test } from 'bun:test';
import { type MockHandle, type MockOptions, startMock } from '../src/index.ts';
import { startReceiver, task, until } from './helpers.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function mockWith(opts: MockOptions = {}): Promise<MockHandle> {
  const mock = await startMock({ services: ['alpha', 'beta'], stageMs: 100, publishMs: 50, ...opts });
  cleanups.push(() => mock.stop());
  return mock;
}

/** The error code a request fails with ('' if it was answered). */
async function failure(request: Promise<unknown>): Promise<string> {
  try {
    await request;
    return '';
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).message);
  }
}

const statusOf = async (base: string) => (await fetch(`${base}/status`)).status;

describe('outage of one service', () => {
  test('resets every request of that service, /status and /tasks, then answers again with its tasks', async () => {
    const mock = await mockWith();
    const alpha = mock.serviceUrl('alpha');
    await task(alpha, 'initialize', 'TA_O1');
    const began = Date.now();
    mock.outage('alpha', 600);

    expect(await failure(fetch(`${alpha}/status`))).not.toBe('');
    expect(await failure(task(alpha, 'get_status', 'TA_O1'))).not.toBe('');
    expect(await statusOf(mock.serviceUrl('beta'))).toBe(200);
    expect((await task(mock.serviceUrl('beta'), 'initialize', 'TA_O1')).status).toBe(200);
    const during = mock.callsFor({ service: 'alpha', taskId: 'TA_O1', action: 'get_status' });
    expect(during.map((c) => c.status)).toEqual([0]);
    expect(during[0]?.releaseId).toBe('RE_TEST');

    await until(async () => (await fetch(`${alpha}/status`).catch(() => null))?.status === 200, 5000, 'back');
    expect(Date.now() - began).toBeGreaterThanOrEqual(600);
    expect((await task(alpha, 'get_status', 'TA_O1')).body.state).toBe('pending');
  });

  test('httpStatus answers 502/503/504 {message} instead; forget loses the tasks; ms 0 ends it', async () => {
    const mock = await mockWith();
    const alpha = mock.serviceUrl('alpha');
    await task(alpha, 'initialize', 'TA_O2');
    mock.outage('alpha', 60_000, { httpStatus: 503, forget: true });
    const refused = await task(alpha, 'get_status', 'TA_O2');
    expect(refused.status).toBe(503);
    expect(String(refused.body.message)).toContain('alpha');
    expect(await statusOf(alpha)).toBe(503);
    mock.outage('alpha', 60_000, { httpStatus: 504 });
    expect(await statusOf(alpha)).toBe(504);

    mock.outage('alpha', 0);
    expect(await statusOf(alpha)).toBe(200);
    expect((await task(alpha, 'get_status', 'TA_O2')).status).toBe(404);
  });

  test('service omitted: every service; reset() ends outages; bad arguments throw', async () => {
    const mock = await mockWith();
    mock.outage(undefined, 60_000, { httpStatus: 502 });
    expect(await statusOf(mock.url)).toBe(502);
    expect(await statusOf(mock.serviceUrl('beta'))).toBe(502);
    mock.reset();
    expect(await statusOf(mock.serviceUrl('beta'))).toBe(200);
    expect(() => mock.outage('nope', 10)).toThrow('unknown service');
    expect(() => mock.outage('alpha', -1)).toThrow('ms');
    expect(() => mock.outage('alpha', 10, { httpStatus: 404 })).toThrow('httpStatus');
  });

  test('requests in progress end when it begins; work started before goes on', async () => {
    const mock = await mockWith();
    const alpha = mock.serviceUrl('alpha');
    mock.setBehaviour({ replyWhenDone: true, stageMs: 400 }, 'alpha', 'start');
    mock.setBehaviour({ hang: true }, 'alpha', 'publish');
    await task(alpha, 'initialize', 'TA_O3');
    await task(alpha, 'initialize', 'TA_O4');
    const start = failure(task(alpha, 'start', 'TA_O3'));
    await until(() => mock.callsFor({ action: 'start', taskId: 'TA_O3' }).length === 1);
    const hung = failure(task(alpha, 'publish', 'TA_O4'));
    await until(() => mock.callsFor({ action: 'publish', taskId: 'TA_O4' }).length === 1);

    mock.outage('alpha', 60_000);
    expect(await start).not.toBe('');
    expect(await hung).not.toBe('');
    mock.outage('alpha', 0);
    // The outage kept the tasks: the start that got no answer was accepted and its work finishes.
    await until(
      async () => (await task(alpha, 'get_status', 'TA_O3')).body.state === 'staged',
      5000,
      'staged after the outage',
    );
    expect(mock.tasks('alpha').find((t) => t.kf_id === 'TA_O3')?.starts).toBe(1);
  });

  test("'after' callbacks due during an outage are sent when it ends", async () => {
    const receiver = startReceiver();
    cleanups.push(() => receiver.server.stop(true));
    const mock = await mockWith({ coordinatorUrl: receiver.url, behaviour: { callback: 'after' } });
    const alpha = mock.serviceUrl('alpha');
    await task(alpha, 'initialize', 'TA_O5');
    await task(alpha, 'start', 'TA_O5'); // staged after 100 ms
    const ends = Date.now() + 400;
    mock.outage('alpha', 400);
    await until(() => receiver.patches.length === 1, 5000, 'callback');
    expect(receiver.patches[0]!.at).toBeGreaterThanOrEqual(ends);
    expect(receiver.patches[0]!.body).toEqual({ state: 'staged', progress: 100 });
  });
});

describe('restart of the whole process', () => {
  test('refuses connections for ms, then listens on the same port with its tasks', async () => {
    const mock = await mockWith();
    const alpha = mock.serviceUrl('alpha');
    await task(alpha, 'initialize', 'TA_R1');
    const began = Date.now();
    const back = mock.restart(500);
    // A connection kept alive from before may first see a reset; then connections are refused.
    await until(async () => (await failure(fetch(`${alpha}/status`))) === 'ECONNREFUSED', 2000, 'refused');
    expect(await failure(fetch(`${mock.controlUrl}`))).toBe('ECONNREFUSED');
    await back;
    expect(Date.now() - began).toBeGreaterThanOrEqual(500);
    expect(await statusOf(alpha)).toBe(200);
    expect((await task(alpha, 'get_status', 'TA_R1')).body.state).toBe('pending');
  });

  test('ends hung and waiting requests; forget loses the tasks', async () => {
    const mock = await mockWith();
    const alpha = mock.serviceUrl('alpha');
    mock.setBehaviour({ hang: true }, 'beta');
    mock.setBehaviour({ replyWhenDone: true, stageMs: 60_000 }, 'alpha');
    await task(alpha, 'initialize', 'TA_R2');
    const hung = failure(fetch(`${mock.serviceUrl('beta')}/status`));
    const waiting = failure(task(alpha, 'start', 'TA_R2'));
    await until(() => mock.calls.length === 3);
    const back = mock.restart(100, { forget: true });
    expect(await hung).not.toBe('');
    expect(await waiting).not.toBe('');
    await back;
    expect((await task(alpha, 'get_status', 'TA_R2')).status).toBe(404);
  });

  test('POST /_control/restart answers first, then restarts; restarting while down moves the end', async () => {
    const mock = await mockWith();
    const res = await fetch(`${mock.controlUrl}/restart`, { method: 'POST', body: '{"ms":60000}' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    await until(async () => (await failure(fetch(`${mock.url}/status`))) === 'ECONNREFUSED', 2000, 'down');
    await mock.restart(50); // back 50 ms from now instead of in a minute
    expect(await statusOf(mock.url)).toBe(200);
    const bad = await fetch(`${mock.controlUrl}/restart`, { method: 'POST', body: '{"ms":-5}' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain('ms');
  });

  test('stop() during a restart ends it (its promise resolves) and stays stopped; stop() after one works', async () => {
    const mock = await startMock();
    const back = mock.restart(60_000);
    await mock.stop();
    await back;
    expect(await failure(fetch(`${mock.url}/status`))).toBe('ECONNREFUSED');
    await expect(mock.restart(10)).rejects.toThrow('stopped');

    const other = await startMock();
    await other.restart(20);
    expect(await statusOf(other.url)).toBe(200);
    await other.stop();
    expect(await failure(fetch(`${other.url}/status`))).toBe('ECONNREFUSED');
  });
});

test('POST /_control/outage {service, ms, httpStatus, forget}', async () => {
  const mock = await mockWith();
  const res = await fetch(`${mock.controlUrl}/outage`, {
    method: 'POST',
    body: JSON.stringify({ service: 'beta', ms: 60_000, httpStatus: 504 }),
  });
  expect(res.status).toBe(200);
  expect(await statusOf(mock.serviceUrl('beta'))).toBe(504);
  expect(await statusOf(mock.serviceUrl('alpha'))).toBe(200);
  const unknown = await fetch(`${mock.controlUrl}/outage`, {
    method: 'POST',
    body: JSON.stringify({ service: 'nope', ms: 10 }),
  });
  expect(unknown.status).toBe(404);
  const bad = await fetch(`${mock.controlUrl}/outage`, {
    method: 'POST',
    body: JSON.stringify({ ms: 10, httpStatus: 200 }),
  });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { message: string }).message).toContain('httpStatus');
});
