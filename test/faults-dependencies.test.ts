import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import postgres from 'postgres';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { busNames } from '../src/infra/bus/subjects';
import {
  expectNoDuplicate,
  outage,
  PrivateNats,
  publishWhenStaged,
  soakOr,
  withPostgresAway,
} from './support/faults';
import { createStudy, waitForTaskStates } from './support/fixtures';
import { Cluster } from './support/processes';
import { type Api, makeApi } from './support/system';
import { until } from './support/until';

// Real processes (gateway, coordinator, worker: each `bun src/main.ts`) on a private nats-server
// and the test's own database. NATS goes away for 10 s mid-release (on its store, and once with
// its store wiped), Postgres refuses every connection for 10 s mid-release. Each release must end
// published, with every task started and published exactly once (the mock's call log).
// The outage lengths are the faults being injected, not synchronisation.

const SERVICES = 3;
const OUTAGE_MS = soakOr(10_000, 30_000);
let nats: PrivateNats;
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
let study: string;
let prefix: string;

beforeAll(async () => {
  nats = await PrivateNats.start();
  cluster = await Cluster.create('faults_deps', { NATS_URL: nats.url, REQUEST_TIMEOUT_MS: '2000' });
  prefix = cluster.env.NATS_PREFIX!;
  await Promise.all([cluster.start('gateway'), cluster.start('coordinator'), cluster.start('worker')]);
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: SERVICES, stageMs: 1_500, publishMs: 300 });
  for (const name of mock.serviceNames) {
    expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
  study = await createStudy(api);
}, 90_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
  await nats?.close();
});

const publish = (releaseId: string) => publishWhenStaged(api, releaseId);

function expectEachTaskOnce(releaseId: string) {
  expectNoDuplicate(mock, releaseId, 'start', SERVICES);
  expectNoDuplicate(mock, releaseId, 'publish', SERVICES);
}

describe('NATS away', () => {
  test(`nats-server killed for ${OUTAGE_MS / 1000} s while tasks run; a create during the outage is kept (stored in Postgres) and retried safely`, async () => {
    const created = await api('POST', '/releases', { name: 'nats outage', studies: [study] });
    expect(created.status).toBe(201);
    const id = created.body.kf_id;
    await waitForTaskStates(api, id, 'running', 30_000);
    await nats.kill();
    // reads come from Postgres and keep answering; /status says the bus is gone
    expect((await api('GET', `/releases/${id}`)).status).toBe(200);
    const status = await until(
      async () => {
        const r = await api('GET', '/status');
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 10_000, message: '/status to answer 503' },
    );
    expect(status.body.bus).toBe('unreachable');
    // the create is stored in Postgres first, so it is taken even now (the coordinator applies it from
    // there: 201, or 202 when that takes longer than the reply wait); never a 500, never half a release
    const during = await api(
      'POST',
      '/releases',
      { name: 'during the outage', studies: [study] },
      { 'idempotency-key': `outage-${id}` },
    );
    expect([201, 202, 503]).toContain(during.status);
    await outage(OUTAGE_MS);
    await nats.start();
    const done = await publish(id);
    expect(done.state).toBe('published');
    expectEachTaskOnce(id);
    // the client retries its create with the same key: one release, whatever the first answer was
    const retried = await until(
      async () => {
        const r = await api(
          'POST',
          '/releases',
          { name: 'during the outage', studies: [study] },
          { 'idempotency-key': `outage-${id}` },
        );
        return r.status === 201 ? r : undefined;
      },
      { timeoutMs: 30_000, message: 'the retried create to be answered 201' },
    );
    if (during.status !== 503) expect(retried.body.kf_id).toBe(during.body.kf_id);
    const sameName = await api('GET', '/releases?limit=100');
    expect(
      sameName.body.results.filter((r: { name: string }) => r.name === 'during the outage'),
    ).toHaveLength(1);
    const second = await publish(retried.body.kf_id);
    expect(second.state).toBe('published');
    expectEachTaskOnce(retried.body.kf_id);
  }, 180_000);

  test('nats-server loses its whole store between releases: every process recreates streams, consumers and the KV bucket', async () => {
    await nats.kill();
    nats.wipe();
    await nats.start();
    const created = await until(
      async () => {
        const r = await api('POST', '/releases', { name: 'after the wipe', studies: [study] });
        return r.status === 201 ? r : undefined;
      },
      { timeoutMs: 30_000, message: 'the gateway to accept a release on the wiped server' },
    );
    const id = created.body.kf_id;
    const done = await publish(id);
    expect(done.state).toBe('published');
    expectEachTaskOnce(id);
    // the notification stream is back too, and carries this release's transitions
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const names = busNames(prefix);
      const streams = [];
      for await (const s of jsm.streams.list()) streams.push(s.config.name);
      expect(streams).toEqual(
        expect.arrayContaining([...Object.values(names.streams), `KV_${names.haltedBucket}`]),
      );
      const last = await jsm.streams.getMessage(names.streams.events, {
        last_by_subj: names.releaseEvent(id, 'published'),
      });
      expect(last?.json<{ subject: string }>().subject).toBe(id);
    } finally {
      await nc.close();
    }
  }, 120_000);
});

describe('Postgres away', () => {
  test(`the test database refuses every connection for ${OUTAGE_MS / 1000} s mid-release (sessions killed)`, async () => {
    const created = await api('POST', '/releases', { name: 'postgres outage', studies: [study] });
    expect(created.status).toBe(201);
    const id = created.body.kf_id;
    await waitForTaskStates(api, id, 'running', 30_000);
    await withPostgresAway(cluster.env.DATABASE_URL!, async () => {
      const read = await api('GET', `/releases/${id}`);
      expect(read.status).toBe(503);
      expect(typeof read.body.detail).toBe('string');
      const cancel = await api('DELETE', `/releases/${id}`);
      expect(cancel.status).toBe(503);
      await outage(OUTAGE_MS);
    });
    const done = await publish(id);
    expect(done.state).toBe('published');
    expectEachTaskOnce(id);
    // nothing lost: one event per task transition, in order, for every task
    const sql = postgres(cluster.env.DATABASE_URL!, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ message: string }[]>`
        select message from events where release_id = ${id} and task_id is not null order by created_at`;
      for (const step of ['waiting to initialized', 'initialized to running', 'running to staged']) {
        expect(rows.filter((r) => r.message.includes(step))).toHaveLength(SERVICES);
      }
    } finally {
      await sql.end();
    }
  }, 180_000);
});
