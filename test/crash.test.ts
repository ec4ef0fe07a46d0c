import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createRelease, createStudy, waitForState } from './support/fixtures';
import { Cluster } from './support/processes';
import { makeApi } from './support/system';
import { until } from './support/until';

// Real processes: the gateway, coordinator and worker run as `bun src/main.ts` children and are
// killed with SIGKILL at chosen points of a release. After a restart the release must finish and
// the mock's call log must show no second start or publish for any task.

const SERVICES = 3;
let cluster: Cluster;
let mock: MockHandle;
let api: ReturnType<typeof makeApi>;
let study: string;

beforeAll(async () => {
  cluster = await Cluster.create('crash');
  await cluster.start('gateway');
  await cluster.start('worker');
  await cluster.start('coordinator');
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 600, publishMs: 300 });
  for (const name of mock.serviceNames) {
    const res = await api('POST', '/task-services', { name, url: mock.serviceUrl(name) });
    expect(res.status).toBe(201);
  }
  study = await createStudy(api);
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

function callsOf(releaseId: string, action: string) {
  return mock.calls.filter((c) => c.releaseId === releaseId && c.action === action);
}

function expectEachTaskOnce(releaseId: string, action: string) {
  const perTask = new Map<string, number>();
  for (const c of callsOf(releaseId, action)) perTask.set(c.taskId!, (perTask.get(c.taskId!) ?? 0) + 1);
  expect(perTask.size).toBe(SERVICES);
  expect([...perTask.values()].every((n) => n === 1)).toBe(true);
}

async function publishAndFinish(releaseId: string) {
  await waitForState(api, releaseId, 'staged', 30_000);
  const res = await api('POST', `/releases/${releaseId}/publish`);
  expect([200, 202]).toContain(res.status);
  return waitForState(api, releaseId, 'published', 30_000);
}

describe('kill -9 and restart mid-release', () => {
  test('coordinator killed right after initialize was sent', async () => {
    mock.setBehaviour({ latencyMs: 400 }, undefined, 'initialize');
    const release = await createRelease(api, [study]);
    await until(() => callsOf(release.kf_id, 'initialize').length === SERVICES, { timeoutMs: 10_000 });
    await cluster.kill('coordinator');
    await cluster.start('coordinator');
    mock.reset();
    const done = await publishAndFinish(release.kf_id);
    expect(done.state).toBe('published');
    expectEachTaskOnce(release.kf_id, 'start');
    expectEachTaskOnce(release.kf_id, 'publish');
  }, 90_000);

  test('coordinator killed mid-polling', async () => {
    mock.setBehaviour({ stageMs: 1_500 });
    const release = await createRelease(api, [study]);
    await until(() => callsOf(release.kf_id, 'get_status').length >= SERVICES, { timeoutMs: 10_000 });
    await cluster.kill('coordinator');
    await cluster.start('coordinator');
    const done = await publishAndFinish(release.kf_id);
    expect(done.state).toBe('published');
    expectEachTaskOnce(release.kf_id, 'start');
    expectEachTaskOnce(release.kf_id, 'publish');
    mock.reset();
  }, 90_000);

  test('coordinator killed during the publish fan-out', async () => {
    const release = await createRelease(api, [study]);
    await waitForState(api, release.kf_id, 'staged', 30_000);
    mock.setBehaviour({ latencyMs: 500 }, undefined, 'publish');
    await api('POST', `/releases/${release.kf_id}/publish`);
    await until(() => callsOf(release.kf_id, 'publish').length >= 1, { timeoutMs: 10_000 });
    await cluster.kill('coordinator');
    await cluster.start('coordinator');
    const done = await waitForState(api, release.kf_id, 'published', 30_000);
    expect(done.version).toMatch(/^\d+\.\d+\.0$/);
    expectEachTaskOnce(release.kf_id, 'start');
    expectEachTaskOnce(release.kf_id, 'publish');
    mock.reset();
  }, 90_000);

  test('worker killed while its start calls are in flight', async () => {
    mock.setBehaviour({ latencyMs: 700 }, undefined, 'start');
    const release = await createRelease(api, [study]);
    await until(() => callsOf(release.kf_id, 'start').length >= 1, { timeoutMs: 10_000 });
    await cluster.kill('worker');
    await cluster.start('worker');
    const done = await publishAndFinish(release.kf_id);
    expect(done.state).toBe('published');
    expectEachTaskOnce(release.kf_id, 'start');
    expectEachTaskOnce(release.kf_id, 'publish');
    mock.reset();
  }, 90_000);

  test('worker killed while its publish calls are in flight', async () => {
    const release = await createRelease(api, [study]);
    await waitForState(api, release.kf_id, 'staged', 30_000);
    mock.setBehaviour({ latencyMs: 700 }, undefined, 'publish');
    await api('POST', `/releases/${release.kf_id}/publish`);
    await until(() => callsOf(release.kf_id, 'publish').length >= 1, { timeoutMs: 10_000 });
    await cluster.kill('worker');
    await cluster.start('worker');
    const done = await waitForState(api, release.kf_id, 'published', 30_000);
    expect(done.state).toBe('published');
    expectEachTaskOnce(release.kf_id, 'publish');
    mock.reset();
  }, 90_000);
});
