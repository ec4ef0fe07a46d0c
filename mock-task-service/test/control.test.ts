import { afterAll, beforeAll, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../src/index.ts';
import { task } from './helpers.ts';

let mock: MockHandle;
beforeAll(async () => {
  mock = await startMock({ services: 2 });
});
afterAll(async () => {
  await mock.stop();
});

const control = async (path: string, init?: { method?: string; body?: unknown }) => {
  const res = await fetch(`${mock.controlUrl}${path}`, {
    method: init?.method ?? (init?.body === undefined ? 'GET' : 'POST'),
    body: init?.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

test('GET /_control lists endpoints; /services lists URLs', async () => {
  const root = await control('');
  expect(root.status).toBe(200);
  expect(root.body).toMatchObject({ name: 'mock-task-service', services: 2 });
  expect((root.body.endpoints as string[]).length).toBeGreaterThan(5);
  const services = await control('/services');
  expect(services.body).toEqual({
    root: { name: 'mock-task-service', url: mock.url },
    services: [
      { name: 'svc-0', url: `${mock.url}/s/svc-0` },
      { name: 'svc-1', url: `${mock.url}/s/svc-1` },
    ],
  });
});

test('POST /behaviour sets a behaviour for a service and action; GET /behaviour shows it', async () => {
  const set = await control('/behaviour', {
    body: { service: 'svc-1', action: 'initialize', behaviour: { httpStatus: 503 } },
  });
  expect(set).toEqual({ status: 200, body: { ok: true } });
  expect((await task(mock.serviceUrl('svc-1'), 'initialize', 'TA_K')).status).toBe(503);
  expect((await task(mock.serviceUrl('svc-0'), 'initialize', 'TA_K')).status).toBe(200);
  const shown = await control('/behaviour?service=svc-1&action=initialize');
  expect(shown.body).toMatchObject({
    service: 'svc-1',
    action: 'initialize',
    behaviour: { httpStatus: 503 },
  });

  const once = await control('/behaviour', {
    body: { action: 'status', behaviour: { statusMode: 'down' }, times: 1 },
  });
  expect(once.status).toBe(200);
  expect((await fetch(`${mock.url}/status`)).status).toBe(503);
  expect((await fetch(`${mock.url}/status`)).status).toBe(200);
});

test('invalid control requests get 400/404 with a message', async () => {
  const typo = await control('/behaviour', { body: { behaviour: { hnag: true } } });
  expect(typo.status).toBe(400);
  expect(String(typo.body.message)).toContain('behaviour');
  expect((await control('/behaviour', { body: { service: 'nope', behaviour: {} } })).status).toBe(404);
  expect((await control('/nothing')).status).toBe(404);
  const res = await fetch(`${mock.controlUrl}/forget`, { method: 'POST', body: '{oops' });
  expect(res.status).toBe(400);
});

test('GET /calls filters; GET /tasks; POST /forget; POST /reset; DELETE /calls', async () => {
  await task(mock.serviceUrl('svc-0'), 'initialize', 'TA_CTL');
  await task(mock.serviceUrl('svc-0'), 'get_status', 'TA_CTL');
  const calls = await control('/calls?service=svc-0&taskId=TA_CTL');
  expect(calls.body.total).toBe(2);
  expect((calls.body.calls as Array<{ action: string }>).map((c) => c.action)).toEqual([
    'initialize',
    'get_status',
  ]);
  const limited = await control('/calls?service=svc-0&taskId=TA_CTL&limit=1');
  expect((limited.body.calls as unknown[]).length).toBe(1);

  const tasks = await control('/tasks?service=svc-0');
  expect(tasks.body.tasks).toContainEqual(expect.objectContaining({ kf_id: 'TA_CTL', state: 'pending' }));
  expect((await control('/tasks?service=nope')).status).toBe(404);

  expect((await control('/forget', { body: { service: 'svc-0' } })).status).toBe(200);
  expect((await task(mock.serviceUrl('svc-0'), 'get_status', 'TA_CTL')).status).toBe(404);

  expect((await control('/reset', { method: 'POST' })).status).toBe(200);
  expect(mock.calls).toHaveLength(0);
  expect((await task(mock.serviceUrl('svc-1'), 'initialize', 'TA_K2')).status).toBe(200); // behaviour gone

  expect((await control('/calls', { method: 'DELETE' })).status).toBe(200);
  expect(mock.calls).toHaveLength(0);
  expect((await control('/callbacks')).body).toEqual({ errors: 0, callbacks: [] });
});
