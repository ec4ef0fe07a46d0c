import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import postgres from 'postgres';
import type { MockHandle } from '../mock-task-service/src/index';
import { rowCounts } from './support/faults';
import { createRelease, createStudy, registerMockServices, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import {
  CREATE_RELEASE_NOTE,
  CREATE_SERVICE,
  graphqlClient,
  relayId,
  START_RELEASE,
} from './support/ui-operations';
import { until } from './support/until';

// What the database would refuse is refused by the gateway, with a 400 naming the field (REST) or
// a GraphQL error naming it, before anything is stored or sent to the coordinator: so a 202 means
// "will be applied" (issue #17: a NUL in a release name was accepted, then failed in the
// coordinator forever). Numbers Postgres `real` cannot hold are brought into its range instead.

let t: TestSystem;
let mock: MockHandle;
let direct: postgres.Sql;
let gql: ReturnType<typeof graphqlClient>;
let study: string;
let release: { kf_id: string; tasks: Array<{ kf_id: string }> };
let note: string;

const NUL = 'a\u0000b';
const LONE_SURROGATE = 'a\uD800b';

beforeAll(async () => {
  // no polls or health checks: between requests only what a request caused changes rows
  t = await startTestSystem('storable_input', { POLL_INTERVAL_MS: '3600000', HEALTH_INTERVAL_MS: '3600000' });
  gql = graphqlClient(t.url);
  ({ mock } = await registerMockServices(t.api, 1));
  study = await createStudy(t.api);
  release = await createRelease(t.api, [study]);
  await until(
    async () => (await t.api('GET', `/tasks/${release.tasks[0]!.kf_id}`)).body.state === 'running',
    {
      message: 'the task to run',
    },
  );
  const created = await t.api('POST', '/release-notes', { description: 'n', release: release.kf_id, study });
  note = created.body.kf_id;
  direct = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
}, 60_000);

afterAll(async () => {
  await direct?.end();
  await mock?.stop();
  await t?.stop();
});

const serviceBody = () => ({ name: 'svc', url: mock.serviceUrl(mock.serviceNames[0]!), enabled: false });

/** [method, path, body, the field named in the 400] */
const refused = (): Array<[string, string, Record<string, unknown>, string]> => [
  ['POST', '/releases', { name: NUL, studies: [study] }, 'name'],
  ['POST', '/releases', { name: LONE_SURROGATE, studies: [study] }, 'name'],
  ['POST', '/releases', { name: 'x'.repeat(257), studies: [study] }, 'name'],
  ['POST', '/releases', { name: 'r', description: NUL, studies: [study] }, 'description'],
  ['POST', '/releases', { name: 'r', tags: ['ok', NUL], studies: [study] }, 'tags.1'],
  ['POST', '/releases', { name: 'r', author: NUL, studies: [study] }, 'author'],
  ['POST', '/releases', { name: 'r', studies: [`${study}\u0000`] }, 'studies.0'],
  ['PATCH', `/releases/${release.kf_id}`, { name: NUL }, 'name'],
  ['PATCH', `/releases/${release.kf_id}`, { tags: [LONE_SURROGATE] }, 'tags.0'],
  ['POST', '/task-services', { ...serviceBody(), name: NUL }, 'name'],
  ['POST', '/task-services', { ...serviceBody(), url: `${serviceBody().url}\u0000` }, 'url'],
  ['POST', '/task-services', { ...serviceBody(), description: NUL }, 'description'],
  ['POST', '/task-services', { ...serviceBody(), author: LONE_SURROGATE }, 'author'],
  ['POST', '/studies', { kf_id: 'SD_NULNAME0', name: NUL }, 'name'],
  ['POST', '/release-notes', { description: NUL, release: release.kf_id, study }, 'description'],
  ['POST', '/release-notes', { description: 'd', author: NUL, release: release.kf_id, study }, 'author'],
  ['POST', '/release-notes', { description: 'd', release: `${release.kf_id}\u0000`, study }, 'release'],
  ['PATCH', `/release-notes/${note}`, { description: NUL }, 'description'],
  ['PATCH', `/tasks/${release.tasks[0]!.kf_id}`, { state: `staged${'\u0000'}` }, 'state'],
  ['PATCH', `/tasks/${release.tasks[0]!.kf_id}`, { progress: `5${'\u0000'}` }, 'progress'],
  ['PATCH', `/tasks/${release.tasks[0]!.kf_id}`, { progress: 'NaN' }, 'progress'],
];

describe('REST', () => {
  test('NUL, unpaired surrogates and over-long text are 400 naming the field, and change nothing', async () => {
    const before = await rowCounts(direct);
    for (const [method, path, body, field] of refused()) {
      const res = await t.api(method, path, body);
      expect({ method, path, body, status: res.status }).toEqual({ method, path, body, status: 400 });
      expect({ method, path, fields: Object.keys(res.body) }).toEqual({ method, path, fields: [field] });
    }
    expect(await rowCounts(direct)).toEqual(before);
    expect(t.system.coordinator!.stats.failures).toBe(0);
  });

  test('a callback progress beyond Postgres real is brought into range and applied, never left failing', async () => {
    const task = release.tasks[0]!.kf_id;
    for (const [progress, stored] of [
      [1e-320, 0],
      [1e39, 100],
      [-0, 0],
      [37.5, 37.5],
    ] as const) {
      const res = await t.api('PATCH', `/tasks/${task}`, { progress });
      expect({ progress, status: res.status }).toEqual({ progress, status: 200 });
      expect((await t.api('GET', `/tasks/${task}`)).body.progress).toBe(stored);
    }
    expect(t.system.coordinator!.stats.failures).toBe(0);
  });
});

describe('GraphQL', () => {
  test('mutations refuse the same input with errors naming the field', async () => {
    const admin = t.adminToken;
    const cases: Array<[string, Record<string, unknown>, string]> = [
      [START_RELEASE, { input: { name: NUL, studies: [relayId('StudyNode', study)] } }, 'name'],
      [
        START_RELEASE,
        { input: { name: 'r', tags: [LONE_SURROGATE], studies: [relayId('StudyNode', study)] } },
        'tags.0',
      ],
      [CREATE_SERVICE, { input: { name: NUL, url: serviceBody().url } }, 'name'],
      [
        CREATE_RELEASE_NOTE,
        {
          input: {
            description: NUL,
            release: relayId('ReleaseNode', release.kf_id),
            study: relayId('StudyNode', study),
          },
        },
        'description',
      ],
    ];
    const before = await rowCounts(direct);
    for (const [query, variables, field] of cases) {
      const res = await gql(query, variables, admin);
      const error = res.body.errors?.[0];
      expect({
        field,
        code: error?.extensions?.code,
        fields: Object.keys(error?.extensions?.fields ?? {}),
      }).toEqual({
        field,
        code: 'BAD_USER_INPUT',
        fields: [field],
      });
    }
    expect(await rowCounts(direct)).toEqual(before);
  });
});

test('the release the fields were refused for runs on', async () => {
  await t.api('PATCH', `/tasks/${release.tasks[0]!.kf_id}`, { state: 'staged' });
  await waitForState(t.api, release.kf_id, 'staged');
});
