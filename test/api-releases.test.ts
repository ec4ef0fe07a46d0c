import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRelease,
  createStudy,
  eventsOf,
  registerMockServices,
  startTestSystemWithPublicUrl,
  waitForState,
  waitForTaskStates,
} from './support/fixtures';
import { RELEASE_FIELDS, TASK_FIELDS } from './support/shapes';
import type { TestSystem } from './support/system';

const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

let t: TestSystem;
let mock: MockHandle;
let serviceIds: string[];
let study: string;
/** the first release of this database: 0.0.0, published as 0.1.0 */
let first: { kf_id: string; tasks: Array<{ kf_id: string }> };

beforeAll(async () => {
  t = await startTestSystemWithPublicUrl('api_releases');
  study = await createStudy(t.api);
  ({ mock, serviceIds } = await registerMockServices(t.api, 3));
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('POST /releases', () => {
  test('201 in state waiting with the Release fields in order, then staged once every service answered', async () => {
    const res = await t.api('POST', '/releases', {
      name: 'First release',
      description: 'the first one',
      studies: [study],
      tags: ['a', 'b'],
      author: 'tester',
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(RELEASE_FIELDS);
    expect(res.body).toMatchObject({
      name: 'First release',
      description: 'the first one',
      notes: [],
      state: 'waiting',
      studies: [study],
      version: '0.0.0',
      tags: ['a', 'b'],
      author: 'tester',
      is_major: false,
    });
    expect(res.body.kf_id).toMatch(/^RE_[0-9A-HJKMNP-TV-Z]{8}$/);
    expect(res.body.created_at).toMatch(ISO_Z);
    expect(res.body.tasks).toHaveLength(3);
    for (const task of res.body.tasks) {
      expect(Object.keys(task)).toEqual(TASK_FIELDS);
      expect(task.state).toBe('waiting');
    }
    first = res.body;

    const staged = await waitForState(t.api, first.kf_id, 'staged');
    expect(staged.tasks.map((x: { state: string }) => x.state)).toEqual(['staged', 'staged', 'staged']);

    // initialize went to every service, and start only after every initialize was answered 200
    const mine = mock.calls.filter((c) => c.releaseId === first.kf_id);
    const inits = mine.filter((c) => c.action === 'initialize');
    const starts = mine.filter((c) => c.action === 'start');
    expect(inits.map((c) => c.service).sort()).toEqual([...mock.serviceNames].sort());
    expect(starts.map((c) => c.service).sort()).toEqual([...mock.serviceNames].sort());
    expect(inits.every((c) => c.status === 200)).toBe(true);
    const lastInit = Math.max(...inits.map((c) => c.at));
    const firstStart = Math.min(...starts.map((c) => c.at));
    expect(lastInit).toBeLessThanOrEqual(firstStart);
    // each call carried the task id and the release's studies
    for (const c of inits) expect(c.body).toMatchObject({ action: 'initialize', studies: [study] });
  });

  test('a missing name or studies is 400 naming the field', async () => {
    const noName = await t.api('POST', '/releases', { studies: [study] });
    expect(noName.status).toBe(400);
    expect(noName.body).toEqual({ name: ['This field is required.'] });

    const noStudies = await t.api('POST', '/releases', { name: 'x' });
    expect(noStudies.status).toBe(400);
    expect(noStudies.body).toEqual({ studies: ['This field is required.'] });

    const emptyStudies = await t.api('POST', '/releases', { name: 'x', studies: [] });
    expect(emptyStudies.status).toBe(400);
    expect(Object.keys(emptyStudies.body)).toEqual(['studies']);

    const blank = await t.api('POST', '/releases', { name: '   ', studies: [study] });
    expect(blank.status).toBe(400);
    expect(Object.keys(blank.body)).toEqual(['name']);
  });

  test('an unknown study is 400 {studies: [...]} and creates nothing', async () => {
    const before = await t.api('GET', '/releases');
    const res = await t.api('POST', '/releases', { name: 'x', studies: [study, 'SD_ZZZZZZZZ'] });
    expect(res.status).toBe(400);
    expect(Object.keys(res.body)).toEqual(['studies']);
    expect(res.body.studies.join(' ')).toContain('SD_ZZZZZZZZ');
    const after = await t.api('GET', '/releases');
    expect(after.body.count).toBe(before.body.count);
  });

  test('malformed JSON is a 400 with a JSON error body', async () => {
    const res = await fetch(`${t.url}/releases`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.adminToken}` },
      body: '{"name": "x", "studies": [',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = (await res.json()) as Record<string, unknown>;
    expect(typeof body.detail).toBe('string');
  });

  test('a body that is not JSON is 415', async () => {
    const res = await fetch(`${t.url}/releases`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', authorization: `Bearer ${t.adminToken}` },
      body: 'name=x',
    });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(((await res.json()) as { detail: string }).detail).toContain('application/json');
  });
});

describe('POST /releases/{id}/publish', () => {
  test('200 {message: "publishing"}, then published with the minor version bumped', async () => {
    const res = await t.api('POST', `/releases/${first.kf_id}/publish`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ message: 'publishing' });
    const published = await waitForState(t.api, first.kf_id, 'published');
    expect(published.version).toBe('0.1.0');
    expect(published.tasks.map((x: { state: string }) => x.state)).toEqual([
      'published',
      'published',
      'published',
    ]);
    for (const name of mock.serviceNames) {
      expect(mock.callsFor({ service: name, action: 'publish' })).toHaveLength(1);
    }
  });

  test('the next release takes the next patch of the published version (0.1.1)', async () => {
    const next = await createRelease(t.api, [study]);
    expect(next.version).toBe('0.1.1');
    await waitForState(t.api, next.kf_id, 'staged');
    const res = await t.api('POST', `/releases/${next.kf_id}/publish`);
    expect(res.status).toBe(200);
    const published = await waitForState(t.api, next.kf_id, 'published');
    expect(published.version).toBe('0.2.0');
  });

  test('publishing a release that is not staged is 409 and changes nothing', async () => {
    const again = await t.api('POST', `/releases/${first.kf_id}/publish`);
    expect(again.status).toBe(409);
    expect(typeof again.body.detail).toBe('string');
    const still = await t.api('GET', `/releases/${first.kf_id}`);
    expect(still.body.state).toBe('published');
    expect(still.body.version).toBe('0.1.0');

    // a running release (slow services) cannot be published either
    mock.setBehaviour({ stageMs: 60_000 });
    try {
      const slow = await createRelease(t.api, [study]);
      await waitForTaskStates(t.api, slow.kf_id, 'running');
      const publishCallsBefore = mock.callsFor({ action: 'publish' }).length;
      const res = await t.api('POST', `/releases/${slow.kf_id}/publish`);
      expect(res.status).toBe(409);
      expect((await t.api('GET', `/releases/${slow.kf_id}`)).body.state).toBe('running');
      expect(mock.callsFor({ action: 'publish' }).length).toBe(publishCallsBefore);
      const canceled = await t.api('DELETE', `/releases/${slow.kf_id}`);
      expect(canceled.status).toBe(200);
      await waitForState(t.api, slow.kf_id, 'canceled');
    } finally {
      mock.setBehaviour({ stageMs: 30 });
    }
  });

  test('publishing an unknown release is 404 {detail: "Not found."}', async () => {
    const res = await t.api('POST', '/releases/RE_00000000/publish');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ detail: 'Not found.' });
  });
});

describe('events, tasks and the root resources', () => {
  test('every transition of the first release wrote an Event', async () => {
    const events = await eventsOf(t.api, first.kf_id);
    for (const e of events) {
      expect(Object.keys(e)).toEqual([
        'kf_id',
        'event_type',
        'message',
        'release',
        'task_service',
        'task',
        'created_at',
      ]);
      expect((e as unknown as { release: string }).release).toBe(`${t.url}/releases/${first.kf_id}`);
    }
    const messages = events.map((e) => e.message);
    const releaseMoves = messages.filter((m) => m.startsWith(`release ${first.kf_id},`));
    expect(releaseMoves).toEqual([
      `release ${first.kf_id}, version 0.0.0 changed from waiting to initializing`,
      `release ${first.kf_id}, version 0.0.0 changed from initializing to running`,
      `release ${first.kf_id}, version 0.0.0 changed from running to staged`,
      `release ${first.kf_id}, version 0.0.0 changed from staged to publishing`,
      `release ${first.kf_id}, version 0.1.0 changed from publishing to published`,
    ]);
    for (const task of first.tasks) {
      const moves = messages.filter((m) => m.startsWith(`task ${task.kf_id} `));
      expect(moves).toEqual([
        `task ${task.kf_id} changed from waiting to initialized`,
        `task ${task.kf_id} changed from initialized to running`,
        `task ${task.kf_id} changed from running to staged`,
        `task ${task.kf_id} changed from staged to publishing`,
        `task ${task.kf_id} changed from publishing to published`,
      ]);
      const taskEvents = events.filter((e) => e.message.startsWith(`task ${task.kf_id} `));
      for (const e of taskEvents) {
        expect(e.event_type).toBe('info');
        expect(e.task).toBe(`${t.url}/tasks/${task.kf_id}`);
      }
    }
    // filtering by task gives only that task's events
    const taskId = first.tasks[0]!.kf_id;
    const byTask = await t.api('GET', `/events?task=${taskId}&limit=100`);
    expect(byTask.body.count).toBe(5);
    expect(byTask.body.results.every((e: { task: string }) => e.task === `${t.url}/tasks/${taskId}`)).toBe(
      true,
    );
    // an event by id
    const one = await t.api('GET', `/events/${events[0]!.kf_id}`);
    expect(one.status).toBe(200);
    expect(one.body.message).toBe(events[0]!.message);
    expect((await t.api('GET', '/events/EV_00000000')).status).toBe(404);
  });

  test('GET /tasks?release= and /tasks/{id}: Task shape with absolute URLs, filters by state', async () => {
    const list = await t.api('GET', `/tasks?release=${first.kf_id}`);
    expect(list.status).toBe(200);
    expect(Object.keys(list.body)).toEqual(['count', 'next', 'previous', 'results']);
    expect(list.body.count).toBe(3);
    const serviceUrls = serviceIds.map((id) => `${t.url}/task-services/${id}`);
    for (const task of list.body.results) {
      expect(Object.keys(task)).toEqual(TASK_FIELDS);
      expect(task.release).toBe(`${t.url}/releases/${first.kf_id}`);
      expect(serviceUrls).toContain(task.task_service);
      expect(mock.serviceNames).toContain(task.service_name);
      expect(task.state).toBe('published');
      expect(task.progress).toBe(100);
      expect(task.created_at).toMatch(ISO_Z);
    }
    // the release filter also takes the absolute URL
    const byUrl = await t.api(
      'GET',
      `/tasks?release=${encodeURIComponent(`${t.url}/releases/${first.kf_id}`)}`,
    );
    expect(byUrl.body.count).toBe(3);

    const one = await t.api('GET', `/tasks/${first.tasks[0]!.kf_id}`);
    expect(one.status).toBe(200);
    expect(Object.keys(one.body)).toEqual(TASK_FIELDS);
    expect(one.body.kf_id).toBe(first.tasks[0]!.kf_id);

    const published = await t.api('GET', '/tasks?state=published&limit=100');
    expect(published.body.results.length).toBeGreaterThanOrEqual(3);
    expect(published.body.results.every((x: { state: string }) => x.state === 'published')).toBe(true);
    const canceled = await t.api('GET', '/tasks?state=canceled&limit=100');
    expect(canceled.body.results.every((x: { state: string }) => x.state === 'canceled')).toBe(true);
    const none = await t.api('GET', `/tasks?release=${first.kf_id}&state=running`);
    expect(none.body).toEqual({ count: 0, next: null, previous: null, results: [] });

    expect((await t.api('GET', '/tasks?state=bogus')).status).toBe(400);
    const missing = await t.api('GET', '/tasks/TA_00000000');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: 'Not found.' });
  });

  test('GET /releases lists newest first, filters by state; unknown id is 404', async () => {
    const list = await t.api('GET', '/releases');
    expect(Object.keys(list.body)).toEqual(['count', 'next', 'previous', 'results']);
    expect(list.body.count).toBeGreaterThanOrEqual(3);
    expect(list.body.results.at(-1).kf_id).toBe(first.kf_id);
    for (const r of list.body.results) expect(Object.keys(r)).toEqual(RELEASE_FIELDS);
    const published = await t.api('GET', '/releases?state=published');
    expect(published.body.count).toBe(2);
    expect(published.body.results.map((r: { version: string }) => r.version)).toEqual(['0.2.0', '0.1.0']);
    const missing = await t.api('GET', '/releases/RE_00000000');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: 'Not found.' });
  });

  test('GET / maps collection names to absolute URLs', async () => {
    const res = await t.api('GET', '/');
    expect(res.status).toBe(200);
    for (const name of ['releases', 'tasks', 'task-services', 'events', 'release-notes', 'studies']) {
      expect(res.body[name]).toBe(`${t.url}/${name}`);
    }
  });

  test('GET /status is 200 with {name, message, version, commit}', async () => {
    const res = await t.api('GET', '/status');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).slice(0, 4)).toEqual(['name', 'message', 'version', 'commit']);
    expect(typeof res.body.name).toBe('string');
    expect(typeof res.body.message).toBe('string');
    expect(typeof res.body.version).toBe('string');
    expect(res.body.commit === null || typeof res.body.commit === 'string').toBe(true);
  });

  test('a method a path does not allow is 405 with a JSON body', async () => {
    for (const [method, path] of [
      ['PUT', '/releases'],
      ['DELETE', '/releases'],
      ['PUT', `/releases/${first.kf_id}`],
      ['POST', '/events'],
    ] as const) {
      const res = await t.api(method, path, {});
      expect(res.status).toBe(405);
      expect(typeof res.body.detail).toBe('string');
      expect(res.headers.get('allow')).toBeTruthy();
    }
    // and a path that does not exist is a JSON 404
    const nowhere = await t.api('GET', '/nowhere');
    expect(nowhere.status).toBe(404);
    expect(nowhere.body).toEqual({ detail: 'Not found.' });
  });

  test('the canceled release has an event for the cancel of each of its tasks', async () => {
    const canceled = await t.api('GET', '/releases?state=canceled');
    expect(canceled.body.count).toBe(1);
    const slow = canceled.body.results[0];
    const events = await eventsOf(t.api, slow.kf_id);
    expect(events.map((e) => e.message)).toContain(
      `release ${slow.kf_id}, version ${slow.version} changed from running to canceling`,
    );
    for (const task of slow.tasks) {
      expect(events.map((e) => e.message)).toContain(`task ${task.kf_id} changed from running to canceled`);
    }
  });

  test('the same Idempotency-Key returns the same release instead of a second one', async () => {
    const key = `key-${crypto.randomUUID()}`;
    const one = await t.api(
      'POST',
      '/releases',
      { name: 'Once', studies: [study] },
      { 'Idempotency-Key': key },
    );
    expect(one.status).toBe(201);
    const again = await t.api(
      'POST',
      '/releases',
      { name: 'Once', studies: [study] },
      { 'Idempotency-Key': key },
    );
    expect([200, 201]).toContain(again.status);
    expect(again.body.kf_id).toBe(one.body.kf_id);
    const named = (await t.api('GET', '/releases?limit=100')).body.results.filter(
      (r: { name: string }) => r.name === 'Once',
    );
    expect(named).toHaveLength(1);
    await waitForState(t.api, one.body.kf_id, 'staged');
  });

  test('start waits for the slowest initialize answer', async () => {
    const slow = mock.serviceNames[0]!;
    mock.setBehaviour({ latencyMs: 300 }, slow, 'initialize');
    try {
      const created = await createRelease(t.api, [study]);
      await waitForState(t.api, created.kf_id, 'staged');
      const mine = mock.calls.filter((c) => c.releaseId === created.kf_id);
      const slowInit = mine.find((c) => c.action === 'initialize' && c.service === slow)!;
      const starts = mine.filter((c) => c.action === 'start');
      expect(starts).toHaveLength(3);
      // the slow service answered no earlier than 300 ms after its initialize arrived
      for (const s of starts) expect(s.at).toBeGreaterThanOrEqual(slowInit.at + 300);
    } finally {
      mock.setBehaviour({ latencyMs: 0 }, slow, 'initialize');
    }
  });
});
