import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { expectNoDuplicate, outage, PrivateNats } from './support/faults';
import { createStudy, waitForState } from './support/fixtures';
import { Cluster } from './support/processes';
import { type Api, makeApi } from './support/system';
import { until } from './support/until';

// Answers that can no longer come (docs/lifecycle.md, "Answers that can no longer come"): real
// processes (gateway, coordinator, worker) on a private nats-server. A coordinator restart while
// services call back before answering start, and the NATS store wiped while starts are under way,
// must delay releases, never fail them; no start or publish is sent twice.

const SERVICES = 2;
let nats: PrivateNats;
let cluster: Cluster;
let mock: MockHandle;
let api: Api;
let study: string;

beforeAll(async () => {
  nats = await PrivateNats.start();
  cluster = await Cluster.create('faults_lost_answers', {
    NATS_URL: nats.url,
    REQUEST_TIMEOUT_MS: '2000',
    START_TIMEOUT_MS: '4000',
    PUBLISH_TIMEOUT_MS: '4000',
    POLL_INTERVAL_MS: '1000',
    LOG_LEVEL: 'info',
  });
  await Promise.all([cluster.start('gateway'), cluster.start('coordinator'), cluster.start('worker')]);
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  // services that call back (with a token) before they answer start, as one real service does
  mock = await startMock({
    services: SERVICES,
    stageMs: 1_200,
    publishMs: 300,
    coordinatorUrl: cluster.gatewayUrl,
    callbackToken: cluster.adminToken,
    behaviour: { callback: 'before', replyWhenDone: true },
  });
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

async function createMany(n: number, label: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await until(
      async () => {
        const r = await api(
          'POST',
          '/releases',
          { name: `${label} ${i}`, studies: [study] },
          {
            'idempotency-key': `${cluster.env.NATS_PREFIX}-${label}-${i}`,
          },
        );
        return r.status === 201 || r.status === 202 ? r : undefined;
      },
      { timeoutMs: 30_000, message: `release ${i} to be taken` },
    );
    ids.push(res.body.kf_id);
  }
  return ids;
}

/** staged, then published (publishing retried while the gateway answers 503) */
async function finish(id: string) {
  const staged = await waitForState(api, id, ['staged', 'failed', 'canceled'], 90_000);
  expect({ id, state: staged.state }).toEqual({ id, state: 'staged' });
  await until(
    async () => {
      const r = await api('POST', `/releases/${id}/publish`);
      return r.status === 200 || r.status === 202 ? r : undefined;
    },
    { timeoutMs: 30_000, message: `publish of ${id} to be taken` },
  );
  const done = await waitForState(api, id, ['published', 'failed', 'canceled'], 90_000);
  expect({ id, state: done.state }).toEqual({ id, state: 'published' });
  expectNoDuplicate(mock, id, 'start', SERVICES);
  expectNoDuplicate(mock, id, 'publish', SERVICES);
}

describe('answers that can no longer come delay releases, never fail them', () => {
  test('a 2.4 s coordinator restart while services call back before answering start: every release publishes', async () => {
    const ids = await createMany(10, 'restart');
    // the starts are under way (their callbacks arrive before their answers)
    await until(() => mock.calls.filter((c) => c.action === 'start').length >= 4, {
      timeoutMs: 30_000,
      message: 'starts to reach the services',
    });
    await cluster.kill('coordinator');
    await outage(2_400);
    await cluster.start('coordinator', 'coordinator');
    for (const id of ids) await finish(id);
    // the callbacks that came while the coordinator was away were answered, never held past their
    // deadline; a callback still on its way when the last release shows published is waited for
    // (status 0 is also "not answered yet"; a failed one has its error)
    await until(() => mock.callbacks.every((c) => c.status !== 0 || c.error !== undefined), {
      timeoutMs: 10_000,
      message: 'the callbacks in flight to be answered or to fail',
    });
    const failed = mock.callbacks.filter((c) => c.status === 0);
    expect(failed.map((c) => `${c.taskId} ${JSON.stringify(c.body)}: ${c.error}`)).toEqual([]);
  }, 240_000);

  test('the NATS store wiped while starts are under way (and the worker making them killed): the starts found by polling, every release publishes', async () => {
    // services that only answer (no callbacks): the start answers are the only news
    mock.setBehaviour({ callback: 'never' });
    const ids = await createMany(4, 'wipe');
    await until(() => ids.every((id) => mock.calls.some((c) => c.releaseId === id && c.action === 'start')), {
      timeoutMs: 30_000,
      message: 'every start to reach the services',
    });
    // neither the commands nor their results survive: the answers can only be found by polling
    await cluster.kill('worker');
    await nats.kill();
    nats.wipe();
    await nats.start();
    await cluster.start('worker', 'worker');
    for (const id of ids) await finish(id);
    const events = (await api('GET', `/events?release=${ids[0]}&limit=100`)).body.results as Array<{
      message: string;
    }>;
    expect(events.some((e) => e.message.includes('its answer was lost'))).toBe(true);
    mock.setBehaviour({ callback: 'before' });
  }, 240_000);

  test('the process log has an info line for every release change and a warning naming the service of a halt', async () => {
    mock.setBehaviour({ httpStatus: 503 }, mock.serviceNames[0]!, 'start');
    const [id] = await createMany(1, 'halt');
    const failed = await waitForState(api, id!, ['failed', 'canceled', 'published'], 60_000);
    expect(failed.state).toBe('failed');
    mock.setBehaviour({ httpStatus: 0 }, mock.serviceNames[0]!, 'start');
    const logs = () =>
      readFileSync(cluster.logs.get('coordinator')!, 'utf8')
        .split('\n')
        // the structured log, one JSON object per line (a line cut by kill -9 is skipped)
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        });
    const lines = await until(
      () => {
        const all = logs().filter((l) => l.release === id);
        return all.some((l) => l.msg === 'release halted') && all.some((l) => l.to === 'failed')
          ? all
          : undefined;
      },
      { message: 'the halt to be logged' },
    );
    const halted = lines.find((l) => l.msg === 'release halted')!;
    expect(halted).toMatchObject({ level: 40, reason: 'fail', service: mock.serviceNames[0] });
    expect(String(halted.message)).toContain('HTTP 503');
    const changes = lines.filter((l) => l.msg === 'release changed state').map((l) => `${l.from}>${l.to}`);
    expect(changes).toEqual([
      'waiting>initializing',
      'initializing>running',
      'running>canceling',
      'canceling>failed',
    ]);
    expect(
      lines.some((l) => l.level === 40 && String(l.msg).includes(`of ${mock.serviceNames[0]} failed`)),
    ).toBe(true);
    // tokens never reach the log
    expect(JSON.stringify(logs())).not.toContain(cluster.adminToken);
  }, 90_000);
});
