import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import postgres from 'postgres';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createRelease, createStudy, startTestSystemWithPublicUrl, studyId } from './support/fixtures';
import { TASK_SERVICE_FIELDS } from './support/shapes';
import type { TestSystem } from './support/system';

const KF_ID = (prefix: string) => new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{8}$`);
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

let t: TestSystem;
let mock: MockHandle;

beforeAll(async () => {
  t = await startTestSystemWithPublicUrl('api_task_services');
  mock = await startMock({ services: ['alpha', 'beta', 'gamma', 'down', 'off'], stageMs: 30, publishMs: 30 });
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

describe('POST /task-services', () => {
  test('registers a service after checking GET {url}/status: 201 with the TaskService shape', async () => {
    const sentAt = Date.now();
    const res = await t.api('POST', '/task-services', {
      name: 'alpha',
      url: mock.serviceUrl('alpha'),
      description: 'first service',
      author: 'tester',
    });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual(TASK_SERVICE_FIELDS);
    expect(res.body.kf_id).toMatch(KF_ID('TS'));
    expect(res.body).toMatchObject({
      name: 'alpha',
      description: 'first service',
      author: 'tester',
      url: mock.serviceUrl('alpha'),
      enabled: true,
      health_status: 'ok',
      last_ok_status: 0,
    });
    expect(res.body.created_at).toMatch(ISO_Z);
    // the URL was checked live, while the request was being answered
    const answeredAt = Date.now();
    const checks = mock
      .callsFor({ service: 'alpha', action: 'status' })
      .filter((c) => c.at >= sentAt && c.at <= answeredAt);
    expect(checks.length).toBeGreaterThanOrEqual(1);
    expect(checks[0]!.status).toBe(200);
  });

  test('a URL whose /status answers 503 is refused with 400 {url: [reason]}', async () => {
    mock.setBehaviour({ statusMode: 'down' }, 'down', 'status');
    const res = await t.api('POST', '/task-services', { name: 'down', url: mock.serviceUrl('down') });
    expect(res.status).toBe(400);
    expect(Object.keys(res.body)).toEqual(['url']);
    expect(res.body.url).toHaveLength(1);
    expect(res.body.url[0]).toContain('503');
    expect(mock.callsFor({ service: 'down', action: 'status' }).length).toBeGreaterThanOrEqual(1);
    const list = await t.api('GET', '/task-services?limit=100');
    expect(list.body.results.map((s: { name: string }) => s.name)).not.toContain('down');
  });

  test('a /status that answers 200 without JSON, or never answers, is refused; a nested body is accepted', async () => {
    mock.setBehaviour({ statusShape: 'text' }, 'off', 'status');
    const text = await t.api('POST', '/task-services', { name: 'text', url: mock.serviceUrl('off') });
    expect(text.status).toBe(400);
    expect(text.body.url[0]).toContain('JSON');

    // the check has a deadline (REQUEST_TIMEOUT_MS is 2000 in tests): a hung /status is a 400, not a hung request
    mock.setBehaviour({ statusShape: 'flat', hang: true }, 'off', 'status');
    const hung = await t.api('POST', '/task-services', { name: 'hung', url: mock.serviceUrl('off') });
    expect(hung.status).toBe(400);
    expect(hung.body.url[0]).toContain('timeout');

    mock.setBehaviour({ hang: false, statusShape: 'nested' }, 'off', 'status');
    const nested = await t.api('POST', '/task-services', { name: 'nested', url: mock.serviceUrl('off') });
    expect(nested.status).toBe(201);
    // not needed by the tests below: remove it again (DELETE hides it)
    const removed = await t.api('DELETE', `/task-services/${nested.body.kf_id}`);
    expect(removed.status).toBe(204);
    expect((await t.api('GET', `/task-services/${nested.body.kf_id}`)).status).toBe(404);
  });

  test('a non-http scheme is refused with 400 {url: [...]} without any request', async () => {
    for (const url of ['ftp://127.0.0.1/service', 'file:///etc/passwd']) {
      const res = await t.api('POST', '/task-services', { name: 'bad-scheme', url });
      expect(res.status).toBe(400);
      expect(res.body.url).toBeArray();
      expect(res.body.url[0]).toMatch(/http/i);
    }
  });

  test('a refused URL is not read back: the 400 says how it answered, never what', async () => {
    const secret = 'AccessKeyId=AKIAEXAMPLE SecretAccessKey=wJalrXUtnFEMI/K7MDENG';
    const page = Bun.serve({
      port: 0,
      hostname: '127.0.0.1',
      fetch: (req) =>
        new Response(secret, { status: new URL(req.url).pathname.startsWith('/broken') ? 503 : 200 }),
    });
    try {
      for (const [url, says] of [
        [`http://127.0.0.1:${page.port}/latest/meta-data/iam/security-credentials/role`, 'without a JSON'],
        [`http://127.0.0.1:${page.port}/broken`, 'HTTP 503'],
      ] as const) {
        const res = await t.api('POST', '/task-services', { name: 'peek', url });
        expect(res.status).toBe(400);
        expect(res.body.url[0]).toContain(says);
        expect(JSON.stringify(res.body)).not.toContain('SecretAccessKey');
      }
    } finally {
      page.stop(true);
    }
  });

  test('a URL with a query string or fragment is refused without a request (/status is appended to it)', async () => {
    const before = mock.callsFor({ service: 'beta' }).length;
    for (const url of [
      `${mock.serviceUrl('beta')}#`,
      `${mock.serviceUrl('beta')}?x=`,
      `${mock.serviceUrl('beta')}?`,
    ]) {
      const res = await t.api('POST', '/task-services', { name: 'query', url });
      expect({ url, status: res.status, reason: res.body.url?.[0] }).toEqual({
        url,
        status: 400,
        reason: expect.stringContaining('query string or fragment'),
      });
    }
    expect(mock.callsFor({ service: 'beta' }).length).toBe(before);
  });

  test('one enabled service per URL, however the URL is written: a unique index holds it for every writer', async () => {
    const sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      // written past the API (as by an earlier version): the index refuses the twin all the same
      await sql`insert into task_services (kf_id, name, url) values ('TS_URLKEY1', 'urlkey-1', 'http://svc.test/x')`;
      for (const twin of ['HTTP://SVC.test/x', 'http://svc.test:80/x/', 'http://svc.test/x//']) {
        const refused =
          await sql`insert into task_services (kf_id, name, url) values ('TS_URLKEY2', 'urlkey-2', ${twin})`.then(
            () => 'inserted',
            (err: { code?: string; constraint_name?: string }) => `${err.code} ${err.constraint_name}`,
          );
        expect({ twin, refused }).toEqual({ twin, refused: '23505 task_services_url_key' });
      }
      // another port, path or case of the path is another service; a disabled twin may exist
      await sql`insert into task_services (kf_id, name, url) values ('TS_URLKEY3', 'urlkey-3', 'http://svc.test:8080/x'), ('TS_URLKEY4', 'urlkey-4', 'http://svc.test/X')`;
      await sql`insert into task_services (kf_id, name, url, enabled) values ('TS_URLKEY5', 'urlkey-5', 'http://svc.test/x', false)`;
      // the API names the twin before it checks anything live
      const res = await t.api('POST', '/task-services', { name: 'urlkey-6', url: 'Http://Svc.Test:80/x/' });
      expect(res.status).toBe(409);
      expect(res.body.detail).toContain('TS_URLKEY1');
      expect(res.body.detail).toContain('URL');
      const enabling = await t.api('PATCH', '/task-services/TS_URLKEY5', { enabled: true });
      expect(enabling.status).toBe(409);
    } finally {
      await sql`delete from task_services where kf_id like 'TS_URLKEY%'`;
      await sql.end();
    }
  });

  test('a missing name is 400 {name: ["This field is required."]}', async () => {
    const res = await t.api('POST', '/task-services', { url: mock.serviceUrl('beta') });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ name: ['This field is required.'] });
  });
});

describe('GET /task-services', () => {
  let betaId: string;
  let gammaId: string;

  beforeAll(async () => {
    for (const name of ['beta', 'gamma']) {
      const res = await t.api('POST', '/task-services', { name, url: mock.serviceUrl(name) });
      expect(res.status).toBe(201);
      if (name === 'beta') betaId = res.body.kf_id;
      else gammaId = res.body.kf_id;
    }
  });

  test('the list is paged as {count, next, previous, results}, newest first', async () => {
    const all = await t.api('GET', '/task-services');
    expect(all.status).toBe(200);
    expect(Object.keys(all.body)).toEqual(['count', 'next', 'previous', 'results']);
    expect(all.body.count).toBe(3);
    expect(all.body.next).toBeNull();
    expect(all.body.previous).toBeNull();
    expect(all.body.results[0].name).toBe('gamma');
    for (const s of all.body.results) expect(Object.keys(s)).toEqual(TASK_SERVICE_FIELDS);

    const first = await t.api('GET', '/task-services?limit=1');
    expect(first.body.count).toBe(3);
    expect(first.body.results).toHaveLength(1);
    expect(first.body.previous).toBeNull();
    const next = new URL(first.body.next);
    expect(next.origin).toBe(t.url);
    expect(next.pathname).toBe('/task-services');
    expect(next.searchParams.get('limit')).toBe('1');
    expect(next.searchParams.get('offset')).toBe('1');

    const second = await t.api('GET', `${next.pathname}${next.search}`);
    expect(second.body.results).toHaveLength(1);
    expect(second.body.results[0].kf_id).not.toBe(first.body.results[0].kf_id);
    expect(second.body.previous).not.toBeNull();
  });

  test('a limit above the cap is capped (default 10, at most 100), not refused', async () => {
    // spec: "Lists are paged with limit and offset (default limit 10, cap it, e.g. 100)"
    const res = await t.api('GET', '/task-services?limit=1000');
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(3);
    expect(res.body.results).toHaveLength(3);
  });

  test('GET by id returns the service; an unknown id is 404 {detail: "Not found."}', async () => {
    const one = await t.api('GET', `/task-services/${betaId}`);
    expect(one.status).toBe(200);
    expect(Object.keys(one.body)).toEqual(TASK_SERVICE_FIELDS);
    expect(one.body).toMatchObject({ kf_id: betaId, name: 'beta', url: mock.serviceUrl('beta') });

    const missing = await t.api('GET', '/task-services/TS_00000000');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: 'Not found.' });
  });

  test('PATCH enabled=false disables it; a disabled service gets no task in a new release', async () => {
    const patched = await t.api('PATCH', `/task-services/${gammaId}`, { enabled: false });
    expect(patched.status).toBe(200);
    expect(Object.keys(patched.body)).toEqual(TASK_SERVICE_FIELDS);
    expect(patched.body).toMatchObject({ kf_id: gammaId, enabled: false });

    const enabled = await t.api('GET', '/task-services?enabled=true&limit=100');
    expect(enabled.body.results.map((s: { kf_id: string }) => s.kf_id)).not.toContain(gammaId);
    const disabled = await t.api('GET', '/task-services?enabled=false');
    expect(disabled.body.results.map((s: { kf_id: string }) => s.kf_id)).toEqual([gammaId]);

    const study = await createStudy(t.api);
    const release = await createRelease(t.api, [study]);
    const services = (release.tasks as unknown as Array<{ task_service: string }>).map((x) => x.task_service);
    expect(services).toHaveLength(2);
    expect(services).not.toContain(`${t.url}/task-services/${gammaId}`);
    expect(services).toContain(`${t.url}/task-services/${betaId}`);
    // and the disabled service is never called for it
    const tasks = await t.api('GET', `/tasks?release=${release.kf_id}&task_service=${gammaId}`);
    expect(tasks.body.count).toBe(0);
    expect(mock.callsFor({ service: 'gamma' }).filter((c) => c.action !== 'status')).toHaveLength(0);
  });
});

describe('POST /studies', () => {
  test('registers a study: 201 with the Study shape', async () => {
    const id = studyId();
    const res = await t.api('POST', '/studies', { kf_id: id, name: 'A study' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body)).toEqual([
      'kf_id',
      'name',
      'version',
      'visible',
      'last_pub_version',
      'last_pub_date',
      'deleted',
      'created_at',
    ]);
    expect(res.body).toMatchObject({ kf_id: id, name: 'A study', visible: true, deleted: false });
    const got = await t.api('GET', `/studies/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.kf_id).toBe(id);
  });

  test('a duplicate study id is 400', async () => {
    const id = await createStudy(t.api);
    const res = await t.api('POST', '/studies', { kf_id: id, name: 'again' });
    expect(res.status).toBe(400);
    expect(res.body.kf_id).toBeArray();
  });

  test('a malformed study id is 400 naming kf_id', async () => {
    for (const kf_id of ['SD_123', 'XX_ABCDEFGH', 'sd_abcdefgh', '']) {
      const res = await t.api('POST', '/studies', { kf_id });
      expect(res.status).toBe(400);
      expect(res.body.kf_id).toBeArray();
    }
    const missing = await t.api('POST', '/studies', { name: 'no id' });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ kf_id: ['This field is required.'] });
  });
});
