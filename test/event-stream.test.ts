import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import { createRelease, createStudy, registerMockServices, waitForState } from './support/fixtures';
import { readSse } from './support/sse';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

let t: TestSystem;
let mock: MockHandle;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('event_stream');
  ({ mock } = await registerMockServices(t.api, 2));
  study = await createStudy(t.api);
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('GET /events/stream (Server-Sent Events)', () => {
  test('follows one release live, then resumes after Last-Event-ID without gaps or repeats', async () => {
    const other = await createRelease(t.api, [study]);
    const release = await createRelease(t.api, [study]);
    const first = readSse(`${t.url}/events/stream?release=${release.kf_id}&from=all`);
    await waitForState(t.api, release.kf_id, 'staged');
    await until(() => first.events.some((e) => e.event === 'release.staged'), { timeoutMs: 10_000 });
    first.close();
    const seenSoFar = first.events.filter((e) => e.id);
    expect(
      seenSoFar.every(
        (e) =>
          JSON.parse(e.data).data.release_id === release.kf_id ||
          JSON.parse(e.data).subject === release.kf_id,
      ),
    ).toBe(true);
    expect(seenSoFar.some((e) => JSON.parse(e.data).subject === other.kf_id)).toBe(false);

    // more happens while the client is away
    await t.api('POST', `/releases/${release.kf_id}/publish`);
    await waitForState(t.api, release.kf_id, 'published');

    const lastId = seenSoFar.at(-1)!.id!;
    const second = readSse(`${t.url}/events/stream?release=${release.kf_id}`, { 'last-event-id': lastId });
    await until(() => second.events.some((e) => e.event === 'release.published'), { timeoutMs: 10_000 });
    second.close();
    const resumed = second.events.filter((e) => e.id);
    expect(Number(resumed[0]!.id)).toBeGreaterThan(Number(lastId));
    const ids = [...seenSoFar, ...resumed].map((e) => Number(e.id));
    expect(new Set(ids).size).toBe(ids.length);
    expect(resumed.map((e) => e.event)).toContain('release.publishing');
  });

  test('bad parameters are a 400 naming the field', async () => {
    const res = await t.api('GET', '/events/stream?release=nope');
    expect(res.status).toBe(400);
    expect(res.body.release).toBeDefined();
    const bad = await t.api('GET', '/events/stream', undefined, { 'last-event-id': 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body['Last-Event-ID']).toBeDefined();
  });
});
