import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import postgres from 'postgres';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { type BusNames, busNames } from '../src/infra/bus/subjects';
import { callsPerTask, expectNoDuplicate } from './support/faults';
import { createStudy, registerServices, waitForState } from './support/fixtures';
import { Cluster } from './support/processes';
import { type Api, makeApi, NATS_URL } from './support/system';
import { until } from './support/until';

// The bus may lose what it acknowledged (docs/architecture.md, "What may be lost on the bus"):
// Postgres is the record. Here the command, result and intent streams are purged mid-release, at
// chosen moments (the roles run as processes on the shared nats-server, under a prefix of their
// own, and are stopped and started so that the messages sit in the stream when it is purged).
// Every release still ends as asked, and no task gets a second start or publish:
// - commands purged before any worker took them: initialize is sent again; start and publish,
//   proven never sent by the sent marks, are sent again, once;
// - results purged after the calls were made: start and publish may have been sent, so they are
//   never sent again, and polling finds the work;
// - intents purged: the coordinator applies them from the intents table.

const SERVICES = 2;
const RELEASES = 3;
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
let study: string;
let sql: postgres.Sql;
let nc: NatsConnection;
let jsm: JetStreamManager;
let names: BusNames;

beforeAll(async () => {
  cluster = await Cluster.create('nats_purge', {
    REQUEST_TIMEOUT_MS: '2000',
    START_TIMEOUT_MS: '2000',
    PUBLISH_TIMEOUT_MS: '2000',
    POLL_INTERVAL_MS: '500',
    // a write answers 202 soon when no coordinator runs
    GATEWAY_REPLY_TIMEOUT_MS: '1000',
  });
  await Promise.all([cluster.start('gateway'), cluster.start('coordinator'), cluster.start('worker')]);
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 1_000, publishMs: 500 });
  await registerServices(api, mock);
  study = await createStudy(api);
  sql = postgres(cluster.env.DATABASE_URL!, { max: 2, onnotice: () => {} });
  nc = await connect({ servers: NATS_URL });
  jsm = await jetstreamManager(nc);
  names = busNames(cluster.env.NATS_PREFIX!);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await sql?.end();
  await mock?.stop();
  await cluster?.stop();
});

let created = 0;
/** Creates releases; with no coordinator running the gateway answers 202 (the intent is stored). */
async function createReleases(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `${cluster.env.NATS_PREFIX}-${created++}`;
    const res = await api(
      'POST',
      '/releases',
      { name: `purge ${key}`, studies: [study] },
      { 'idempotency-key': key },
    );
    expect([201, 202]).toContain(res.status);
    ids.push(res.body.kf_id);
  }
  return ids;
}

interface TaskRow {
  kf_id: string;
  task_service_id: string;
}
async function tasksOf(ids: string[]): Promise<TaskRow[]> {
  const rows = await sql<TaskRow[]>`select kf_id, task_service_id from tasks where release_id = any(${ids})`;
  expect(rows).toHaveLength(ids.length * SERVICES);
  return rows;
}

/**
 * Every message in a stream, in order (the streams of this test hold a few dozen): commands travel
 * as chunks (many task commands per message), results as batches (many results per message).
 */
async function streamMessages<T>(stream: string): Promise<T[]> {
  const { state } = await jsm.streams.info(stream);
  const out: T[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m) out.push(m.json<T>());
  }
  return out;
}

/** ids of the tasks with a command for `action` in the command stream */
async function queuedCommands(action: string): Promise<Set<string>> {
  const chunks = await streamMessages<{ kind: string; commands?: Array<{ action: string; taskId: string }> }>(
    names.streams.commands,
  );
  return new Set(
    chunks.flatMap((c) => (c.commands ?? []).filter((x) => x.action === action).map((x) => x.taskId)),
  );
}

/** every task's command for `action` sits in the command stream */
async function commandsQueued(ids: string[], action: string) {
  const tasks = await until(
    async () => {
      const rows = await sql<
        TaskRow[]
      >`select kf_id, task_service_id from tasks where release_id = any(${ids})`;
      return rows.length === ids.length * SERVICES ? rows : undefined;
    },
    { timeoutMs: 30_000, message: 'the releases to be created' },
  );
  await until(
    async () => {
      const queued = await queuedCommands(action);
      return tasks.every((t) => queued.has(t.kf_id));
    },
    { timeoutMs: 60_000, intervalMs: 100, message: `every ${action} command to be queued` },
  );
}

/**
 * the worker acknowledged every task's command for `action` (a work queue then drops it): stopping
 * the worker now cannot hand a command back for a second call
 */
async function commandsDone(ids: string[], action: string) {
  const tasks = await tasksOf(ids);
  await until(
    async () => {
      const queued = await queuedCommands(action);
      return tasks.every((t) => !queued.has(t.kf_id));
    },
    { timeoutMs: 30_000, intervalMs: 100, message: `every ${action} command to be acknowledged` },
  );
}

/** every task's result for its latest call sits in the result stream */
async function resultsQueued(ids: string[], action: string) {
  const tasks = await tasksOf(ids);
  await until(
    async () => {
      const latest = new Map<string, string>();
      const batches = await streamMessages<{ results?: Array<{ action: string; taskId: string }> }>(
        names.streams.results,
      );
      for (const b of batches) for (const r of b.results ?? []) latest.set(r.taskId, r.action);
      return tasks.every((t) => latest.get(t.kf_id) === action);
    },
    { timeoutMs: 30_000, message: `every ${action} result to be queued` },
  );
}

async function purge(stream: string) {
  const r = await jsm.streams.purge(stream);
  expect(r.success).toBe(true);
  return r.purged;
}

async function eventsOf(ids: string[]): Promise<string[]> {
  const rows = await sql<{ message: string }[]>`select message from events where release_id = any(${ids})`;
  return rows.map((r) => r.message);
}

function expectEachOnce(ids: string[], action: string) {
  for (const id of ids) {
    expectNoDuplicate(mock, id, action, SERVICES);
    expect([...callsPerTask(mock, id, action).values()]).toEqual(Array(SERVICES).fill(1));
  }
}

async function publishAll(ids: string[]) {
  for (const id of ids) {
    const res = await api('POST', `/releases/${id}/publish`);
    expect([200, 202]).toContain(res.status);
  }
}

describe('the bus loses messages: every release still completes, nothing is sent twice', () => {
  test('commands purged before any worker took them: initialize, start and publish are sent again, once each', async () => {
    await cluster.kill('worker');
    const ids = await createReleases(RELEASES);
    await commandsQueued(ids, 'initialize');
    expect(await purge(names.streams.commands)).toBeGreaterThanOrEqual(RELEASES);
    // initialize is safe to repeat: sent again once the answer is overdue
    await commandsQueued(ids, 'initialize');
    // the worker answers initialize while no coordinator runs, so the starts then wait in the stream
    await cluster.kill('coordinator');
    await cluster.start('worker');
    await resultsQueued(ids, 'initialize');
    await commandsDone(ids, 'initialize');
    await cluster.kill('worker');
    await cluster.start('coordinator');
    await commandsQueued(ids, 'start');
    expect(await purge(names.streams.commands)).toBeGreaterThanOrEqual(RELEASES);
    // no worker claimed them: the coordinator claims them as lost and sends them again
    await commandsQueued(ids, 'start');
    await cluster.start('worker');
    for (const id of ids) await waitForState(api, id, 'staged', 60_000);
    await cluster.kill('worker');
    await publishAll(ids);
    await commandsQueued(ids, 'publish');
    expect(await purge(names.streams.commands)).toBeGreaterThanOrEqual(RELEASES);
    await commandsQueued(ids, 'publish');
    await cluster.start('worker');
    for (const id of ids) await waitForState(api, id, 'published', 60_000);
    for (const action of ['initialize', 'start', 'publish']) expectEachOnce(ids, action);
    const events = await eventsOf(ids);
    for (const action of ['start', 'publish'])
      expect(
        events.filter((m) => m.endsWith(`was lost before any worker sent it; sending ${action} again`)),
      ).toHaveLength(RELEASES * SERVICES);
    expect(events.filter((m) => m.endsWith('sending initialize again'))).toHaveLength(RELEASES * SERVICES);
  }, 180_000);

  test('results purged after the calls were made: start and publish are never sent again; polls find the work', async () => {
    await cluster.kill('worker');
    const ids = await createReleases(RELEASES);
    await commandsQueued(ids, 'initialize');
    await cluster.kill('coordinator');
    await cluster.start('worker');
    await resultsQueued(ids, 'initialize');
    await commandsDone(ids, 'initialize');
    await cluster.kill('worker');
    await cluster.start('coordinator');
    await commandsQueued(ids, 'start');
    // the starts are made while no coordinator runs; their answers are then purged
    await cluster.kill('coordinator');
    await cluster.start('worker');
    await resultsQueued(ids, 'start');
    expect(await purge(names.streams.results)).toBeGreaterThanOrEqual(1);
    await cluster.start('coordinator');
    for (const id of ids) await waitForState(api, id, 'staged', 60_000);
    // the same for publish
    await cluster.kill('worker');
    await publishAll(ids);
    await commandsQueued(ids, 'publish');
    await cluster.kill('coordinator');
    await cluster.start('worker');
    await resultsQueued(ids, 'publish');
    expect(await purge(names.streams.results)).toBeGreaterThanOrEqual(1);
    await cluster.start('coordinator');
    for (const id of ids) await waitForState(api, id, 'published', 60_000);
    for (const action of ['initialize', 'start', 'publish']) expectEachOnce(ids, action);
    const events = await eventsOf(ids);
    expect(events.filter((m) => m.includes('got no answer (its answer was lost)'))).toHaveLength(
      2 * RELEASES * SERVICES,
    );
  }, 180_000);

  test('intents purged (create, publish, cancel): applied from Postgres', async () => {
    await cluster.kill('coordinator');
    const ids = await createReleases(RELEASES);
    expect(await purge(names.streams.intents)).toBe(RELEASES);
    await cluster.start('coordinator');
    for (const id of ids) await waitForState(api, id, 'staged', 60_000);
    await cluster.kill('coordinator');
    const [canceled, ...published] = ids as [string, ...string[]];
    expect((await api('DELETE', `/releases/${canceled}`)).status).toBe(202);
    await publishAll(published);
    expect(await purge(names.streams.intents)).toBe(RELEASES);
    await cluster.start('coordinator');
    for (const id of published) await waitForState(api, id, 'published', 60_000);
    await waitForState(api, canceled, 'canceled', 60_000);
    for (const action of ['initialize', 'start']) expectEachOnce(ids, action);
    expectEachOnce(published, 'publish');
    expect(callsPerTask(mock, canceled, 'publish').size).toBe(0);
    // nothing left running at the services for the canceled release
    const left = mock.tasks().filter((t) => t.release_id === canceled && t.state !== 'canceled');
    expect(left).toEqual([]);
  }, 120_000);
});
