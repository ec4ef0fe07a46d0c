import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessGateway, inProcessGateway } from '../support/in-process';
import { TASK_SERVICE_FIELDS } from '../support/shapes';

/*
 * Registering task services in-process: the address policy and the live GET {url}/status check go
 * through a stub resolver and a stub fetch (test/support/in-process.ts), so nothing leaves the
 * process. test/api-task-services.test.ts does the same against a running system and real mock
 * services.
 */

let g: InProcessGateway;

beforeAll(async () => {
  g = await inProcessGateway();
});
afterAll(async () => {
  await g?.close();
});

describe('POST /task-services', () => {
  test('201 after GET {url}/status answered 200 with JSON; the TaskService shape', async () => {
    const res = await g.api('POST', '/task-services', {
      name: 'search',
      url: 'https://search.example.org/ts',
      start_timeout_ms: 60_000,
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(TASK_SERVICE_FIELDS);
    expect(res.body).toMatchObject({
      name: 'search',
      url: 'https://search.example.org/ts',
      enabled: true,
      health_status: 'ok',
      start_timeout_ms: 60_000,
      request_timeout_ms: null,
    });
    expect(res.body.kf_id).toMatch(/^TS_[0-9A-HJKMNP-TV-Z]{8}$/);
    expect(g.network.requests.at(-1)).toBe('https://search.example.org/ts/status');
    // sent to the address the policy checked, not resolved again
    expect(g.network.connectedTo.at(-1)).toBe('93.184.216.34');
  });

  test('a /status that does not answer 200 is 400 {url: [reason]}; nothing is registered', async () => {
    g.network.statusOf.set('https://down.example.org', { status: 503, body: { detail: 'starting' } });
    const res = await g.api('POST', '/task-services', { name: 'down', url: 'https://down.example.org' });
    expect(res.status).toBe(400);
    expect(Object.keys(res.body)).toEqual(['url']);
    expect(res.body.url[0]).toContain('https://down.example.org/status');
    const names = (await g.api('GET', '/task-services?limit=100')).body.results.map(
      (s: { name: string }) => s.name,
    );
    expect(names).not.toContain('down');
  });

  test('URLs the address policy refuses are 400 {url: [...]} before any request', async () => {
    const before = g.network.requests.length;
    for (const [url, words] of [
      ['http://169.254.169.254/latest', 'never allowed'],
      ['http://127.0.0.1:3001', 'ALLOW_PRIVATE_SERVICE_URLS'],
      ['http://[::1]:3001', 'ALLOW_PRIVATE_SERVICE_URLS'],
      ['ftp://files.example.org', 'http and https'],
      ['https://user:pw@search.example.org', 'credentials'],
    ] as const) {
      const res = await g.api('POST', '/task-services', { name: 'refused', url });
      expect({ url, status: res.status, fields: Object.keys(res.body) }).toEqual({
        url,
        status: 400,
        fields: ['url'],
      });
      expect(res.body.url[0]).toContain(words);
    }
    expect(g.network.requests.length).toBe(before);
  });

  test('a missing or ill-typed field is 400 naming it', async () => {
    const cases: Array<[unknown, string]> = [
      [{ url: 'https://a.example.org' }, 'name'],
      [{ name: 'a' }, 'url'],
      [{ name: 'a', url: 'https://a.example.org', enabled: 'yes' }, 'enabled'],
      [{ name: 'a', url: 'https://a.example.org', request_timeout_ms: 5 }, 'request_timeout_ms'],
      [{ name: 'a', url: 'https://a.example.org', publish_timeout_ms: 1.5 }, 'publish_timeout_ms'],
    ];
    for (const [body, field] of cases) {
      const res = await g.api('POST', '/task-services', body);
      expect({ body, status: res.status, fields: Object.keys(res.body) }).toEqual({
        body,
        status: 400,
        fields: [field],
      });
    }
    expect((await g.api('POST', '/task-services', { url: 'https://a.example.org' })).body).toEqual({
      name: ['This field is required.'],
    });
  });

  test('a second enabled service with the same URL (trailing slash or not) or name is 409 naming the first', async () => {
    const first = await g.api('POST', '/task-services', {
      name: 'portal',
      url: 'https://portal.example.org/ts',
    });
    expect(first.status).toBe(201);
    const sameUrl = await g.api('POST', '/task-services', {
      name: 'portal-2',
      url: 'https://portal.example.org/ts/',
    });
    expect(sameUrl.status).toBe(409);
    expect(sameUrl.body.detail).toContain(first.body.kf_id);
    const sameName = await g.api('POST', '/task-services', {
      name: 'portal',
      url: 'https://other.example.org',
    });
    expect(sameName.status).toBe(409);
  });
});

describe('Idempotency-Key on POST /task-services', () => {
  test('a replay returns the first answer without checking the URL again', async () => {
    const body = { name: 'keyed', url: 'https://keyed.example.org' };
    const key = { 'idempotency-key': 'service-once' };
    const one = await g.api('POST', '/task-services', body, key);
    const checks = g.network.requests.length;
    const again = await g.api('POST', '/task-services', body, key);
    expect(one.status).toBe(201);
    expect(again).toMatchObject({ status: 201, body: one.body });
    expect(g.network.requests.length).toBe(checks);
    const keyed = (await g.api('GET', '/task-services?limit=100')).body.results.filter(
      (s: { name: string }) => s.name === 'keyed',
    );
    expect(keyed).toHaveLength(1);
  });

  test('the same key with another body is 422 naming the header', async () => {
    const key = { 'idempotency-key': 'service-body' };
    expect(
      (await g.api('POST', '/task-services', { name: 'k1', url: 'https://k1.example.org' }, key)).status,
    ).toBe(201);
    const other = await g.api('POST', '/task-services', { name: 'k2', url: 'https://k2.example.org' }, key);
    expect(other.status).toBe(422);
    expect(Object.keys(other.body)).toEqual(['Idempotency-Key']);
  });
});

describe('GET, PATCH and DELETE /task-services', () => {
  test('list newest first, filtered by enabled; one by id; unknown id 404', async () => {
    const svc = (await g.api('POST', '/task-services', { name: 'listed', url: 'https://listed.example.org' }))
      .body;
    const list = await g.api('GET', '/task-services?limit=1');
    expect(list.status).toBe(200);
    expect(list.body.results.map((s: { kf_id: string }) => s.kf_id)).toEqual([svc.kf_id]);
    expect(list.body.next).toStartWith('http://rc.test/task-services?');
    expect((await g.api('GET', `/task-services/${svc.kf_id}`)).body.name).toBe('listed');
    expect(await g.api('GET', '/task-services/TS_00000000')).toMatchObject({
      status: 404,
      body: { detail: 'Not found.' },
    });
    const bad = await g.api('GET', '/task-services?enabled=maybe');
    expect(bad.status).toBe(400);
    expect(Object.keys(bad.body)).toEqual(['enabled']);
  });

  test('PATCH enabled=false disables it: listed as disabled, and a new release gets no task for it', async () => {
    const svc = (await g.api('POST', '/task-services', { name: 'paused', url: 'https://paused.example.org' }))
      .body;
    const off = await g.api('PATCH', `/task-services/${svc.kf_id}`, { enabled: false });
    expect(off).toMatchObject({ status: 200, body: { enabled: false } });
    const disabled = (await g.api('GET', '/task-services?enabled=false&limit=100')).body.results;
    expect(disabled.map((s: { kf_id: string }) => s.kf_id)).toContain(svc.kf_id);
    await g.api('POST', '/studies', { kf_id: 'SD_00000009', name: 'study' });
    const release = (await g.api('POST', '/releases', { name: 'r', studies: ['SD_00000009'] })).body;
    expect(release.tasks.map((t: { service_name: string }) => t.service_name)).not.toContain('paused');
  });

  test('a PATCH to a refused URL is 400 naming url; an unknown id is 404', async () => {
    const svc = (await g.api('POST', '/task-services', { name: 'moving', url: 'https://moving.example.org' }))
      .body;
    const moved = await g.api('PATCH', `/task-services/${svc.kf_id}`, { url: 'http://169.254.169.254' });
    expect(moved.status).toBe(400);
    expect(Object.keys(moved.body)).toEqual(['url']);
    expect((await g.api('PATCH', '/task-services/TS_00000000', { enabled: false })).status).toBe(404);
  });

  test('DELETE removes it (204), then it is 404', async () => {
    const svc = (await g.api('POST', '/task-services', { name: 'gone', url: 'https://gone.example.org' }))
      .body;
    expect((await g.api('DELETE', `/task-services/${svc.kf_id}`)).status).toBe(204);
    expect((await g.api('GET', `/task-services/${svc.kf_id}`)).status).toBe(404);
    expect((await g.api('DELETE', `/task-services/${svc.kf_id}`)).status).toBe(404);
  });
});
