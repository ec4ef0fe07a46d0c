import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { expectNoDuplicate, FINAL_STATES, outage, soakOr } from './support/faults';
import { createStudy } from './support/fixtures';
import { Cluster } from './support/processes';
import { type Api, makeApi } from './support/system';
import { until } from './support/until';

// Two coordinators and two workers (separate processes) share the work while one of them is
// killed with SIGKILL every few seconds and restarted, round-robin, for as long as the releases
// run. Every release must end in a final state with its tasks agreeing with it and with the
// services, and no task may receive a second start or publish.

const SERVICES = 3;
const RELEASES = soakOr(20, 100);
const AT_ONCE = 5;
const KILL_EVERY_MS = soakOr(2_000, 3_000);
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
let study: string;

beforeAll(async () => {
  cluster = await Cluster.create('faults_chaos', { REQUEST_TIMEOUT_MS: '2000' });
  await Promise.all([
    cluster.start('gateway'),
    cluster.start('coordinator', 'coordinator-1'),
    cluster.start('coordinator', 'coordinator-2'),
    cluster.start('worker', 'worker-1'),
    cluster.start('worker', 'worker-2'),
  ]);
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 1_500, publishMs: 800 });
  for (const name of mock.serviceNames) {
    expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
  study = await createStudy(api);
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

async function createOne(i: number): Promise<string> {
  const res = await until(
    async () => {
      const r = await api(
        'POST',
        '/releases',
        { name: `chaos ${i}`, studies: [study] },
        {
          'idempotency-key': `chaos-${cluster.env.NATS_PREFIX}-${i}`,
        },
      );
      return r.status === 201 || r.status === 202 ? r : undefined;
    },
    { timeoutMs: 30_000, message: `release ${i} to be created` },
  );
  return res.body.kf_id;
}

/** drives one release to a final state: publishes it once staged */
async function drive(id: string): Promise<string> {
  return until(
    async () => {
      const r = await api('GET', `/releases/${id}`);
      if (r.status !== 200) return undefined;
      if (r.body.state === 'staged') await api('POST', `/releases/${id}/publish`);
      return FINAL_STATES.includes(r.body.state) ? (r.body.state as string) : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 50, message: `release ${id} to end` },
  );
}

describe('two coordinators and two workers, one killed every few seconds', () => {
  test(`${RELEASES} releases, ${AT_ONCE} at a time, under kill -9 every ${KILL_EVERY_MS} ms`, async () => {
    const victims = ['coordinator-1', 'worker-1', 'coordinator-2', 'worker-2'];
    let kills = 0;
    let driving = true;
    const chaos = (async () => {
      while (driving) {
        await outage(KILL_EVERY_MS);
        if (!driving) break;
        const name = victims[kills % victims.length]!;
        await cluster.kill(name);
        kills++;
        await cluster.start(name.startsWith('coordinator') ? 'coordinator' : 'worker', name);
      }
    })();
    const outcomes: Array<{ id: string; state: string }> = [];
    try {
      for (let wave = 0; wave < RELEASES / AT_ONCE; wave++) {
        const ids = await Promise.all(
          Array.from({ length: AT_ONCE }, (_, j) => createOne(wave * AT_ONCE + j)),
        );
        const states = await Promise.all(ids.map(drive));
        for (const [j, id] of ids.entries()) outcomes.push({ id, state: states[j]! });
      }
    } finally {
      driving = false;
      await chaos;
    }
    const tally: Record<string, number> = {};
    for (const o of outcomes) tally[o.state] = (tally[o.state] ?? 0) + 1;
    console.log(`chaos: ${kills} kills over ${RELEASES} releases: ${JSON.stringify(tally)}`);
    expect(kills).toBeGreaterThanOrEqual(victims.length); // each process killed at least once
    expect(outcomes).toHaveLength(RELEASES);
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(RELEASES);
    // every one published: a killed process is never a reason for a release to fail
    expect(tally).toEqual({ published: RELEASES });
    for (const { id } of outcomes) {
      expectNoDuplicate(mock, id, 'start', SERVICES);
      expectNoDuplicate(mock, id, 'publish', SERVICES);
      const r = (await api('GET', `/releases/${id}`)).body;
      expect(r.tasks.map((x: { state: string }) => x.state)).toEqual(Array(SERVICES).fill('published'));
      const atServices = mock
        .tasks()
        .filter((x) => x.release_id === id)
        .map((x) => x.state);
      expect(atServices).toEqual(Array(SERVICES).fill('published'));
    }
  }, 170_000);
});
