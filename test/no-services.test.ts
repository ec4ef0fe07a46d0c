import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createRelease, createStudy, eventsOf, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

let t: TestSystem;
let mock: MockHandle;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('no_services');
  study = await createStudy(t.api);
  // one service, registered and then disabled: there is no enabled service
  mock = await startMock({ services: ['off'] });
  const res = await t.api('POST', '/task-services', { name: 'off', url: mock.serviceUrl('off') });
  expect(res.status).toBe(201);
  const patched = await t.api('PATCH', `/task-services/${res.body.kf_id}`, { enabled: false });
  expect(patched.body.enabled).toBe(false);
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('a release with no enabled task service', () => {
  test('goes straight to staged, and publishing it needs no calls', async () => {
    const created = await createRelease(t.api, [study]);
    expect(created.tasks).toEqual([]);
    const staged = await waitForState(t.api, created.kf_id, ['staged', 'published', 'failed', 'canceled']);
    expect(staged.state).toBe('staged');

    const res = await t.api('POST', `/releases/${created.kf_id}/publish`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ message: 'publishing' });
    const published = await waitForState(t.api, created.kf_id, 'published');
    expect(published.version).toBe('0.1.0');
    expect(published.tasks).toEqual([]);

    // the disabled service got no task call (GET /status checks aside)
    expect(mock.calls.filter((c) => c.action !== 'status')).toEqual([]);
    expect(mock.calls.length).toBeGreaterThanOrEqual(1);

    const messages = (await eventsOf(t.api, created.kf_id)).map((e) => e.message);
    expect(messages).toEqual([
      `release ${created.kf_id}, version 0.0.0 changed from waiting to running`,
      `release ${created.kf_id}, version 0.0.0 changed from running to staged`,
      `release ${created.kf_id}, version 0.0.0 changed from staged to publishing`,
      `release ${created.kf_id}, version 0.1.0 changed from publishing to published`,
    ]);
  });
});
