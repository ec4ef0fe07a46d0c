import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { createRelease, createStudy, registerMockServices, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

let t: TestSystem;
let mock: MockHandle;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('release_flow');
  study = await createStudy(t.api);
  ({ mock } = await registerMockServices(t.api, 3));
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('one release end to end', () => {
  test('create → staged → publish → published, with events', async () => {
    const created = await createRelease(t.api, [study]);
    expect(created.state).toBe('waiting');
    expect(created.version).toBe('0.0.0');
    expect(created.tasks).toHaveLength(3);

    const staged = await waitForState(t.api, created.kf_id, 'staged');
    expect(staged.tasks.map((x: { state: string }) => x.state)).toEqual(['staged', 'staged', 'staged']);

    const pub = await t.api('POST', `/releases/${created.kf_id}/publish`);
    expect(pub.status).toBe(200);
    expect(pub.body).toEqual({ message: 'publishing' });

    const published = await waitForState(t.api, created.kf_id, 'published');
    expect(published.version).toBe('0.1.0');

    for (const name of mock.serviceNames) {
      const actions = mock.callsFor({ service: name }).map((c) => c.action);
      expect(actions.filter((a) => a === 'initialize')).toHaveLength(1);
      expect(actions.filter((a) => a === 'start')).toHaveLength(1);
      expect(actions.filter((a) => a === 'publish')).toHaveLength(1);
    }
    const events = await t.api('GET', `/events?release=${created.kf_id}&limit=100`);
    const messages = events.body.results.map((e: { message: string }) => e.message);
    expect(messages).toContain(`release ${created.kf_id}, version 0.0.0 changed from running to staged`);
    expect(messages).toContain(
      `release ${created.kf_id}, version 0.1.0 changed from publishing to published`,
    );
  });
});
