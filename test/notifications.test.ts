import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { MockHandle } from '../mock-task-service/src/index';
import schema from '../src/notifications/notification.schema.json' with { type: 'json' };
import type { Notification } from '../src/notifications/notifications';
import { createRelease, createStudy, registerMockServices, waitForState } from './support/fixtures';
import { NATS_URL, startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

let t: TestSystem;
let mock: MockHandle;
let nc: NatsConnection;
let study: string;

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validate = ajv.compile(schema);

beforeAll(async () => {
  t = await startTestSystem('notifications');
  ({ mock } = await registerMockServices(t.api, 2));
  study = await createStudy(t.api);
  nc = await connect({ servers: NATS_URL });
});
afterAll(async () => {
  await nc?.close();
  await mock?.stop();
  await t?.stop();
});

/** Collects what a subscriber with this filter receives, from the start of the stream. */
async function collect(filter: string) {
  const consumer = await jetstream(nc).consumers.get(`${t.prefix.toUpperCase()}_EVENTS`, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  });
  const got: Array<{ subject: string; n: Notification }> = [];
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) got.push({ subject: m.subject, n: m.json<Notification>() });
  })();
  return { got, stop: () => messages.stop() };
}

describe('release and task transitions on the events stream', () => {
  test('every transition is published after commit, in order, with the documented envelope', async () => {
    const all = await collect(`${t.prefix}.evt.>`);
    const release = await createRelease(t.api, [study]);
    await waitForState(t.api, release.kf_id, 'staged');
    expect((await t.api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(200);
    await waitForState(t.api, release.kf_id, 'published');

    const releaseStates = ['initializing', 'running', 'staged', 'publishing', 'published'];
    const mine = () => all.got.filter((g) => g.subject.includes(`.${release.kf_id}.`));
    await until(() => mine().filter((g) => g.n.type.startsWith('release.')).length >= releaseStates.length, {
      timeoutMs: 10_000,
    });
    all.stop();
    const rel = mine().filter((g) => g.n.type.startsWith('release.'));
    expect(rel.map((g) => g.n.type as string)).toEqual(releaseStates.map((s) => `release.${s}`));
    expect(rel.map((g) => g.subject)).toEqual(
      releaseStates.map((s) => `${t.prefix}.evt.release.${release.kf_id}.${s}`),
    );
    const published = rel.at(-1)!.n;
    expect(published.data.version).toBe('0.1.0');
    expect(published.data.studies).toEqual([study]);
    expect(published.data.previous_state).toBe('publishing');
    expect(published.subject).toBe(release.kf_id);

    const tasks = mine().filter((g) => g.n.type.startsWith('task.'));
    // each of the 2 tasks: initialized, running, staged, publishing, published
    expect(tasks).toHaveLength(10);
    for (const g of tasks) {
      expect(g.subject).toBe(`${t.prefix}.evt.task.${release.kf_id}.${g.n.subject}.${g.n.type.slice(5)}`);
      expect(g.n.data.release_id).toBe(release.kf_id);
    }
    for (const g of mine()) {
      const ok = validate(g.n);
      if (!ok) throw new Error(`${g.n.type}: ${ajv.errorsText(validate.errors)}`);
    }
    expect(new Set(mine().map((g) => g.n.id)).size).toBe(mine().length);
  });

  test('a subscriber can filter on the new state: rc.evt.release.*.published', async () => {
    const onlyPublished = await collect(`${t.prefix}.evt.release.*.published`);
    const a = await createRelease(t.api, [study]);
    const b = await createRelease(t.api, [study]);
    await waitForState(t.api, a.kf_id, 'staged');
    await waitForState(t.api, b.kf_id, 'staged');
    await t.api('POST', `/releases/${a.kf_id}/publish`);
    await t.api('DELETE', `/releases/${b.kf_id}`);
    await waitForState(t.api, a.kf_id, 'published');
    await waitForState(t.api, b.kf_id, 'canceled');
    await until(() => onlyPublished.got.some((g) => g.n.subject === a.kf_id), { timeoutMs: 10_000 });
    onlyPublished.stop();
    expect(onlyPublished.got.every((g) => g.n.type === 'release.published')).toBe(true);
    expect(onlyPublished.got.some((g) => g.n.subject === b.kf_id)).toBe(false);
  });
});
