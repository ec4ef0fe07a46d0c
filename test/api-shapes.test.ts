import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createStudy, startTestSystemWithPublicUrl, waitForState } from './support/fixtures';
import { RELEASE_FIELDS } from './support/shapes';
import type { TestSystem } from './support/system';

/** Shapes (fields in order), status codes and paging of the endpoints the other suites touch least. */
const NOTE_FIELDS = ['kf_id', 'description', 'author', 'created_at', 'release', 'study'];
const EVENT_FIELDS = ['kf_id', 'event_type', 'message', 'release', 'task_service', 'task', 'created_at'];
const STUDY_FIELDS = [
  'kf_id',
  'name',
  'version',
  'visible',
  'last_pub_version',
  'last_pub_date',
  'deleted',
  'created_at',
];
const PAGE_FIELDS = ['count', 'next', 'previous', 'results'];

let t: TestSystem;
let base: string;
let study: string;
let release: { kf_id: string };

beforeAll(async () => {
  t = await startTestSystemWithPublicUrl('api_shapes', { MAX_BODY_BYTES: '1024' });
  base = t.system.config.PUBLIC_URL;
  study = await createStudy(t.api);
  // no task service is registered: the release goes straight to staged
  const created = await t.api('POST', '/releases', { name: 'shapes', studies: [study], tags: ['a'] });
  expect(created.status).toBe(201);
  release = created.body;
  await waitForState(t.api, release.kf_id, 'staged');
});
afterAll(async () => {
  await t?.stop();
});

describe('releases', () => {
  test('PATCH changes name, description, tags and is_major; the version stays read-only', async () => {
    const res = await t.api('PATCH', `/releases/${release.kf_id}`, {
      name: 'renamed',
      description: 'd',
      tags: ['x', 'y'],
      is_major: true,
      version: '9.9.9',
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(RELEASE_FIELDS);
    expect(res.body).toMatchObject({ name: 'renamed', description: 'd', tags: ['x', 'y'], is_major: true });
    expect(res.body.version).not.toBe('9.9.9');
    const bad = await t.api('PATCH', `/releases/${release.kf_id}`, { name: '', tags: ['z'.repeat(51)] });
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body).sort()).toEqual(['name', 'tags.0']);
    expect((await t.api('PATCH', '/releases/RE_00000000', { name: 'x' })).status).toBe(404);
  });

  test('release notes: create (URL or bare id), read, list, change, delete', async () => {
    const created = await t.api('POST', '/release-notes', {
      description: 'first note',
      release: `${base}/releases/${release.kf_id}`,
      study,
      author: 'me',
    });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body)).toEqual(NOTE_FIELDS);
    expect(created.body).toMatchObject({
      release: `${base}/releases/${release.kf_id}`,
      study: `${base}/studies/${study}`,
      author: 'me',
    });
    const id = created.body.kf_id;
    expect(id).toMatch(/^RN_[0-9A-HJKMNP-TV-Z]{8}$/);
    expect((await t.api('GET', `/release-notes/${id}`)).body).toEqual(created.body);
    const list = await t.anonymous('GET', `/release-notes?release=${release.kf_id}`);
    expect(Object.keys(list.body)).toEqual(PAGE_FIELDS);
    expect(list.body.results.map((n: { kf_id: string }) => n.kf_id)).toEqual([id]);
    const inRelease = await t.api('GET', `/releases/${release.kf_id}`);
    expect(inRelease.body.notes.map((n: { kf_id: string }) => n.kf_id)).toEqual([id]);

    const patched = await t.api('PATCH', `/release-notes/${id}`, { description: 'changed' });
    expect(patched.status).toBe(200);
    expect(patched.body.description).toBe('changed');
    expect((await t.api('PATCH', `/release-notes/${id}`, { description: '' })).status).toBe(400);

    const otherStudy = await createStudy(t.api);
    const notInRelease = await t.api('POST', '/release-notes', {
      description: 'x',
      release: release.kf_id,
      study: otherStudy,
    });
    expect(notInRelease.status).toBe(400);
    expect(Object.keys(notInRelease.body)).toEqual(['study']);
    const missing = await t.api('POST', '/release-notes', { release: release.kf_id });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({
      description: ['This field is required.'],
      study: ['This field is required.'],
    });

    const deleted = await t.api('DELETE', `/release-notes/${id}`);
    expect(deleted.status).toBe(204);
    expect((await t.api('GET', `/release-notes/${id}`)).status).toBe(404);
    expect((await t.api('DELETE', `/release-notes/${id}`)).status).toBe(404);
  });

  test('studies: by id, and the releases containing one (paged)', async () => {
    const one = await t.anonymous('GET', `/studies/${study}`);
    expect(one.status).toBe(200);
    expect(Object.keys(one.body)).toEqual(STUDY_FIELDS);
    expect(one.body.version).toBe((await t.api('GET', `/releases/${release.kf_id}`)).body.version);
    const releases = await t.anonymous('GET', `/studies/${study}/releases`);
    expect(releases.status).toBe(200);
    expect(Object.keys(releases.body)).toEqual(PAGE_FIELDS);
    expect(Object.keys(releases.body.results[0])).toEqual(RELEASE_FIELDS);
    expect((await t.anonymous('GET', '/studies/SD_00000000')).status).toBe(404);
    expect((await t.anonymous('GET', '/studies/SD_00000000/releases')).status).toBe(404);
  });

  test('events: by id with absolute URLs; unknown id 404', async () => {
    const list = await t.anonymous('GET', `/events?release=${base}/releases/${release.kf_id}&limit=1`);
    expect(list.status).toBe(200);
    const [event] = list.body.results;
    expect(Object.keys(event)).toEqual(EVENT_FIELDS);
    expect(event.release).toBe(`${base}/releases/${release.kf_id}`);
    const one = await t.anonymous('GET', `/events/${event.kf_id}`);
    expect(one.body).toEqual(event);
    expect((await t.anonymous('GET', '/events/EV_00000000')).status).toBe(404);
  });

  test('DELETE cancels (200 canceling or canceled), a final release answers 409', async () => {
    const res = await t.api('DELETE', `/releases/${release.kf_id}`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(RELEASE_FIELDS);
    expect(['canceling', 'canceled']).toContain(res.body.state);
    await waitForState(t.api, release.kf_id, 'canceled');
    const again = await t.api('DELETE', `/releases/${release.kf_id}`);
    expect(again.status).toBe(409);
    expect(typeof again.body.detail).toBe('string');
    expect((await t.api('POST', `/releases/${release.kf_id}/publish`)).status).toBe(409);
    expect((await t.api('DELETE', '/releases/RE_00000000')).status).toBe(404);
  });
});

describe('paging', () => {
  test('next and previous are absolute URLs from PUBLIC_URL that keep the filters', async () => {
    for (let i = 0; i < 3; i++) await createStudy(t.api);
    const first = await t.anonymous('GET', '/studies?limit=2');
    expect(first.body.count).toBeGreaterThanOrEqual(4);
    expect(first.body.previous).toBeNull();
    expect(first.body.next).toBe(`${base}/studies?limit=2&offset=2`);
    const second = await t.anonymous('GET', first.body.next.slice(base.length));
    expect(second.body.previous).toBe(`${base}/studies?limit=2`);
    const ids = [...first.body.results, ...second.body.results].map((s: { kf_id: string }) => s.kf_id);
    expect(new Set(ids).size).toBe(4);
    // newest first
    const created = [...first.body.results, ...second.body.results].map(
      (s: { created_at: string }) => s.created_at,
    );
    expect([...created].sort().reverse()).toEqual(created);

    const filtered = await t.anonymous('GET', '/events?event_type=info&limit=1');
    expect(filtered.body.next).toBe(`${base}/events?event_type=info&limit=1&offset=1`);
    const last = await t.anonymous('GET', `/studies?limit=2&offset=${first.body.count - 1}`);
    expect(last.body.next).toBeNull();
    expect(last.body.results).toHaveLength(1);
  });

  test('bad paging and filter values are 400 naming the parameter', async () => {
    for (const [query, field] of [
      ['limit=abc', 'limit'],
      ['limit=0', 'limit'],
      ['offset=-1', 'offset'],
      ['state=bogus', 'state'],
    ] as const) {
      const res = await t.anonymous('GET', `/releases?${query}`);
      expect({ query, status: res.status, fields: Object.keys(res.body) }).toEqual({
        query,
        status: 400,
        fields: [field],
      });
    }
    expect((await t.anonymous('GET', '/task-services?enabled=maybe')).status).toBe(400);
    expect((await t.anonymous('GET', '/events?event_type=fatal')).status).toBe(400);
    expect((await t.anonymous('GET', '/tasks?state=bogus')).status).toBe(400);
  });
});

describe('what the gateway answers to bad requests', () => {
  test('a method a path does not allow is 405 with an Allow header', async () => {
    const put = await t.api('PUT', '/releases', {});
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'POST']);
    const del = await t.api('DELETE', '/tasks/TA_00000000');
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')?.split(', ').sort()).toEqual(['GET', 'PATCH']);
    const post = await t.api('POST', '/events');
    expect(post.status).toBe(405);
    expect(post.body.detail).toContain('POST');
  });

  test('a body over MAX_BODY_BYTES is 413; a non-JSON body 415; unknown paths 404', async () => {
    const big = await t.api('POST', '/studies', { kf_id: 'SD_ABCDEF12', name: 'x'.repeat(2000) });
    expect(big.status).toBe(413);
    expect(big.body.detail).toContain('1024');
    const text = await t.api('POST', '/studies', 'kf_id=SD_ABCDEF12', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    const form = await t.api('PATCH', `/releases/${release.kf_id}`, 'a=b', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    const nowhere = await t.anonymous('GET', '/nowhere');
    expect(nowhere.status).toBe(404);
    expect(nowhere.body).toEqual({ detail: 'Not found.' });
  });

  test('odd JSON bodies are 400, never 500', async () => {
    for (const body of ['null', '[]', '"x"', '42', '{"name": 5, "studies": "SD_1"}', '{', '']) {
      for (const [method, path] of [
        ['POST', '/releases'],
        ['PATCH', `/releases/${release.kf_id}`],
        ['POST', '/task-services'],
        ['POST', '/release-notes'],
        ['POST', '/studies'],
      ] as const) {
        const res = await t.api(method, path, body === '' ? undefined : body, {
          'content-type': 'application/json',
        });
        expect({ method, path, body, status: res.status }).toEqual({ method, path, body, status: 400 });
      }
    }
  });

  test('trailing slashes are accepted; unknown ids are 404 on every collection', async () => {
    expect((await t.anonymous('GET', '/releases/')).status).toBe(200);
    for (const path of [
      '/releases/RE_00000000',
      '/tasks/TA_00000000',
      '/task-services/TS_00000000',
      '/events/EV_00000000',
      '/studies/SD_00000000',
      '/release-notes/RN_00000000',
      '/releases/not-an-id',
    ]) {
      const res = await t.anonymous('GET', path);
      expect({ path, status: res.status, body: res.body }).toEqual({
        path,
        status: 404,
        body: { detail: 'Not found.' },
      });
    }
  });

  test('GET / and GET /status', async () => {
    const root = await t.anonymous('GET', '/');
    expect(root.body).toEqual({
      releases: `${base}/releases`,
      tasks: `${base}/tasks`,
      'task-services': `${base}/task-services`,
      events: `${base}/events`,
      'release-notes': `${base}/release-notes`,
      studies: `${base}/studies`,
    });
    const status = await t.anonymous('GET', '/status');
    expect(status.status).toBe(200);
    expect(Object.keys(status.body).slice(0, 4)).toEqual(['name', 'message', 'version', 'commit']);
  });
});
