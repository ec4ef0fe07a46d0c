import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import postgres from 'postgres';
import type { MockHandle } from '../mock-task-service/src/index';
import { newKfId } from '../src/domain/ids';
import { createRelease, createStudy, registerMockServices, studyId, waitForState } from './support/fixtures';
import { type ApiResponse, startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// Idempotency-Key on every creating POST (issue #17): the same key returns the same record, also
// to two requests that arrive at once, and never an id that does not exist.

let t: TestSystem;
let mock: MockHandle;
let direct: postgres.Sql;
let study: string;
const run = crypto.randomUUID().slice(0, 8);

beforeAll(async () => {
  t = await startTestSystem('idempotency');
  ({ mock } = await registerMockServices(t.api, 2));
  study = await createStudy(t.api);
  direct = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
}, 60_000);

afterAll(async () => {
  await direct?.end();
  await mock?.stop();
  await t?.stop();
});

/** the `n` of a `select count(*)::int as n` */
const count = async (rows: Promise<postgres.Row[]>) => Number((await rows)[0]!.n);

/** a POST as a client sends it: a 503 (retry later) is retried with the same key */
async function post(path: string, body: unknown, key: string): Promise<ApiResponse> {
  return until(
    async () => {
      const r = await t.api('POST', path, body, { 'Idempotency-Key': key });
      return r.status === 503 ? undefined : r;
    },
    { timeoutMs: 30_000, message: `POST ${path} with key ${key} to be answered` },
  );
}

describe('POST /releases', () => {
  test('200 concurrent creates over 100 keys: 100 releases, both callers of a key get its id, and every id handed out exists', async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `twins-${run}-${i}`);
    const started = performance.now();
    const answers = await Promise.all(
      keys.flatMap((key) =>
        [0, 1].map(async () => ({
          key,
          res: await post('/releases', { name: `twin ${key}`, studies: [study] }, key),
        })),
      ),
    );
    const statuses: Record<number, number> = {};
    for (const a of answers) statuses[a.res.status] = (statuses[a.res.status] ?? 0) + 1;
    for (const a of answers)
      expect({ key: a.key, status: [201, 202].includes(a.res.status) }).toEqual({ key: a.key, status: true });
    const idOf = new Map<string, Set<string>>();
    for (const a of answers) idOf.set(a.key, (idOf.get(a.key) ?? new Set()).add(a.res.body.kf_id));
    for (const key of keys) expect({ key, ids: idOf.get(key)!.size }).toEqual({ key, ids: 1 });
    const ids = [...idOf.values()].map((s) => [...s][0]!);
    const missing = await until(
      async () => {
        const found = await Promise.all(
          ids.map(async (id) => (await t.api('GET', `/releases/${id}`)).status),
        );
        return found.every((s) => s === 200) ? [] : undefined;
      },
      { timeoutMs: 30_000, message: 'every id handed out to exist' },
    );
    expect(missing).toEqual([]);
    const n = await count(direct`
      select count(*)::int as n from releases where name like ${`twin twins-${run}-%`}`);
    console.log(
      `twins: 200 creates over 100 keys in ${Math.round(performance.now() - started)} ms, statuses ${JSON.stringify(statuses)}, ${n} releases`,
    );
    expect(n).toBe(100);
    for (const id of ids.slice(0, 3)) await waitForState(t.api, id, 'staged', 30_000);
  }, 120_000);

  test('a retry after the first create was answered returns the same release', async () => {
    const key = `retry-${run}`;
    const first = await post('/releases', { name: 'retried', studies: [study] }, key);
    const again = await post('/releases', { name: 'retried', studies: [study] }, key);
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.body.kf_id).toBe(first.body.kf_id);
  });
});

describe('POST /task-services, /studies, /release-notes', () => {
  let release: string;
  beforeAll(async () => {
    release = (await createRelease(t.api, [study])).kf_id;
  });

  const routes = () => [
    {
      path: '/task-services',
      table: 'task_services',
      body: (key: string) => ({
        name: `svc ${key}`,
        url: mock.serviceUrl(mock.serviceNames[0]!),
        enabled: false,
      }),
      other: (key: string) => ({
        name: `other ${key}`,
        url: mock.serviceUrl(mock.serviceNames[0]!),
        enabled: false,
      }),
      count: (key: string) =>
        count(direct`select count(*)::int as n from task_services where name = ${`svc ${key}`}`),
    },
    {
      path: '/studies',
      table: 'studies',
      body: (key: string) => ({ kf_id: studyFor(key), name: `study ${key}` }),
      other: (key: string) => ({ kf_id: studyFor(key), name: `renamed ${key}` }),
      count: (key: string) =>
        count(direct`select count(*)::int as n from studies where name = ${`study ${key}`}`),
    },
    {
      path: '/release-notes',
      table: 'release_notes',
      body: (key: string) => ({ description: `note ${key}`, release, study }),
      other: (key: string) => ({ description: `another note ${key}`, release, study }),
      count: (key: string) =>
        count(direct`select count(*)::int as n from release_notes where description = ${`note ${key}`}`),
    },
  ];
  const studyIds = new Map<string, string>();
  const studyFor = (key: string) => {
    // a random id (studyId() repeats itself within a few calls)
    if (!studyIds.has(key)) studyIds.set(key, `SD_${newKfId('RE').slice(3)}`);
    return studyIds.get(key)!;
  };

  test('twins at once make one record and get the same answer; a later retry gets it again', async () => {
    for (const route of routes()) {
      const keys = Array.from({ length: 20 }, (_, i) => `${route.table}-${run}-${i}`);
      const pairs = await Promise.all(
        keys.map((key) =>
          Promise.all([post(route.path, route.body(key), key), post(route.path, route.body(key), key)]),
        ),
      );
      for (const [i, [a, b]] of pairs.entries()) {
        expect({ route: route.path, status: a.status }).toEqual({ route: route.path, status: 201 });
        expect(b.status).toBe(a.status);
        expect(b.body).toEqual(a.body);
        const n = await route.count(keys[i]!);
        expect({ route: route.path, key: keys[i], records: n }).toEqual({
          route: route.path,
          key: keys[i],
          records: 1,
        });
      }
      const replay = await post(route.path, route.body(keys[0]!), keys[0]!);
      expect({ status: replay.status, body: replay.body }).toEqual({ status: 201, body: pairs[0]![0].body });
    }
  }, 60_000);

  test('the same key with another body is 422 naming the header, and creates nothing', async () => {
    for (const route of routes()) {
      const key = `${route.table}-${run}-other`;
      expect((await post(route.path, route.body(key), key)).status).toBe(201);
      const reused = await post(route.path, route.other(key), key);
      expect({ route: route.path, status: reused.status }).toEqual({ route: route.path, status: 422 });
      expect(reused.body['Idempotency-Key']).toEqual([
        'This key was already used with a different request body.',
      ]);
      const n = await route.count(key);
      expect(n).toBe(1);
    }
  });

  test('an unusable key is 400 naming the header', async () => {
    const res = await t.api('POST', '/studies', { kf_id: studyId() }, { 'Idempotency-Key': 'k'.repeat(201) });
    expect(res.status).toBe(400);
    expect(Object.keys(res.body)).toEqual(['Idempotency-Key']);
  });
});
