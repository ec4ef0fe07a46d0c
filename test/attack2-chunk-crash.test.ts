import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createRelease, createStudy, registerServices, waitForState } from './support/fixtures';
import { Cluster } from './support/processes';
import { makeApi } from './support/system';
import { until } from './support/until';

// A fan-out of more than one chunk (70 tasks: 64 + 6), with a worker that runs only 8 calls at a
// time, killed with SIGKILL while a chunk is half done: some starts sent (claimed), most not begun.
// docs/architecture.md "Crash of a worker mid-call": the chunk is redelivered, a claimed start is
// never sent again (outcome unknown, found by polling), an unclaimed one is sent; the release finishes.

const SERVICES = 70;
let cluster: Cluster;
let mock: MockHandle;
let api: ReturnType<typeof makeApi>;
let study: string;

beforeAll(async () => {
  cluster = await Cluster.create('attack2-chunk', { WORKER_CONCURRENCY: '8' });
  await cluster.start('gateway');
  await cluster.start('worker');
  await cluster.start('coordinator');
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 300, publishMs: 100 });
  await registerServices(api, mock);
  study = await createStudy(api);
}, 120_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

function perTask(releaseId: string, action: string) {
  const counts = new Map<string, number>();
  for (const c of mock.calls.filter((x) => x.releaseId === releaseId && x.action === action))
    counts.set(c.taskId!, (counts.get(c.taskId!) ?? 0) + 1);
  return counts;
}

describe('a worker killed mid-chunk of a 70-task fan-out', () => {
  test('no start or publish twice, and the release is published', async () => {
    mock.setBehaviour({ latencyMs: 600 }, undefined, 'start');
    const release = await createRelease(api, [study]);
    expect(release.tasks).toHaveLength(SERVICES);
    await until(
      () =>
        mock.calls.filter((c) => c.releaseId === release.kf_id && c.action === 'start').length >= 10
          ? true
          : undefined,
      {
        timeoutMs: 30_000,
        message: 'the first starts to arrive',
      },
    );
    await cluster.kill('worker');
    await cluster.start('worker');
    await waitForState(api, release.kf_id, ['staged', 'failed', 'canceled'], 90_000);
    const staged = await api('GET', `/releases/${release.kf_id}`);
    expect(staged.body.state).toBe('staged');
    const starts = perTask(release.kf_id, 'start');
    expect(starts.size).toBe(SERVICES);
    expect([...starts.values()].filter((n) => n > 1)).toEqual([]);

    mock.setBehaviour({ latencyMs: 0 }, undefined, 'start');
    expect((await api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
    const done = await waitForState(api, release.kf_id, ['published', 'failed', 'canceled'], 90_000);
    expect(done.state).toBe('published');
    const publishes = perTask(release.kf_id, 'publish');
    expect(publishes.size).toBe(SERVICES);
    expect([...publishes.values()].filter((n) => n > 1)).toEqual([]);
  }, 240_000);
});
