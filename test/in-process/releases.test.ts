import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessGateway, inProcessGateway } from '../support/in-process';
import { RELEASE_FIELDS, TASK_FIELDS } from '../support/shapes';

/*
 * /releases in-process (test/support/in-process.ts): the gateway on PGlite, intents applied by the
 * coordinator's own code instead of going over NATS. The full-stack versions of these checks
 * (real Postgres, NATS, workers and mock services) are test/api-releases.test.ts.
 */

let g: InProcessGateway;
const STUDY = 'SD_00000001';
const OTHER_STUDY = 'SD_00000002';

beforeAll(async () => {
  g = await inProcessGateway();
  for (const kf_id of [STUDY, OTHER_STUDY])
    expect((await g.api('POST', '/studies', { kf_id, name: kf_id })).status).toBe(201);
  for (const name of ['search', 'portal'])
    expect(
      (await g.api('POST', '/task-services', { name, url: `https://${name}.example.org/ts` })).status,
    ).toBe(201);
});
afterAll(async () => {
  await g?.close();
});

async function created(extra: Record<string, unknown> = {}) {
  const res = await g.api('POST', '/releases', { name: 'A release', studies: [STUDY], ...extra });
  expect(res.status).toBe(201);
  return res.body as { kf_id: string; state: string; version: string; tasks: Array<{ kf_id: string }> };
}

describe('POST /releases', () => {
  test('a release whose snapshot is too large to travel back: answered from Postgres, its tasks known for their callbacks', async () => {
    g.intents.replyLimitBytes = 200;
    try {
      const res = await g.api('POST', '/releases', { name: 'Large', studies: [STUDY] });
      expect(res.status).toBe(201);
      expect(res.body.tasks).toHaveLength(2);
      for (const t of res.body.tasks as Array<{ kf_id: string }>)
        expect(g.knownTasks.get(t.kf_id)?.releaseId).toBe(res.body.kf_id);
    } finally {
      g.intents.replyLimitBytes = 1024 * 1024;
    }
  });

  test('201: the release in waiting with a task per enabled service, fields in the documented order', async () => {
    const res = await g.api('POST', '/releases', {
      name: 'November',
      description: 'the data of November',
      studies: [STUDY, STUDY],
      tags: ['monthly'],
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(RELEASE_FIELDS);
    expect(res.body).toMatchObject({
      name: 'November',
      description: 'the data of November',
      notes: [],
      state: 'waiting',
      studies: [STUDY],
      tags: ['monthly'],
      author: 'test-admin', // the caller, when no author is given
      is_major: false,
      halt: null,
    });
    expect(res.body.kf_id).toMatch(/^RE_[0-9A-HJKMNP-TV-Z]{8}$/);
    expect(res.body.tasks.map((t: { service_name: string }) => t.service_name).sort()).toEqual([
      'portal',
      'search',
    ]);
    for (const task of res.body.tasks) {
      expect(Object.keys(task)).toEqual(TASK_FIELDS);
      expect(task.release).toBe(`http://rc.test/releases/${res.body.kf_id}`);
    }
    // the coordinator began it at once: the stored intent got its answer
    const intent = g.intents.delivered.at(-1)!;
    expect(intent).toMatchObject({ type: 'release.create', release: { kfId: res.body.kf_id } });
    expect((await g.api('GET', `/releases/${res.body.kf_id}`)).body.state).toBe('initializing');
  });

  test('a missing, blank or ill-typed field is 400 naming the field, and nothing is sent', async () => {
    const before = g.intents.delivered.length;
    const cases: Array<[unknown, string]> = [
      [{ studies: [STUDY] }, 'name'],
      [{ name: '   ', studies: [STUDY] }, 'name'],
      [{ name: 'x'.repeat(257), studies: [STUDY] }, 'name'],
      [{ name: 'x' }, 'studies'],
      [{ name: 'x', studies: [] }, 'studies'],
      [{ name: 'x', studies: 'SD_00000001' }, 'studies'],
      [{ name: 'x', studies: [STUDY], tags: ['t'.repeat(51)] }, 'tags.0'], // nested fields are named by their path
      [{ name: 'x', studies: [STUDY], is_major: 'yes' }, 'is_major'],
      [{ name: 'x', studies: [STUDY], description: 'd'.repeat(5001) }, 'description'],
    ];
    for (const [body, field] of cases) {
      const res = await g.api('POST', '/releases', body);
      expect({ body, status: res.status, fields: Object.keys(res.body) }).toEqual({
        body,
        status: 400,
        fields: [field],
      });
    }
    expect((await g.api('POST', '/releases', { studies: [STUDY] })).body).toEqual({
      name: ['This field is required.'],
    });
    expect(g.intents.delivered.length).toBe(before);
  });

  test('an unknown study is 400 {studies: [...]} naming it, and creates nothing', async () => {
    const count = (await g.api('GET', '/releases')).body.count;
    const res = await g.api('POST', '/releases', { name: 'x', studies: [STUDY, 'SD_ZZZZZZZZ'] });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ studies: ['Study SD_ZZZZZZZZ does not exist.'] });
    expect((await g.api('GET', '/releases')).body.count).toBe(count);
  });

  test('malformed JSON is 400 with a JSON detail; a body that is not JSON is 415', async () => {
    const broken = await g.api('POST', '/releases', '{"name": "x", "studies": [');
    expect(broken.status).toBe(400);
    expect(typeof broken.body.detail).toBe('string');
    const form = await g.api('POST', '/releases', 'name=x', { 'content-type': 'text/plain' });
    expect(form.status).toBe(415);
    expect(form.body.detail).toContain('application/json');
  });

  test('stored but not answered in time (NATS or the coordinator away): 202, and it is applied later', async () => {
    g.intents.mode = 'silent';
    const timeout = g.intents.replyTimeoutMs;
    g.intents.replyTimeoutMs = 0;
    let accepted: { status: number; body: { kf_id: string; state: string; detail: string } };
    try {
      accepted = await g.api('POST', '/releases', { name: 'Later', studies: [STUDY] });
    } finally {
      g.intents.mode = 'apply';
      g.intents.replyTimeoutMs = timeout;
    }
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({ state: 'waiting', detail: expect.any(String) });
    expect((await g.api('GET', `/releases/${accepted.body.kf_id}`)).status).toBe(404);
    // the coordinator's sweep of stored intents
    expect(await g.intents.applyStored()).toBe(1);
    const later = await g.api('GET', `/releases/${accepted.body.kf_id}`);
    expect(later.status).toBe(200);
    expect(later.body).toMatchObject({ name: 'Later', state: 'initializing' });
  });
});

describe('GET /releases', () => {
  test('newest first, paged with absolute links, filtered by state', async () => {
    const a = await created({ name: 'older' });
    const b = await created({ name: 'newer' });
    const page = await g.api('GET', '/releases?limit=2');
    expect(page.status).toBe(200);
    expect(Object.keys(page.body)).toEqual(['count', 'next', 'previous', 'results']);
    expect(page.body.results.map((r: { kf_id: string }) => r.kf_id)).toEqual([b.kf_id, a.kf_id]);
    expect(page.body.next).toStartWith('http://rc.test/releases?');
    expect(page.body.next).toContain('offset=2');
    expect(page.body.previous).toBeNull();

    await g.api('DELETE', `/releases/${a.kf_id}`);
    const canceling = await g.api('GET', '/releases?state=canceling&limit=100');
    expect(canceling.body.results.map((r: { kf_id: string }) => r.kf_id)).toEqual([a.kf_id]);
    expect(canceling.body.count).toBe(1);
  });

  test('an unknown state or a bad limit is 400 naming the parameter', async () => {
    const state = await g.api('GET', '/releases?state=sleeping');
    expect(state.status).toBe(400);
    expect(Object.keys(state.body)).toEqual(['state']);
    const limit = await g.api('GET', '/releases?limit=-1');
    expect(limit.status).toBe(400);
    expect(Object.keys(limit.body)).toEqual(['limit']);
  });

  test('GET /releases/{id}: the release; an unknown id is 404 {detail: "Not found."}', async () => {
    const r = await created();
    const got = await g.api('GET', `/releases/${r.kf_id}`);
    expect(got.status).toBe(200);
    expect(got.body.kf_id).toBe(r.kf_id);
    expect(await g.api('GET', '/releases/RE_00000000')).toMatchObject({
      status: 404,
      body: { detail: 'Not found.' },
    });
  });
});

describe('PATCH, DELETE and publish', () => {
  test('PATCH changes the editable fields; a blank name is 400 naming it; an unknown id is 404', async () => {
    const r = await created();
    const changed = await g.api('PATCH', `/releases/${r.kf_id}`, { name: 'Renamed', tags: ['x'] });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ name: 'Renamed', tags: ['x'], state: 'initializing' });
    const blank = await g.api('PATCH', `/releases/${r.kf_id}`, { name: '' });
    expect(blank.status).toBe(400);
    expect(Object.keys(blank.body)).toEqual(['name']);
    expect((await g.api('PATCH', '/releases/RE_00000000', { name: 'x' })).status).toBe(404);
  });

  test('DELETE cancels (200, canceling); a final release is 409; an unknown one 404', async () => {
    const r = await created();
    const canceled = await g.api('DELETE', `/releases/${r.kf_id}`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.state).toBe('canceling');
    expect(canceled.body.halt).toMatchObject({ reason: 'canceled', canceled_by: 'test-admin' });
    // the workers' answers to the cancels end it
    await g.intents.answerAll(r.kf_id, 'cancel', 'canceled');
    expect((await g.api('GET', `/releases/${r.kf_id}`)).body.state).toBe('canceled');
    const again = await g.api('DELETE', `/releases/${r.kf_id}`);
    expect(again.status).toBe(409);
    expect(again.body.detail).toContain('canceled');
    expect(await g.api('DELETE', '/releases/RE_00000000')).toMatchObject({
      status: 404,
      body: { detail: 'Not found.' },
    });
  });

  test('publish: 409 unless staged, 200 once staged; unknown is 404', async () => {
    const r = await created();
    const early = await g.api('POST', `/releases/${r.kf_id}/publish`);
    expect(early.status).toBe(409);
    expect(early.body.detail).toContain('initializing');
    // every service initialized, then started and staged
    await g.intents.answerAll(r.kf_id, 'initialize', 'initialized');
    await g.intents.answerAll(r.kf_id, 'start', 'staged');
    expect((await g.api('GET', `/releases/${r.kf_id}`)).body.state).toBe('staged');
    const published = await g.api('POST', `/releases/${r.kf_id}/publish`);
    expect(published).toMatchObject({ status: 200, body: { message: 'publishing' } });
    const now = (await g.api('GET', `/releases/${r.kf_id}`)).body;
    expect(now).toMatchObject({ state: 'publishing', published_by: 'test-admin' });
    expect(await g.api('POST', '/releases/RE_00000000/publish')).toMatchObject({
      status: 404,
      body: { detail: 'Not found.' },
    });
  });
});

describe('PATCH /tasks/{id} (a callback)', () => {
  test('stored but not answered by the coordinator: 202 with the task as the gateway read it', async () => {
    const release = await created();
    const task = release.tasks[0]!;
    g.intents.mode = 'silent';
    try {
      const res = await g.api('PATCH', `/tasks/${task.kf_id}`, { progress: 40 });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({
        kf_id: task.kf_id,
        release: `http://rc.test/releases/${release.kf_id}`,
        detail: 'Accepted.',
      });
      expect(g.intents.delivered.at(-1)).toMatchObject({
        type: 'task.report',
        taskId: task.kf_id,
        progress: 40,
      });
    } finally {
      g.intents.mode = 'apply';
    }
  });
});

describe('Idempotency-Key', () => {
  test('the same key and body return the same release; nothing is sent again', async () => {
    const key = { 'idempotency-key': 'release-once' };
    const body = { name: 'Once', studies: [STUDY] };
    const one = await g.api('POST', '/releases', body, key);
    const sent = g.intents.delivered.length;
    const again = await g.api('POST', '/releases', body, key);
    expect(one.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body.kf_id).toBe(one.body.kf_id);
    expect(g.intents.delivered.length).toBe(sent);
    const named = (await g.api('GET', '/releases?limit=100')).body.results.filter(
      (r: { name: string }) => r.name === 'Once',
    );
    expect(named).toHaveLength(1);
  });

  test('the same key with another body is 422 naming the header; an unusable key is 400 naming it', async () => {
    const key = { 'idempotency-key': 'release-body' };
    expect((await g.api('POST', '/releases', { name: 'One', studies: [STUDY] }, key)).status).toBe(201);
    const other = await g.api('POST', '/releases', { name: 'Two', studies: [STUDY] }, key);
    expect(other.status).toBe(422);
    expect(Object.keys(other.body)).toEqual(['Idempotency-Key']);
    const long = await g.api(
      'POST',
      '/releases',
      { name: 'x', studies: [STUDY] },
      { 'idempotency-key': 'k'.repeat(201) },
    );
    expect(long.status).toBe(400);
    expect(Object.keys(long.body)).toEqual(['Idempotency-Key']);
  });

  test('keys are per caller: another caller’s same key makes a release of its own', async () => {
    const key = { 'idempotency-key': 'shared-key' };
    const body = { name: 'Per caller', studies: [STUDY] };
    const mine = await g.api('POST', '/releases', body, key);
    const other = g.as(await g.mint({ username: 'other-admin', roles: ['ADMIN'] }));
    const theirs = await other('POST', '/releases', body, key);
    expect(mine.status).toBe(201);
    expect(theirs.status).toBe(201);
    expect(theirs.body.kf_id).not.toBe(mine.body.kf_id);
  });
});
