import { afterEach, expect, test } from 'bun:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenario, type MockHandle, parseScenario, startMock } from '../src/index.ts';
import { task, until } from './helpers.ts';

const example = new URL('../scenarios/example.json', import.meta.url).pathname;
const mocks: MockHandle[] = [];
afterEach(async () => {
  for (const m of mocks.splice(0)) await m.stop();
});

test('the example scenario file loads and drives the services it names', async () => {
  const scenario = await loadScenario(example);
  expect(scenario.services).toEqual(['alpha', 'beta', 'gamma']);
  // Drop the remote coordinator and latency so the test stays local and quick.
  const mock = await startMock({
    scenario,
    coordinatorUrl: 'http://127.0.0.1:9',
    behaviour: { latencyMs: 0 },
    perService: { alpha: { callback: 'never', statusLatencyMs: 0 } },
  });
  mocks.push(mock);
  expect(mock.serviceNames).toEqual(['alpha', 'beta', 'gamma']);

  const beta = mock.serviceUrl('beta');
  const init = await task(beta, 'initialize', 'TA_S1');
  expect(init.body).toMatchObject({ state: 'INITIALIZED', progress: '0%' });
  expect(await (await fetch(`${beta}/status`)).json()).toEqual({
    message: { name: 'beta', version: '1.0.0' },
  });
  expect((await task(beta, 'get_status', 'TA_NONE')).status).toBe(400);

  const alpha = mock.serviceUrl('alpha');
  await task(alpha, 'initialize', 'TA_S2');
  expect((await task(alpha, 'get_status', 'TA_S2')).status).toBe(503); // counted rule: once
  expect((await task(alpha, 'get_status', 'TA_S2')).status).toBe(200);

  const gamma = mock.serviceUrl('gamma');
  await task(gamma, 'initialize', 'TA_S3');
  await expect(task(gamma, 'cancel', 'TA_S3')).rejects.toThrow(); // dropped
  expect(mock.behaviourOf('gamma', 'start')).toMatchObject({ replyWhenDone: true, stageMs: 2000 });
});

test('timeline steps change behaviour and forget tasks at their time', async () => {
  const mock = await startMock({
    scenario: {
      services: 1,
      // late enough that the task below exists before it is forgotten, even on a loaded machine
      // (at 30 ms a slow start let the initialize come after the forget)
      timeline: [
        { atMs: 1_500, service: 'svc-0', action: 'status', behaviour: { statusMode: 'down' } },
        { atMs: 1_500, service: 'svc-0', forget: true },
      ],
    },
  });
  mocks.push(mock);
  const base = mock.serviceUrl('svc-0');
  await task(base, 'initialize', 'TA_T');
  expect((await fetch(`${base}/status`)).status).toBe(200);
  await until(async () => (await fetch(`${base}/status`)).status === 503, 5000, 'status down');
  expect((await task(base, 'get_status', 'TA_T')).status).toBe(404);
});

test('timeline steps begin an outage of one service and restart the whole process', async () => {
  const mock = await startMock({
    scenario: {
      services: ['alpha', 'beta'],
      timeline: [
        { atMs: 0, service: 'alpha', outage: { ms: 60_000, httpStatus: 503, forget: true } },
        { atMs: 100, restart: { ms: 100 } },
      ],
    },
  });
  mocks.push(mock);
  await until(async () => (await fetch(`${mock.serviceUrl('alpha')}/status`)).status === 503, 3000, 'outage');
  expect((await fetch(`${mock.serviceUrl('beta')}/status`)).status).toBe(200);
  // A connection kept alive from before may first see a reset; then connections are refused.
  await until(
    () =>
      fetch(`${mock.url}/status`).then(
        () => false,
        (e: { code?: string }) => e.code === 'ECONNREFUSED',
      ),
    3000,
    'connections refused by the restart',
  );
  await until(
    async () => (await fetch(`${mock.serviceUrl('beta')}/status`).catch(() => null))?.status === 200,
    3000,
    'back after the restart',
  );
  expect(() => parseScenario({ timeline: [{ atMs: 0, outage: { ms: 10, httpStatus: 404 } }] })).toThrow(
    /timeline\.0\.outage\.httpStatus/,
  );
  expect(() => parseScenario({ timeline: [{ atMs: 0, restart: {} }] })).toThrow(/timeline\.0\.restart\.ms/);
});

test('invalid scenarios are refused with a message naming the field', async () => {
  expect(() => parseScenario({ behaviour: { latncyMs: 5 } })).toThrow(/behaviour/);
  expect(() => parseScenario({ stageMs: -1 })).toThrow(/stageMs/);
  expect(() => parseScenario({ rules: [{ action: 'explode', behaviour: {} }] })).toThrow(/rules\.0\.action/);
  await expect(startMock({ scenario: { services: 1, perService: { nope: {} } } })).rejects.toThrow(
    'unknown service',
  );

  const dir = mkdtempSync(join(tmpdir(), 'mock-scenario-'));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{ not json');
  await expect(loadScenario(bad)).rejects.toThrow('not JSON');
  await expect(loadScenario(join(dir, 'missing.json'))).rejects.toThrow('cannot read');
});
