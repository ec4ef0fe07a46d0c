import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { getIntrospectionQuery } from 'graphql';
import type { MockHandle } from '../mock-task-service/src/index';
import { startFakeDataservice } from './support/dataservice';
import { createRelease, createStudy, registerMockServices, studyId, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import {
  ALL_EVENTS,
  ALL_NOTES,
  ALL_RELEASES,
  ALL_SERVICES,
  ALL_STUDIES,
  ALL_TASKS,
  CANCEL_RELEASE,
  CREATE_RELEASE_NOTE,
  CREATE_SERVICE,
  GET_RELEASE,
  GET_SERVICE,
  GET_STUDY,
  graphqlClient,
  MY_PROFILE,
  PUBLISH_RELEASE,
  REMOVE_RELEASE_NOTE,
  relayId,
  START_RELEASE,
  STATUS,
  SYNC_STUDIES,
  UPDATE_RELEASE,
  UPDATE_RELEASE_NOTE,
  UPDATE_SERVICE,
} from './support/ui-operations';

const UI_ORIGIN = 'http://ui.example.org';
const NO_CREDENTIALS = 'Authentication credentials were not provided.';
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const study = studyId();
const upstream = startFakeDataservice([
  { kf_id: study, name: `study ${study}` },
  { kf_id: 'SD_GQ1NEW01', name: 'Synced by GraphQL' },
]);
let t: TestSystem;
let gql: ReturnType<typeof graphqlClient>;
let admin: string;
let dev: string;
let user: string;
let mock: MockHandle;
let serviceId: string;
/** published, so everyone sees it */
let published: string;
/** staged, so only ADMIN and DEV see it */
let staged: string;
let noteId: string;

beforeAll(async () => {
  t = await startTestSystem('graphql_ui', {
    CORS_ORIGINS: `${UI_ORIGIN}, http://other.example.org`,
    DATASERVICE_URL: upstream.url,
  });
  gql = graphqlClient(t.url);
  admin = t.adminToken;
  dev = await t.mint({ username: 'dev-user', roles: ['DEV'] });
  user = await t.mint({ username: 'plain-user', roles: ['USER'], groups: [study] });
  await createStudy(t.api, study);
  const registered = await registerMockServices(t.api, 1);
  mock = registered.mock;
  serviceId = registered.serviceIds[0]!;
  published = (await createRelease(t.api, [study], { name: 'Published one', author: 'alice' })).kf_id;
  await waitForState(t.api, published, 'staged');
  expect((await t.api('POST', `/releases/${published}/publish`)).status).toBe(200);
  await waitForState(t.api, published, 'published');
  const note = await t.api('POST', '/release-notes', {
    description: 'first note',
    release: published,
    study,
  });
  noteId = note.body.kf_id;
  staged = (await createRelease(t.api, [study], { name: 'Staged one' })).kf_id;
  await waitForState(t.api, staged, 'staged');
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
  upstream.stop();
});

const expectError = (res: Awaited<ReturnType<typeof gql>>, message: string | RegExp) => {
  expect(res.status).toBe(200);
  expect(res.body.errors?.length).toBeGreaterThan(0);
  if (typeof message === 'string') expect(res.body.errors![0]!.message).toBe(message);
  else expect(res.body.errors![0]!.message).toMatch(message);
};
const ok = (res: Awaited<ReturnType<typeof gql>>) => {
  expect(res.status).toBe(200);
  expect(res.body.errors).toBeUndefined();
  return res.body.data;
};

describe('the UI queries, with an ADMIN token and logged out (Bearer null)', () => {
  test('GetRelease: every field, Relay ids and __typename; a staged release is hidden from anonymous', async () => {
    const data = ok(await gql(GET_RELEASE, { id: relayId('ReleaseNode', published) }, admin));
    const r = data.release;
    expect(r).toMatchObject({
      __typename: 'ReleaseNode',
      id: relayId('ReleaseNode', published),
      kfId: published,
      author: 'alice',
      name: 'Published one',
      state: 'published',
      version: '0.1.0',
      isMajor: false,
      description: '',
    });
    expect(r.createdAt).toMatch(ISO_Z);
    expect(r.studies.__typename).toBe('StudyNodeConnection');
    expect(r.studies.edges).toEqual([
      {
        __typename: 'StudyNodeEdge',
        node: {
          __typename: 'StudyNode',
          id: relayId('StudyNode', study),
          kfId: study,
          name: `study ${study}`,
          createdAt: expect.stringMatching(ISO_Z),
        },
      },
    ]);
    expect(r.notes.edges.map((e: any) => e.node)).toEqual([
      { __typename: 'ReleaseNoteNode', id: relayId('ReleaseNoteNode', noteId), description: 'first note' },
    ]);

    expect(ok(await gql(GET_RELEASE, { id: relayId('ReleaseNode', published) })).release.kfId).toBe(
      published,
    );
    expect(ok(await gql(GET_RELEASE, { id: relayId('ReleaseNode', staged) })).release).toBeNull();
    expect(ok(await gql(GET_RELEASE, { id: relayId('ReleaseNode', staged) }, admin)).release.state).toBe(
      'staged',
    );
  });

  test('AllReleases: ADMIN sees every release newest first, anonymous published ones only; state filters', async () => {
    const all = ok(await gql(ALL_RELEASES, { first: 10 }, admin)).allReleases.edges.map((e: any) => e.node);
    expect(all.map((r: any) => r.kfId)).toEqual([staged, published]);
    expect(all[1].notes.edges[0].node.study).toEqual({
      __typename: 'StudyNode',
      id: relayId('StudyNode', study),
    });
    expect(all[0].studies.edges[0].node.kfId).toBe(study);

    const anon = ok(await gql(ALL_RELEASES, { first: 10 })).allReleases.edges.map((e: any) => e.node.kfId);
    expect(anon).toEqual([published]);
    const onlyStaged = ok(await gql(ALL_RELEASES, { first: 10, state: 'staged' }, admin));
    expect(onlyStaged.allReleases.edges.map((e: any) => e.node.kfId)).toEqual([staged]);
    expect(ok(await gql(ALL_RELEASES, { first: 10, state: 'staged' })).allReleases.edges).toEqual([]);
  });

  test("AllStudies: each study's newest published release", async () => {
    for (const token of [admin, null]) {
      const studies = ok(await gql(ALL_STUDIES, { first: 10 }, token)).allStudies.edges.map(
        (e: any) => e.node,
      );
      const mine = studies.find((s: any) => s.kfId === study);
      expect(mine).toMatchObject({ __typename: 'StudyNode', visible: true, deleted: false });
      expect(mine.releases.edges.map((e: any) => e.node)).toEqual([
        {
          __typename: 'ReleaseNode',
          id: relayId('ReleaseNode', published),
          kfId: published,
          version: '0.1.0',
        },
      ]);
    }
  });

  test('GetStudy: its releases, filtered for anonymous', async () => {
    const id = relayId('StudyNode', study);
    const asAdmin = ok(await gql(GET_STUDY, { id }, admin)).study;
    expect(asAdmin.kfId).toBe(study);
    expect(asAdmin.releases.edges.map((e: any) => e.node.kfId)).toEqual([staged, published]);
    const anon = ok(await gql(GET_STUDY, { id })).study;
    expect(anon.releases.edges.map((e: any) => e.node.kfId)).toEqual([published]);
  });

  test('AllNotes by Relay release id', async () => {
    for (const token of [admin, null]) {
      const notes = ok(await gql(ALL_NOTES, { release: relayId('ReleaseNode', published) }, token));
      expect(notes.allReleaseNotes.edges.map((e: any) => e.node)).toEqual([
        {
          __typename: 'ReleaseNoteNode',
          id: relayId('ReleaseNoteNode', noteId),
          kfId: noteId,
          description: 'first note',
          createdAt: expect.stringMatching(ISO_Z),
          study: { __typename: 'StudyNode', id: relayId('StudyNode', study) },
        },
      ]);
    }
    expect(
      ok(await gql(ALL_NOTES, { release: relayId('ReleaseNode', staged) }, admin)).allReleaseNotes.edges,
    ).toEqual([]);
  });

  test('AllEvents by release and by task service, newest first, first N', async () => {
    const byRelease = ok(
      await gql(ALL_EVENTS, { release: relayId('ReleaseNode', published), first: 3 }, admin),
    );
    const events = byRelease.allEvents.edges.map((e: any) => e.node);
    expect(events).toHaveLength(3);
    expect(events[0].message).toContain('changed from publishing to published');
    for (const e of events)
      expect(e.release).toEqual({
        __typename: 'ReleaseNode',
        id: relayId('ReleaseNode', published),
        kfId: published,
        name: 'Published one',
      });
    const withTask = events.find((e: any) => e.task);
    if (withTask) expect(withTask.task.__typename).toBe('TaskNode');

    const anon = ok(await gql(ALL_EVENTS, { release: relayId('ReleaseNode', published), first: 3 }));
    expect(anon.allEvents.edges).toHaveLength(3);
    expect(
      ok(await gql(ALL_EVENTS, { release: relayId('ReleaseNode', staged), first: 3 })).allEvents.edges,
    ).toEqual([]);

    const byService = ok(
      await gql(ALL_EVENTS, { taskService: relayId('TaskServiceNode', serviceId), first: 50 }, admin),
    );
    expect(byService.allEvents.edges.length).toBeGreaterThan(0);
    for (const e of byService.allEvents.edges) expect(e.node.taskService.kfId).toBe(serviceId);
  });

  test('AllServices and GetService: ADMIN and DEV only', async () => {
    for (const token of [admin, dev]) {
      const services = ok(await gql(ALL_SERVICES, {}, token)).allTaskServices.edges.map((e: any) => e.node);
      expect(services.map((s: any) => s.kfId)).toContain(serviceId);
      expect(services[0]).toMatchObject({ __typename: 'TaskServiceNode', enabled: true, healthStatus: 'ok' });
    }
    const anon = await gql(ALL_SERVICES);
    expectError(anon, NO_CREDENTIALS);
    expect(anon.body.data).toMatchObject({ allTaskServices: null });
    expectError(
      await gql(ALL_SERVICES, {}, user),
      'You do not have permission to perform this action (needs ADMIN or DEV).',
    );

    const one = ok(await gql(GET_SERVICE, { id: relayId('TaskServiceNode', serviceId) }, admin)).taskService;
    expect(one).toMatchObject({ kfId: serviceId, author: 'test', enabled: true, healthStatus: 'ok' });
    expect(one.url).toStartWith('http://127.0.0.1:');
    expectError(await gql(GET_SERVICE, { id: relayId('TaskServiceNode', serviceId) }), NO_CREDENTIALS);
  });

  test('AllTasks by plain release kf_id, with the service name', async () => {
    const tasks = ok(await gql(ALL_TASKS, { first: 10, release: published }, admin)).allTasks.edges.map(
      (e: any) => e.node,
    );
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ __typename: 'TaskNode', state: 'published' });
    expect(tasks[0].taskService).toEqual({
      __typename: 'TaskServiceNode',
      id: relayId('TaskServiceNode', serviceId),
      name: mock.serviceNames[0],
    });
    expect(ok(await gql(ALL_TASKS, { first: 10, release: published })).allTasks.edges).toHaveLength(1);
    expect(ok(await gql(ALL_TASKS, { first: 10, release: staged })).allTasks.edges).toEqual([]);
    expect(ok(await gql(ALL_TASKS, { first: 10, release: staged }, admin)).allTasks.edges[0].node.state).toBe(
      'staged',
    );
  });

  test('profile (myProfile): the caller from the token; anonymous is an error', async () => {
    const me = ok(await gql(MY_PROFILE, {}, user)).myProfile;
    expect(me).toMatchObject({
      __typename: 'UserNode',
      id: relayId('UserNode', 'plain-user'),
      username: 'plain-user',
      roles: ['USER'],
      groups: [study],
      slackNotify: false,
    });
    expectError(await gql(MY_PROFILE), NO_CREDENTIALS);
  });

  test('Status', async () => {
    for (const token of [admin, null]) {
      expect(ok(await gql(STATUS, {}, token)).status).toEqual({
        __typename: 'StatusType',
        name: 'Release Coordinator',
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        commit: expect.any(String),
      });
    }
  });
});

describe('auth problems are GraphQL errors in a 200', () => {
  test('an invalid or expired token is an error naming why, never anonymous; Bearer null is anonymous', async () => {
    const bad = await gql(ALL_RELEASES, { first: 1 }, 'not-a-jwt');
    expectError(bad, /malformed|could not be verified|Invalid/i);
    expect(bad.body.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    const expired = await t.mint({ username: 'late', roles: ['ADMIN'], ttl: '-1m' }).catch(() => undefined);
    if (expired) expectError(await gql(ALL_RELEASES, { first: 1 }, expired), /expired/i);
    expect(ok(await gql(ALL_RELEASES, { first: 1 }, null)).allReleases.edges).toHaveLength(1);
  });

  test('every mutation without a token is refused, with no change', async () => {
    const rid = relayId('ReleaseNode', staged);
    const calls: Array<[string, Record<string, unknown>]> = [
      [START_RELEASE, { input: { name: 'x', studies: [relayId('StudyNode', study)] } }],
      [UPDATE_RELEASE, { release: rid, input: { name: 'renamed' } }],
      [CANCEL_RELEASE, { release: rid }],
      [PUBLISH_RELEASE, { release: rid }],
      [CREATE_SERVICE, { input: { name: 'x', url: 'http://127.0.0.1:1' } }],
      [
        UPDATE_SERVICE,
        {
          taskService: relayId('TaskServiceNode', serviceId),
          input: { name: 'x', url: 'http://127.0.0.1:1' },
        },
      ],
      [SYNC_STUDIES, {}],
      [
        CREATE_RELEASE_NOTE,
        { input: { description: 'x', study: relayId('StudyNode', study), release: rid } },
      ],
      [UPDATE_RELEASE_NOTE, { releaseNote: relayId('ReleaseNoteNode', noteId), input: { description: 'x' } }],
      [REMOVE_RELEASE_NOTE, { releaseNote: relayId('ReleaseNoteNode', noteId) }],
    ];
    for (const [query, variables] of calls) {
      const res = await gql(query, variables);
      expectError(res, NO_CREDENTIALS);
      expect(res.body.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
    }
    const after = await t.api('GET', `/releases/${staged}`);
    expect(after.body).toMatchObject({ state: 'staged', name: 'Staged one' });
  });

  test('a USER may not write through GraphQL; a DEV may not publish', async () => {
    const res = await gql(
      START_RELEASE,
      { input: { name: 'x', studies: [relayId('StudyNode', study)] } },
      user,
    );
    expectError(res, 'You do not have permission to perform this action (needs ADMIN or DEV).');
    expectError(
      await gql(PUBLISH_RELEASE, { release: relayId('ReleaseNode', staged) }, dev),
      'You do not have permission to perform this action (needs ADMIN).',
    );
  });
});

describe('mutations with an ADMIN token', () => {
  test('UpdateRelease changes name and description', async () => {
    const data = ok(
      await gql(
        UPDATE_RELEASE,
        { release: relayId('ReleaseNode', staged), input: { name: 'Renamed', description: 'new text' } },
        admin,
      ),
    );
    expect(data.updateRelease.release).toMatchObject({
      kfId: staged,
      name: 'Renamed',
      description: 'new text',
      state: 'staged',
    });
    expect((await t.api('GET', `/releases/${staged}`)).body).toMatchObject({
      name: 'Renamed',
      description: 'new text',
    });
    const blank = await gql(
      UPDATE_RELEASE,
      { release: relayId('ReleaseNode', staged), input: { name: '  ' } },
      admin,
    );
    expectError(blank, 'name: This field may not be blank.');
  });

  test('CreateService and UpdateService check the URL as REST does', async () => {
    const url = mock.serviceUrl(mock.serviceNames[0]!);
    const created = ok(
      await gql(CREATE_SERVICE, { input: { name: 'from-graphql', url, enabled: false } }, admin),
    ).createTaskService.taskService;
    expect(created).toMatchObject({
      __typename: 'TaskServiceNode',
      name: 'from-graphql',
      enabled: false,
      healthStatus: 'ok',
      url,
    });
    const rest = await t.api('GET', `/task-services/${created.kfId}`);
    expect(rest.body).toMatchObject({ name: 'from-graphql', author: 'test-admin', enabled: false });

    const refused = await gql(
      CREATE_SERVICE,
      { input: { name: 'meta', url: 'http://169.254.169.254/latest' } },
      admin,
    );
    expectError(refused, /^url: The address 169\.254\.169\.254/);
    expect(refused.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', status: 400 });

    const updated = ok(
      await gql(
        UPDATE_SERVICE,
        {
          taskService: created.id,
          input: { name: 'renamed-service', url, description: 'd', enabled: false },
        },
        admin,
      ),
    ).updateTaskService.taskService;
    expect(updated).toMatchObject({ kfId: created.kfId, name: 'renamed-service', description: 'd' });
    const down = await gql(
      UPDATE_SERVICE,
      { taskService: created.id, input: { name: 'x', url: 'http://127.0.0.1:1/nothing' } },
      admin,
    );
    expectError(down, /^url: GET http:\/\/127\.0\.0\.1:1\/nothing\/status did not answer/);
  });

  test('SyncStudies reports new and deleted studies as connections', async () => {
    const data = ok(await gql(SYNC_STUDIES, {}, admin)).syncStudies;
    expect(data.new.edges.map((e: any) => e.node)).toEqual([
      {
        __typename: 'StudyNode',
        id: relayId('StudyNode', 'SD_GQ1NEW01'),
        kfId: 'SD_GQ1NEW01',
        name: 'Synced by GraphQL',
        createdAt: expect.stringMatching(ISO_Z),
        visible: true,
        deleted: false,
      },
    ]);
    expect(data.deleted.edges).toEqual([]);
  });

  test('CreateReleaseNote (study must be in the release), UpdateReleaseNote, RemoveReleaseNote', async () => {
    const rid = relayId('ReleaseNode', staged);
    const created = ok(
      await gql(
        CREATE_RELEASE_NOTE,
        { input: { description: 'about this study', study: relayId('StudyNode', study), release: rid } },
        admin,
      ),
    ).createReleaseNote.releaseNote;
    expect(created.__typename).toBe('ReleaseNoteNode');
    const kfId = Buffer.from(created.id, 'base64').toString().split(':')[1]!;
    expect((await t.api('GET', `/release-notes/${kfId}`)).body).toMatchObject({
      description: 'about this study',
      author: 'test-admin',
    });

    const outside = await gql(
      CREATE_RELEASE_NOTE,
      { input: { description: 'x', study: relayId('StudyNode', 'SD_GQ1NEW01'), release: rid } },
      admin,
    );
    expectError(outside, `study: Study SD_GQ1NEW01 is not in release ${staged}.`);

    ok(await gql(UPDATE_RELEASE_NOTE, { releaseNote: created.id, input: { description: 'changed' } }, admin));
    expect((await t.api('GET', `/release-notes/${kfId}`)).body.description).toBe('changed');
    expect(ok(await gql(REMOVE_RELEASE_NOTE, { releaseNote: created.id }, admin)).removeReleaseNote).toEqual({
      __typename: 'RemoveReleaseNoteMutation',
      success: true,
    });
    expect((await t.api('GET', `/release-notes/${kfId}`)).status).toBe(404);
    expectError(await gql(REMOVE_RELEASE_NOTE, { releaseNote: created.id }, admin), 'Not found.');
  });

  test('CancelRelease: canceling, then the state rules in the spec wording', async () => {
    const res = await t.api('POST', '/releases', { name: 'to cancel', studies: [study] });
    const id = res.body.kf_id as string;
    await waitForState(t.api, id, 'staged');
    expectError(
      await gql(PUBLISH_RELEASE, { release: relayId('ReleaseNode', published) }, admin),
      'The release in state published may not be published.',
    );
    const canceled = ok(await gql(CANCEL_RELEASE, { release: relayId('ReleaseNode', id) }, admin))
      .cancelRelease.release;
    expect(['canceling', 'canceled']).toContain(canceled.state);
    await waitForState(t.api, id, 'canceled');
    expectError(
      await gql(CANCEL_RELEASE, { release: relayId('ReleaseNode', id) }, admin),
      'The release in state canceled may not be canceled.',
    );
    expectError(
      await gql(PUBLISH_RELEASE, { release: relayId('ReleaseNode', id) }, admin),
      'The release in state canceled may not be published.',
    );
    expectError(
      await gql(CANCEL_RELEASE, { release: relayId('TaskNode', id) }, admin),
      'Must receive a ReleaseNode id.',
    );
  });
});

describe('abuse guards and paging', () => {
  test('a query nested past the depth limit is refused with a GraphQL error', async () => {
    const deep = `{ allStudies { edges { node { releases { edges { node { tasks { edges { node { release { studies { edges { node { kfId } } } } } } } } } } } } } }`;
    const res = await gql(deep, {}, admin);
    expectError(res, /nested too deeply/);
    expect(res.body.data).toBeUndefined();
  });

  test('a query whose nested pages multiply past the cost limit is refused', async () => {
    const costly = `{ allReleases(first: 100) { edges { node { tasks(first: 100) { edges { node { events(first: 100) { edges { node { id message } } } } } } } } } }`;
    const res = await gql(costly, {}, admin);
    expectError(res, /too expensive/);
    expect(res.body.errors![0]!.extensions!.code).toBe('QUERY_TOO_EXPENSIVE');
    // the same shape with small pages passes
    const small = costly.replaceAll('first: 100', 'first: 5');
    ok(await gql(small, {}, admin));
  });

  test('introspection works (the standard query) but a recursive introspection query is cut by depth', async () => {
    const intro = ok(await gql(getIntrospectionQuery(), {}, null));
    expect(intro.__schema.queryType.name).toBe('Query');
    const abusive = `{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } } } } } }`;
    // graphql's own MaxIntrospectionDepthRule or ours, whichever sees it first
    expectError(await gql(abusive), /nested too deeply|Maximum introspection depth exceeded/);
  });

  test('paging: first/after cursors, last, offset, page cap, orderBy', async () => {
    const q = `query($first: Int, $last: Int, $after: String, $offset: Int, $orderBy: String) {
      allReleases(first: $first, last: $last, after: $after, offset: $offset, orderBy: $orderBy) {
        totalCount edges { cursor node { kfId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;
    const all = ok(await gql(q, { first: 1000 }, admin)).allReleases;
    expect(all.edges.length).toBe(all.totalCount);
    const first = ok(await gql(q, { first: 1 }, admin)).allReleases;
    expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const next = ok(await gql(q, { first: 1, after: first.pageInfo.endCursor }, admin)).allReleases;
    expect(next.edges[0].node.kfId).toBe(all.edges[1].node.kfId);
    expect(next.pageInfo.hasPreviousPage).toBe(true);
    const last = ok(await gql(q, { last: 1 }, admin)).allReleases;
    expect(last.edges[0].node.kfId).toBe(all.edges.at(-1).node.kfId);
    expect(ok(await gql(q, { first: 1, offset: 1 }, admin)).allReleases.edges[0].node.kfId).toBe(
      all.edges[1].node.kfId,
    );
    const oldest = ok(await gql(q, { first: 1, orderBy: 'created_at' }, admin)).allReleases;
    expect(oldest.edges[0].node.kfId).toBe(published);
    expectError(await gql(q, { first: 1, orderBy: 'name' }, admin), /orderBy must be/);
    expectError(await gql(q, { first: -1 }, admin), /non-negative/);
  });
});

describe('CORS for the UI (credentials)', () => {
  test('a preflight from a configured origin is answered with that origin and credentials', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: UI_ORIGIN,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');

    const post = await gql(STATUS, {}, null, { origin: UI_ORIGIN });
    expect(post.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(post.headers.get('access-control-allow-credentials')).toBe('true');
  });

  test('another origin is not echoed (never *)', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example.org', 'access-control-request-method': 'POST' },
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const post = await gql(STATUS, {}, null, { origin: 'http://evil.example.org' });
    expect(post.headers.get('access-control-allow-origin')).toBeNull();
  });
});
