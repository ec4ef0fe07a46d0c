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
const UNRULY_RELEASES = soakOr(10, 50);
let cluster: Cluster;
let mock: MockHandle;
let unruly: MockHandle | undefined;
let api: Api;
let study: string;

beforeAll(async () => {
  cluster = await Cluster.create('faults_chaos', {
    REQUEST_TIMEOUT_MS: '2000',
    // roomy, so a machine under load never turns a slow start into a failure; the unruly services
    // of the second test have deadlines of their own
    START_TIMEOUT_MS: '10000',
    PUBLISH_TIMEOUT_MS: '10000',
    // the outage tolerance of polls: 3 × 1 s
    HEALTH_INTERVAL_MS: '1000',
    HEALTH_FAILURE_THRESHOLD: '3',
  });
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
  await unruly?.stop();
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

/** kill -9 one process after another (coordinators and workers), restarting each, until stopped */
function killRoundRobin(): { kills(): number; stop(): Promise<number> } {
  const victims = ['coordinator-1', 'worker-1', 'coordinator-2', 'worker-2'];
  let kills = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await outage(KILL_EVERY_MS);
      if (!running) break;
      const name = victims[kills % victims.length]!;
      await cluster.kill(name);
      kills++;
      await cluster.start(name.startsWith('coordinator') ? 'coordinator' : 'worker', name);
    }
  })();
  return {
    kills: () => kills,
    async stop() {
      running = false;
      await loop;
      return kills;
    },
  };
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
    const chaos = killRoundRobin();
    let kills = 0;
    const outcomes: Array<{ id: string; state: string }> = [];
    try {
      // at least RELEASES releases, and more (up to twice as many) until every process was killed once
      for (let wave = 0; wave < (2 * RELEASES) / AT_ONCE; wave++) {
        if (outcomes.length >= RELEASES && chaos.kills() >= 4) break;
        const ids = await Promise.all(
          Array.from({ length: AT_ONCE }, (_, j) => createOne(wave * AT_ONCE + j)),
        );
        const states = await Promise.all(ids.map(drive));
        for (const [j, id] of ids.entries()) outcomes.push({ id, state: states[j]! });
      }
    } finally {
      kills = await chaos.stop();
    }
    const tally: Record<string, number> = {};
    for (const o of outcomes) tally[o.state] = (tally[o.state] ?? 0) + 1;
    console.log(`chaos: ${kills} kills over ${outcomes.length} releases: ${JSON.stringify(tally)}`);
    for (const { id, state } of outcomes.filter((o) => o.state !== 'published')) {
      const r = (await api('GET', `/releases/${id}`)).body;
      const reached = r.tasks.map(
        (x: { kf_id: string; service_name: string }) =>
          `${x.service_name}: ${mock
            .callsFor({ taskId: x.kf_id })
            .map((c) => `${c.action}:${c.status}`)
            .join(' ')}`,
      );
      console.log(
        `chaos: ${id} ${state}: ${JSON.stringify(r.halt)}\n  at the services: ${reached.join('\n  ')}`,
      );
    }
    expect(kills).toBeGreaterThanOrEqual(4); // each process killed at least once
    expect(outcomes.length).toBeGreaterThanOrEqual(RELEASES);
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(outcomes.length);
    // every one published: a killed process is never a reason for a release to fail
    expect(tally).toEqual({ published: outcomes.length });
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

  test('services that answer late and drop connections, under the same kills: consistent everywhere, nothing sent twice, nothing left un-canceled', async () => {
    // the well-behaved services leave; three unruly ones join
    for (const s of (await api('GET', '/task-services?enabled=true&limit=100')).body.results)
      expect((await api('PATCH', `/task-services/${s.kf_id}`, { enabled: false })).status).toBe(200);
    unruly = await startMock({ services: ['late', 'resetting', 'steady'], stageMs: 1_500, publishMs: 800 });
    for (const name of unruly.serviceNames) {
      const deadlines = { start_timeout_ms: 2_000, publish_timeout_ms: 2_000 };
      const res = await api('POST', '/task-services', { name, url: unruly.serviceUrl(name), ...deadlines });
      expect(res.status).toBe(201);
    }
    // `late` answers start and publish only after the services' 2 s deadline: outcome unknown, found by polls
    unruly.setBehaviour({ latencyMs: 2_500 }, 'late', 'start');
    unruly.setBehaviour({ latencyMs: 2_500 }, 'late', 'publish');
    const flaky = unruly;
    let flapping = true;
    const flap = (async () => {
      // `resetting` drops every connection for 1 s out of every 3 s (a service being redeployed)
      while (flapping) {
        await outage(2_000);
        if (flapping) flaky.outage('resetting', 1_000);
      }
    })();
    const chaos = killRoundRobin();
    const outcomes: Array<{ id: string; state: string }> = [];
    try {
      for (let wave = 0; wave < UNRULY_RELEASES / AT_ONCE; wave++) {
        const ids = await Promise.all(
          Array.from({ length: AT_ONCE }, (_, j) => createOne(1_000 + wave * AT_ONCE + j)),
        );
        const states = await Promise.all(ids.map(drive));
        for (const [j, id] of ids.entries()) outcomes.push({ id, state: states[j]! });
      }
    } finally {
      flapping = false;
      await flap;
      await chaos.stop();
    }
    const tally: Record<string, number> = {};
    for (const o of outcomes) tally[o.state] = (tally[o.state] ?? 0) + 1;
    let leftOver = 0;
    for (const { id, state } of outcomes) {
      expectNoDuplicate(unruly, id, 'start');
      expectNoDuplicate(unruly, id, 'publish');
      const atServices = unruly.tasks().filter((x) => x.release_id === id);
      if (state === 'published') {
        expect(atServices.map((x) => x.state)).toEqual(Array(atServices.length).fill('published'));
        continue;
      }
      // a halted release: every task any action reached was sent a cancel, and none still holds work
      await until(() => unruly!.tasksWithoutCancel(id).length === 0, {
        timeoutMs: 30_000,
        message: `every task of ${id} to be sent a cancel`,
      });
      const holding = atServices.filter((x) =>
        ['pending', 'running', 'staged', 'publishing'].includes(x.state),
      );
      leftOver += holding.length;
      // what happened to a task left holding work, for whoever has to find out why
      for (const x of holding) {
        const calls = unruly
          .callsFor({ taskId: x.kf_id })
          .map((c) => `${c.action}:${c.status}@${c.at % 100_000}`);
        const events = (await api('GET', `/events?task=${x.kf_id}&limit=100`)).body.results
          .map((e: { message: string; created_at: string }) => `${e.created_at.slice(17, 23)} ${e.message}`)
          .reverse();
        console.log(
          `left holding work: ${id} ${x.service} ${x.kf_id} ${x.state}\n  calls ${calls.join(' ')}\n  ${events.join('\n  ')}`,
        );
      }
    }
    console.log(
      `chaos (unruly services): ${JSON.stringify(tally)}; tasks left un-canceled at services: ${leftOver}`,
    );
    expect(outcomes).toHaveLength(UNRULY_RELEASES);
    expect(leftOver).toBe(0);
  }, 240_000);
});
