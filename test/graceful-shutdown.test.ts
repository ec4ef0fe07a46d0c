import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createRelease, createStudy, waitForState } from './support/fixtures';
import { Cluster } from './support/processes';
import { makeApi } from './support/system';
import { until } from './support/until';

// SIGTERM mid-release: the process stops taking work, lets calls in flight finish (or hands them
// back when the grace period runs out), exits 0; after a restart the release completes and no
// task got a second start or publish.

let cluster: Cluster;
let mock: MockHandle;
let api: ReturnType<typeof makeApi>;
let study: string;

beforeAll(async () => {
  cluster = await Cluster.create('graceful', { SHUTDOWN_GRACE_MS: '1500', REQUEST_TIMEOUT_MS: '5000' });
  await cluster.start('gateway');
  await cluster.start('coordinator');
  await cluster.start('worker');
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: 2, stageMs: 200, publishMs: 100 });
  for (const name of mock.serviceNames) {
    expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
  study = await createStudy(api);
}, 60_000);
afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

const onceEach = (releaseId: string, action: string) => {
  const calls = mock.calls.filter((c) => c.releaseId === releaseId && c.action === action);
  return calls.length === 2 && new Set(calls.map((c) => c.taskId)).size === 2;
};

describe('SIGTERM', () => {
  test('worker: calls in flight finish within the grace period, then it exits 0', async () => {
    mock.setBehaviour({ latencyMs: 800 }, undefined, 'start');
    const release = await createRelease(api, [study]);
    await until(() => mock.calls.some((c) => c.releaseId === release.kf_id && c.action === 'start'));
    const worker = cluster.procs.get('worker')!;
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    // the start answers arrived before it left: both tasks are running or staged without a second start
    await cluster.start('worker');
    await waitForState(api, release.kf_id, 'staged', 30_000);
    expect((await api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
    await waitForState(api, release.kf_id, 'published', 30_000);
    expect(onceEach(release.kf_id, 'start')).toBe(true);
    expect(onceEach(release.kf_id, 'publish')).toBe(true);
    mock.reset();
  }, 60_000);

  test('worker: a call longer than the grace period is handed back, and not sent twice', async () => {
    mock.setBehaviour({ latencyMs: 3_500 }, undefined, 'start');
    const release = await createRelease(api, [study]);
    await until(
      () => mock.calls.filter((c) => c.releaseId === release.kf_id && c.action === 'start').length === 2,
    );
    const worker = cluster.procs.get('worker')!;
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    mock.setBehaviour({ latencyMs: 0 }, undefined, 'start');
    await cluster.start('worker');
    await waitForState(api, release.kf_id, 'staged', 30_000);
    expect(onceEach(release.kf_id, 'start')).toBe(true);
    mock.reset();
  }, 60_000);

  test('coordinator: finishes its batch, hands back what is queued, exits 0; the release completes', async () => {
    mock.setBehaviour({ stageMs: 1_000 });
    const release = await createRelease(api, [study]);
    await waitForState(api, release.kf_id, 'running');
    const coordinator = cluster.procs.get('coordinator')!;
    coordinator.kill('SIGTERM');
    expect(await coordinator.exited).toBe(0);
    await cluster.start('coordinator');
    await waitForState(api, release.kf_id, 'staged', 30_000);
    expect((await api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
    await waitForState(api, release.kf_id, 'published', 30_000);
    expect(onceEach(release.kf_id, 'start')).toBe(true);
    expect(onceEach(release.kf_id, 'publish')).toBe(true);
    mock.reset();
  }, 60_000);
});
