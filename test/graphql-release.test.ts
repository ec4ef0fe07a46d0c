import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createStudy } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import {
  ALL_EVENTS,
  ALL_TASKS,
  CREATE_SERVICE,
  GET_RELEASE,
  graphqlClient,
  PUBLISH_RELEASE,
  relayId,
  START_RELEASE,
} from './support/ui-operations';
import { until } from './support/until';

let t: TestSystem;
let mock: MockHandle;
let gql: ReturnType<typeof graphqlClient>;
let study: string;

beforeAll(async () => {
  t = await startTestSystem('graphql_release');
  gql = graphqlClient(t.url);
  mock = await startMock({ services: 2, stageMs: 30, publishMs: 30 });
  study = await createStudy(t.api);
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
});

const data = (res: Awaited<ReturnType<typeof gql>>) => {
  expect(res.status).toBe(200);
  expect(res.body.errors).toBeUndefined();
  return res.body.data;
};

describe('a release driven only through GraphQL mutations', () => {
  test('createTaskService → startRelease → staged (polling GetRelease) → publishRelease → published', async () => {
    const admin = t.adminToken;
    const services: string[] = [];
    for (const name of mock.serviceNames) {
      const created = data(await gql(CREATE_SERVICE, { input: { name, url: mock.serviceUrl(name) } }, admin));
      services.push(created.createTaskService.taskService.kfId);
    }

    const started = data(
      await gql(
        START_RELEASE,
        {
          input: {
            name: 'GraphQL release',
            description: 'started from the UI',
            isMajor: true,
            studies: [relayId('StudyNode', study)],
            tags: ['ui'],
          },
        },
        admin,
      ),
    ).startRelease.release;
    expect(started).toMatchObject({
      __typename: 'ReleaseNode',
      name: 'GraphQL release',
      description: 'started from the UI',
      isMajor: true,
      version: '0.0.0',
    });
    expect(started.studies.edges.map((e: any) => e.node.kfId)).toEqual([study]);
    const id = started.id as string;
    const kfId = started.kfId as string;
    expect(id).toBe(relayId('ReleaseNode', kfId));

    // the same intent as REST: the coordinator created it, with the caller as author and a task per service
    const rest = await t.api('GET', `/releases/${kfId}`);
    expect(rest.body).toMatchObject({ author: 'test-admin', tags: ['ui'], is_major: true });
    expect(
      rest.body.tasks.map((x: { task_service: string }) => x.task_service.split('/').pop()).sort(),
    ).toEqual([...services].sort());

    const poll = (state: string) =>
      until(
        async () => {
          const r = data(await gql(GET_RELEASE, { id }, admin)).release;
          return r.state === state ? r : undefined;
        },
        { timeoutMs: 15_000, message: `release ${kfId} to reach ${state}` },
      );
    await poll('staged');

    const publishing = data(await gql(PUBLISH_RELEASE, { release: id }, admin)).publishRelease.release;
    expect(['publishing', 'published']).toContain(publishing.state);
    const done = await poll('published');
    expect(done.version).toBe('1.0.0');

    // every service was driven through initialize, start and publish for this release
    for (const name of mock.serviceNames) {
      const actions = mock.calls
        .filter((c) => c.releaseId === kfId && c.service === name)
        .map((c) => c.action);
      for (const a of ['initialize', 'start', 'publish'] as const) expect(actions).toContain(a);
    }
    const tasks = data(await gql(ALL_TASKS, { first: 10, release: kfId }, null)).allTasks.edges;
    expect(tasks.map((e: any) => e.node.state)).toEqual(['published', 'published']);
    const events = data(await gql(ALL_EVENTS, { release: id, first: 1 }, null)).allEvents.edges;
    expect(events[0].node.message).toContain('changed from publishing to published');

    // publishing again is refused in the spec's words
    const again = await gql(PUBLISH_RELEASE, { release: id }, admin);
    expect(again.status).toBe(200);
    expect(again.body.errors?.[0]?.message).toBe('The release in state published may not be published.');
    expect(again.body.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  test('startRelease validates as REST does: unknown studies and blank names are errors', async () => {
    const unknown = await gql(
      START_RELEASE,
      { input: { name: 'x', studies: [relayId('StudyNode', 'SD_ZZZZZZZZ')] } },
      t.adminToken,
    );
    expect(unknown.body.errors?.[0]?.message).toBe('studies: Study SD_ZZZZZZZZ does not exist.');
    const blank = await gql(
      START_RELEASE,
      { input: { name: ' ', studies: [relayId('StudyNode', study)] } },
      t.adminToken,
    );
    expect(blank.body.errors?.[0]?.message).toBe('name: This field may not be blank.');
    const none = await gql(START_RELEASE, { input: { name: 'x', studies: [] } }, t.adminToken);
    expect(none.body.errors?.[0]?.message).toBe('studies: A release needs at least one study.');
  });
});
