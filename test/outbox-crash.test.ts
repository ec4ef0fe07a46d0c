import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import type { Notification } from '../src/notifications/notifications';
import { createStudy, waitForState } from './support/fixtures';
import { Cluster } from './support/processes';
import { makeApi, NATS_URL } from './support/system';
import { until } from './support/until';

// The coordinator dies right after committing a batch that wrote notifications, before it could
// publish them (FAULT_EXIT_AFTER_COMMIT). After a restart the outbox relay publishes them: a
// subscriber that dedupes by id sees every transition exactly once.

let cluster: Cluster;
let mock: MockHandle;
let nc: NatsConnection;

beforeAll(async () => {
  cluster = await Cluster.create('outbox_crash');
  await cluster.start('gateway');
  await cluster.start('worker');
  mock = await startMock({ services: 2, stageMs: 100, publishMs: 100 });
  nc = await connect({ servers: NATS_URL });
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await mock?.stop();
  await cluster?.stop();
});

describe('outbox', () => {
  test('kill after commit: every notification is still delivered, exactly once', async () => {
    const api = makeApi(cluster.gatewayUrl, cluster.adminToken);
    for (const name of mock.serviceNames) {
      expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
    }
    const study = await createStudy(api);
    const crashing = await cluster.start('coordinator', 'coordinator-crashing', {
      FAULT_EXIT_AFTER_COMMIT: 'true',
    });
    const post = api('POST', '/releases', { name: 'crash after commit', studies: [study] });
    expect(await crashing.exited).toBe(137);
    const created = await post; // 202 (no reply from the dead coordinator) or 201 if it answered first
    expect([201, 202]).toContain(created.status);
    const releaseId = created.body.kf_id as string;

    await cluster.start('coordinator');
    await waitForState(api, releaseId, 'staged', 30_000);
    expect((await api('POST', `/releases/${releaseId}/publish`)).status).toBe(200);
    await waitForState(api, releaseId, 'published', 30_000);

    const consumer = await jetstream(nc).consumers.get(`${cluster.env.NATS_PREFIX!.toUpperCase()}_EVENTS`, {
      filter_subjects: `${cluster.env.NATS_PREFIX}.evt.release.${releaseId}.*`,
      deliver_policy: DeliverPolicy.All,
    });
    const got: Notification[] = [];
    const messages = await consumer.consume();
    void (async () => {
      for await (const m of messages) got.push(m.json<Notification>());
    })();
    await until(() => got.some((n) => n.type === 'release.published'), { timeoutMs: 10_000 });
    messages.stop();
    expect(got.map((n) => n.type)).toEqual([
      'release.initializing',
      'release.running',
      'release.staged',
      'release.publishing',
      'release.published',
    ]);
    expect(new Set(got.map((n) => n.id)).size).toBe(got.length);
  }, 90_000);
});
