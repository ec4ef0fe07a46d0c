import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { startFakeDataservice } from './support/dataservice';
import { startTestSystem, type TestSystem } from './support/system';

// 25 studies upstream, 10 per page: the sync must follow every `_links.next`.
const ids = Array.from({ length: 25 }, (_, i) => `SD_${String(i).padStart(8, '0')}`);
const upstream = startFakeDataservice(ids.map((kf_id) => ({ kf_id, name: `Study ${kf_id}` })));
let t: TestSystem;

beforeAll(async () => {
  t = await startTestSystem('studies_sync', { DATASERVICE_URL: upstream.url });
});
afterAll(async () => {
  await t?.stop();
  upstream.stop();
});

describe('POST /studies/sync', () => {
  test('pulls every page, then reports new, updated and deleted studies', async () => {
    const first = await t.api('POST', '/studies/sync');
    expect(first.status).toBe(200);
    expect(first.body.new).toHaveLength(25);
    expect(first.body.deleted).toEqual([]);
    expect(first.body.updated).toEqual([]);
    expect(first.body.pages).toBe(3);
    expect(upstream.requests.filter((r) => r.startsWith('/studies')).length).toBe(3);
    expect((await t.api('GET', '/studies?limit=100')).body.count).toBe(25);

    // upstream: one renamed, one hidden, two gone, one new
    upstream.set([
      ...ids.slice(2).map((kf_id) => ({
        kf_id,
        name: kf_id === ids[5] ? 'Renamed' : `Study ${kf_id}`,
        visible: kf_id !== ids[6],
      })),
      { kf_id: 'SD_NEW00001', name: 'Brand new' },
    ]);
    const second = await t.api('POST', '/studies/sync');
    expect(second.status).toBe(200);
    expect(second.body.new).toEqual(['SD_NEW00001']);
    expect([...second.body.deleted].sort()).toEqual([ids[0], ids[1]]);
    expect([...second.body.updated].sort()).toEqual([ids[5], ids[6]]);
    const gone = await t.api('GET', `/studies/${ids[0]}`);
    expect(gone.body.deleted).toBe(true);
    expect((await t.api('GET', `/studies/${ids[5]}`)).body.name).toBe('Renamed');

    // a study that comes back is restored
    upstream.set(ids.map((kf_id) => ({ kf_id, name: `Study ${kf_id}` })));
    const third = await t.api('POST', '/studies/sync');
    expect(third.body.updated).toContain(ids[0]);
    expect((await t.api('GET', `/studies/${ids[0]}`)).body.deleted).toBe(false);
  });

  test('an upstream failure changes nothing and answers 502 with the reason', async () => {
    const before = (await t.api('GET', '/studies?limit=100')).body.count;
    upstream.stop();
    const res = await t.api('POST', '/studies/sync');
    expect(res.status).toBe(502);
    expect(res.body.detail).toContain('Study sync failed');
    expect((await t.api('GET', '/studies?limit=100')).body.count).toBe(before);
  });

  test('needs ADMIN or DEV', async () => {
    const user = await t.mint({ username: 'u', roles: ['USER'] });
    expect(
      (await t.api('POST', '/studies/sync', undefined, { authorization: `Bearer ${user}` })).status,
    ).toBe(403);
    expect((await t.anonymous('POST', '/studies/sync')).status).toBe(401);
  });
});
