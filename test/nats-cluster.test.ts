import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import postgres from 'postgres';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { busNames } from '../src/infra/bus/subjects';
import { callsPerTask, FINAL_STATES } from './support/faults';
import { createStudy, registerServices } from './support/fixtures';
import { NatsCluster } from './support/nats-cluster';
import { Cluster, freePort } from './support/processes';
import { type Api, makeApi } from './support/system';
import { until } from './support/until';

// Scaling out on a real NATS cluster (docs/architecture.md, "Running on a NATS cluster"): three
// nats-server processes with JetStream clustered on loopback, every stream, consumer and bucket
// with three replicas (NATS_REPLICAS=3), and 2 gateways, 2 coordinators and 3 workers as separate
// processes with NATS_URL listing the three nodes. During a run of 20 releases one node is killed
// with SIGKILL (and restarted), then the node leading the command stream. Throughout, the API
// answers every request within a bound (503 at worst); afterwards every release is published, no
// task got a second start or publish, nothing is left un-canceled at the services, and each killed
// node rejoined with its replicas current. The recovery times are printed (README, "Scaling out").
// About 40 s on a 2-core machine: part of the normal suite (npm test).

const SERVICES = 3;
const RELEASES = 20;
/** no request to a gateway may take longer than this, whatever NATS is doing */
const PROBE_BOUND_MS = 10_000;

let nats: NatsCluster;
let cluster: Cluster;
let mock: MockHandle;
let gateways: string[];
let api: Api;
let sql: postgres.Sql;
let nc: NatsConnection;
let study: string;

beforeAll(async () => {
  nats = await NatsCluster.start('nats_cluster');
  cluster = await Cluster.create('nats_cluster', {
    NATS_URL: nats.url,
    NATS_REPLICAS: '3',
    REQUEST_TIMEOUT_MS: '2000',
    START_TIMEOUT_MS: '4000',
    PUBLISH_TIMEOUT_MS: '4000',
    POLL_INTERVAL_MS: '500',
    GATEWAY_REPLY_TIMEOUT_MS: '3000',
  });
  const port2 = await freePort();
  gateways = [cluster.gatewayUrl, `http://127.0.0.1:${port2}`];
  // the first gateway migrates the database; the others start together
  await cluster.start('gateway', 'gateway-1');
  await Promise.all([
    cluster.start('gateway', 'gateway-2', { PORT: String(port2) }),
    cluster.start('coordinator', 'coordinator-1'),
    cluster.start('coordinator', 'coordinator-2'),
    cluster.start('worker', 'worker-1'),
    cluster.start('worker', 'worker-2'),
    cluster.start('worker', 'worker-3'),
  ]);
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 3_000, publishMs: 1_000 });
  await registerServices(api, mock);
  study = await createStudy(api);
  sql = postgres(cluster.env.DATABASE_URL!, { max: 2, onnotice: () => {} });
  nc = await nats.connect();
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await sql?.end();
  await mock?.stop();
  await cluster?.stop();
  await nats?.close();
});

interface Probe {
  gateway: number;
  path: string;
  status: number;
  ms: number;
}

/** Calls both gateways (GET /status and GET /releases, in turn) until stopped, each call bounded. */
function probeApi(): { stop(): Promise<Probe[]> } {
  const probes: Probe[] = [];
  let running = true;
  const loop = async (gateway: number) => {
    for (let i = 0; running; i++) {
      const path = i % 2 === 0 ? '/status' : '/releases?limit=5';
      const started = performance.now();
      let status = -1; // no answer within the bound
      try {
        const res = await fetch(gateways[gateway] + path, {
          headers: { authorization: `Bearer ${cluster.adminToken}` },
          signal: AbortSignal.timeout(PROBE_BOUND_MS),
        });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        // counted as unanswered
      }
      probes.push({ gateway, path, status, ms: performance.now() - started });
      // the pace of the probes, not a wait for anything
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const loops = [loop(0), loop(1)];
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return probes;
    },
  };
}

let created = 0;
async function createRelease(): Promise<{ id: string; at: number }> {
  const i = created++;
  const at = Date.now();
  const res = await until(
    async () => {
      const r = await api(
        'POST',
        '/releases',
        { name: `cluster ${i}`, studies: [study] },
        { 'idempotency-key': `${cluster.env.NATS_PREFIX}-${i}` },
      );
      return r.status === 201 || r.status === 202 ? r : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, message: `release ${i} to be taken` },
  );
  return { id: res.body.kf_id, at };
}

async function stateOf(id: string): Promise<string | undefined> {
  const r = await api('GET', `/releases/${id}`);
  return r.status === 200 ? (r.body.state as string) : undefined;
}

/** ms from `from` until the release is running (its tasks started: commands and results crossed NATS) */
async function runningAfter(id: string, from: number): Promise<number> {
  await until(
    async () => ['running', 'staged', 'publishing', 'published'].includes((await stateOf(id)) ?? ''),
    {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: `release ${id} to run`,
    },
  );
  return Date.now() - from;
}

/** ms from `from` until the first release or task state change committed after it */
async function progressAfter(from: number): Promise<number> {
  return until(
    async () => {
      const [row] = await sql<{ at: Date | null }[]>`
        select min(created_at) as at from events
        where created_at > to_timestamp(${from / 1000}) and message like '% changed from %'`;
      return row?.at ? new Date(row.at).getTime() - from : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50, message: 'a release to progress' },
  );
}

/** ms from `from` until both gateways answer GET /status with 200 */
async function healthyAfter(from: number): Promise<number> {
  await until(
    async () => {
      const answers = await Promise.all(
        gateways.map((g) =>
          fetch(`${g}/status`, { signal: AbortSignal.timeout(PROBE_BOUND_MS) })
            .then((r) => r.status)
            .catch(() => 0),
        ),
      );
      return answers.every((s) => s === 200);
    },
    { timeoutMs: 60_000, intervalMs: 50, message: 'both gateways to answer /status 200' },
  );
  return Date.now() - from;
}

const streamNames = () => {
  const n = busNames(cluster.env.NATS_PREFIX!);
  return [...Object.values(n.streams), `KV_${n.haltedBucket}`, `KV_${n.sentBucket}`];
};

/** what each node leads (streams, buckets, and the durable consumers, as `stream/consumer`), by short name */
async function leaders(): Promise<Map<string, string[]>> {
  const names = busNames(cluster.env.NATS_PREFIX!);
  const P = cluster.env.NATS_PREFIX!.toUpperCase();
  const short = (stream: string) => stream.replace(`KV_${P}_`, '').replace(`${P}_`, '');
  const led = new Map<string, string[]>();
  const add = (leader: string | undefined, what: string) =>
    led.set(leader ?? '?', [...(led.get(leader ?? '?') ?? []), what]);
  for (const stream of streamNames()) add((await NatsCluster.placement(nc, stream)).leader, short(stream));
  const jsm = await jetstreamManager(nc, { timeout: 3_000 });
  for (const [stream, durable] of [
    [names.streams.intents, names.consumers.coordinatorIntents],
    [names.streams.results, names.consumers.coordinatorResults],
    [names.streams.commands, names.consumers.workers],
  ] as const) {
    add(
      (await jsm.consumers.info(stream, durable)).cluster?.leader,
      `${short(stream)}/${durable.replace(`${cluster.env.NATS_PREFIX}_`, '')}`,
    );
  }
  return led;
}

async function commandsLeader(): Promise<string> {
  return until(
    async () => (await NatsCluster.placement(nc, busNames(cluster.env.NATS_PREFIX!).streams.commands)).leader,
    {
      timeoutMs: 30_000,
      message: 'the command stream to have a leader',
    },
  );
}

/** Waits until every stream and bucket has a leader and all three copies current, the node among them. */
async function rejoined(node: string, from: number): Promise<number> {
  await until(
    async () => {
      for (const stream of streamNames()) {
        const p = await NatsCluster.placement(nc, stream);
        if (!p.leader || p.replicas.length !== 2) return false;
        if (p.replicas.some((r) => !r.current || r.offline)) return false;
        if (p.leader !== node && !p.replicas.some((r) => r.name === node)) return false;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 100, message: `${node} to rejoin with its replicas current` },
  );
  return Date.now() - from;
}

/** Publishes the release once staged (retrying a 503) and waits until it is final. */
async function drive(id: string): Promise<string> {
  return until(
    async () => {
      const state = await stateOf(id);
      if (state === 'staged') await api('POST', `/releases/${id}/publish`);
      return state && FINAL_STATES.includes(state) ? state : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 200, message: `release ${id} to end` },
  );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe('a three-node NATS cluster, replicas 3: a node lost mid-release, nothing lost', () => {
  test(`${RELEASES} releases over ${SERVICES} services; kill -9 a node, then the command stream's leader`, async () => {
    const began = Date.now();
    const placement = await NatsCluster.placement(nc, busNames(cluster.env.NATS_PREFIX!).streams.commands);
    expect(placement.replicas).toHaveLength(2); // three copies: the leader and two replicas
    const probing = probeApi();
    const ids: string[] = [];
    const kills: string[] = [];
    let probes: Probe[] = [];
    try {
      // a first wave; one of its releases, created alone, gives the time to run without faults
      const baseline = await createRelease();
      ids.push(baseline.id);
      const baselineMs = await runningAfter(baseline.id, baseline.at);
      for (let i = 1; i < 9; i++) ids.push((await createRelease()).id);
      await until(
        async () => (await Promise.all(ids.map(stateOf))).filter((s) => s === 'running').length >= 3,
        {
          timeoutMs: 30_000,
          message: 'releases to be running',
        },
      );

      // 1: of the nodes not leading the command stream, the one leading the fewest streams and consumers
      const leader1 = await commandsLeader();
      const led1 = await leaders();
      const victim1 = nats.nodes
        .map((n, i) => ({ i, name: n.name, leads: led1.get(n.name)?.length ?? 0 }))
        .filter((n) => n.name !== leader1)
        .sort((a, b) => a.leads - b.leads)[0]!.i;
      const kill1 = Date.now();
      await nats.killNode(victim1);
      const probe1 = await createRelease();
      ids.push(probe1.id);
      const [progress1, healthy1, running1] = await Promise.all([
        progressAfter(kill1),
        healthyAfter(kill1),
        runningAfter(probe1.id, kill1),
      ]);
      const restart1 = Date.now();
      await nats.startNode(victim1);
      const rejoin1 = await rejoined(nats.nodes[victim1]!.name, restart1);
      kills.push(
        `kill 1 (${nats.nodes[victim1]!.name}, leading ${led1.get(nats.nodes[victim1]!.name)?.join(', ') ?? 'nothing'}): next release progress ${seconds(progress1)}, both gateways healthy ${seconds(healthy1)}, a release created after the kill running ${seconds(running1)}; restarted node current again ${seconds(rejoin1)} after its restart`,
      );

      // a second wave, then 2: the node leading the command stream
      for (let i = 0; i < 9; i++) ids.push((await createRelease()).id);
      await until(
        async () =>
          (await Promise.all(ids.slice(10).map(stateOf))).filter((s) => s === 'running').length >= 3,
        {
          timeoutMs: 30_000,
          message: 'releases of the second wave to be running',
        },
      );
      const leader2 = await commandsLeader();
      const led2 = await leaders();
      const victim2 = nats.indexOf(leader2);
      const kill2 = Date.now();
      await nats.killNode(victim2);
      const probe2 = await createRelease();
      ids.push(probe2.id);
      const [progress2, healthy2, running2] = await Promise.all([
        progressAfter(kill2),
        healthyAfter(kill2),
        runningAfter(probe2.id, kill2),
      ]);
      const newLeader = await commandsLeader();
      const restart2 = Date.now();
      await nats.startNode(victim2);
      const rejoin2 = await rejoined(leader2, restart2);
      kills.push(
        `kill 2 (${leader2}, leading ${led2.get(leader2)!.join(', ')}; ${newLeader} took the command stream over): next release progress ${seconds(progress2)}, both gateways healthy ${seconds(healthy2)}, a release created after the kill running ${seconds(running2)}; restarted node current again ${seconds(rejoin2)} after its restart`,
      );
      expect(newLeader).not.toBe(leader2);

      const states = await Promise.all(ids.map(drive));
      probes = await probing.stop();

      // what the services saw
      const tally: Record<string, number> = {};
      for (const s of states) tally[s] = (tally[s] ?? 0) + 1;
      let twiceStarted = 0;
      let twicePublished = 0;
      for (const id of ids) {
        twiceStarted += [...callsPerTask(mock, id, 'start').values()].filter((n) => n > 1).length;
        twicePublished += [...callsPerTask(mock, id, 'publish').values()].filter((n) => n > 1).length;
      }
      const halted = ids.filter((_, i) => states[i] === 'failed' || states[i] === 'canceled');
      const unCanceled = mock
        .tasks()
        .filter((t) => halted.includes(t.release_id) && !['canceled', 'failed'].includes(t.state)).length;
      const unanswered = probes.filter((p) => p.status === -1).length;
      const unavailable = probes.filter((p) => p.status === 503).length;
      const slowest = Math.max(...probes.map((p) => p.ms));
      console.log(
        [
          `nats-cluster: 3 nodes, NATS_REPLICAS=3, 2 gateways, 2 coordinators, 3 workers; ${ids.length} releases over ${SERVICES} services: ${JSON.stringify(tally)} in ${seconds(Date.now() - began)}`,
          `  without faults, a new release running after ${seconds(baselineMs)}`,
          ...kills.map((k) => `  ${k}`),
          `  API: ${probes.length} requests, ${unanswered} unanswered within ${seconds(PROBE_BOUND_MS)}, ${unavailable} answered 503, slowest ${seconds(slowest)}`,
          `  second start: ${twiceStarted} tasks, second publish: ${twicePublished} tasks, left un-canceled at the services: ${unCanceled} tasks`,
        ].join('\n'),
      );

      expect(ids).toHaveLength(RELEASES);
      expect(tally).toEqual({ published: RELEASES });
      expect({ twiceStarted, twicePublished, unCanceled }).toEqual({
        twiceStarted: 0,
        twicePublished: 0,
        unCanceled: 0,
      });
      for (const id of ids) expect(callsPerTask(mock, id, 'publish').size).toBe(SERVICES);
      expect(unanswered).toBe(0);
      expect(probes.filter((p) => p.status !== 200 && p.status !== 503)).toEqual([]);
      // every node runs again, and every stream has its three copies current
      expect(nats.nodes.every((_, i) => nats.isRunning(i))).toBe(true);
    } finally {
      if (probes.length === 0) await probing.stop();
    }
  }, 300_000);
});
