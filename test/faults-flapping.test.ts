import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { expectNoDuplicate, soakOr } from './support/faults';
import { createStudy, registerMockServices, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

// 50 task services; 10% of them flap between 200 and 503 on GET /status (strict alternation, so
// never HEALTH_FAILURE_THRESHOLD failures in a row) and answer every request after a random
// delay. Health checks run every 200 ms, so each flapping service is seen down many times
// during the releases. A flapping service is not a down service: every release is published,
// every task started and published exactly once, no service ever marked down.

const SERVICES = 50;
const FLAPPING = SERVICES / 10;
const RELEASES = soakOr(2, 10);
let t: TestSystem;
let mock: MockHandle;
let flapping: string[];
let study: string;

beforeAll(async () => {
  t = await startTestSystem('faults_flapping', {
    POLL_INTERVAL_MS: '200',
    SCHEDULER_TICK_MS: '50',
    HEALTH_INTERVAL_MS: '200',
    HEALTH_FAILURE_THRESHOLD: '3',
    REQUEST_TIMEOUT_MS: '3000',
  });
  ({ mock } = await registerMockServices(t.api, SERVICES, { stageMs: 1_500, publishMs: 600 }));
  // the flapping starts after registration (registration itself needs a 200 from /status)
  flapping = mock.serviceNames.filter((_, i) => i % 10 === 0);
  for (const name of flapping) {
    mock.setBehaviour({ statusMode: 'flap', latencyMs: [0, 700] }, name);
  }
  study = await createStudy(t.api);
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('flapping and slow services', () => {
  test(`${RELEASES} releases over ${SERVICES} services, ${FLAPPING} of them flapping and slow`, async () => {
    expect(flapping).toHaveLength(FLAPPING);
    const ids: string[] = [];
    for (let i = 0; i < RELEASES; i++) {
      const res = await t.api('POST', '/releases', { name: `flap ${i}`, studies: [study] });
      expect(res.status).toBe(201);
      expect(res.body.tasks).toHaveLength(SERVICES);
      ids.push(res.body.kf_id);
    }
    for (const id of ids) {
      await waitForState(t.api, id, 'staged', 60_000);
      expect((await t.api('POST', `/releases/${id}/publish`)).status).toBe(200);
    }
    for (const id of ids) {
      const done = await waitForState(t.api, id, ['published', 'failed', 'canceled'], 60_000);
      expect(done.state).toBe('published');
      expectNoDuplicate(mock, id, 'start', SERVICES);
      expectNoDuplicate(mock, id, 'publish', SERVICES);
    }
    // the flapping really happened while the releases ran: both answers, many times, per service
    for (const name of flapping) {
      const statuses = mock.callsFor({ service: name, action: 'status' }).map((c) => c.status);
      expect({ name, up: statuses.includes(200), down: statuses.includes(503) }).toEqual({
        name,
        up: true,
        down: true,
      });
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(2);
    }
    const services = await t.api('GET', '/task-services?limit=100');
    expect(
      services.body.results.filter((s: { health_status: string }) => s.health_status === 'down'),
    ).toEqual([]);
  }, 120_000);
});
