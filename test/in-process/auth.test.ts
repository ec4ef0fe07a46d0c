import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessGateway, inProcessGateway } from '../support/in-process';
import type { Api } from '../support/system';
import { localSigningKey } from '../support/tokens';

/*
 * Who may call what (docs/api.md, "Authentication and roles"), in-process: tokens minted with the
 * gateway's own key (local mode), the gateway on PGlite. The full matrix against a running system
 * is test/auth-matrix.test.ts.
 */

let g: InProcessGateway;
let user: Api;
let member: Api;
let dev: Api;
let releaseId: string;
const STUDY = 'SD_00000001';
const OTHER = 'SD_00000002';

beforeAll(async () => {
  g = await inProcessGateway();
  for (const kf_id of [STUDY, OTHER]) await g.api('POST', '/studies', { kf_id, name: kf_id });
  user = g.as(await g.mint({ username: 'uma', roles: ['USER'] }));
  member = g.as(await g.mint({ username: 'mia', roles: ['USER'], groups: [STUDY] }));
  dev = g.as(await g.mint({ username: 'dan', roles: ['DEV'] }));
  releaseId = (await g.api('POST', '/releases', { name: 'r', studies: [STUDY] })).body.kf_id;
});
afterAll(async () => {
  await g?.close();
});

describe('401: no usable credentials', () => {
  test('writes without a token are refused, and nothing is sent to the coordinator', async () => {
    const sent = g.intents.delivered.length;
    for (const [method, path, body] of [
      ['POST', '/releases', { name: 'x', studies: [STUDY] }],
      ['PATCH', `/releases/${releaseId}`, { name: 'x' }],
      ['DELETE', `/releases/${releaseId}`, undefined],
      ['POST', `/releases/${releaseId}/publish`, undefined],
      ['POST', '/task-services', { name: 'x', url: 'https://x.example.org' }],
      ['POST', '/studies', { kf_id: 'SD_00000003', name: 'x' }],
    ] as const) {
      const res = await g.anonymous(method, path, body);
      expect({ method, path, status: res.status, body: res.body }).toEqual({
        method,
        path,
        status: 401,
        body: { detail: 'Authentication credentials were not provided.' },
      });
    }
    expect(g.intents.delivered.length).toBe(sent);
  });

  test('a token that does not verify is 401 with the reason, never anonymous, also on reads', async () => {
    const garbage = await g.as('garbage')('GET', '/releases');
    expect(garbage.status).toBe(401);
    expect(typeof garbage.body.detail).toBe('string');
    const basic = await g.anonymous('GET', '/releases', undefined, { authorization: 'Basic dXNlcjpwdw==' });
    expect(basic).toMatchObject({
      status: 401,
      body: { detail: 'Authorization header must be "Bearer <token>".' },
    });
    // signed by a key the gateway does not know
    const stranger = await localSigningKey();
    const foreign = await g.as(await stranger.mint({ username: 'eve', roles: ['ADMIN'] }))(
      'POST',
      '/releases',
      {
        name: 'x',
        studies: [STUDY],
      },
    );
    expect(foreign.status).toBe(401);
  });

  test('reads are public by default', async () => {
    expect((await g.anonymous('GET', '/releases')).status).toBe(200);
    expect((await g.anonymous('GET', `/releases/${releaseId}`)).status).toBe(200);
  });
});

describe('403: a token without the rights', () => {
  test('changing, canceling and publishing releases need ADMIN', async () => {
    for (const [method, path, body] of [
      ['PATCH', `/releases/${releaseId}`, { name: 'x' }],
      ['DELETE', `/releases/${releaseId}`, undefined],
      ['POST', `/releases/${releaseId}/publish`, undefined],
    ] as const) {
      const res = await user(method, path, body);
      expect({ method, status: res.status }).toEqual({ method, status: 403 });
      expect(res.body.detail).toContain('needs ADMIN');
    }
    expect((await g.api('GET', `/releases/${releaseId}`)).body.name).toBe('r');
  });

  test('task services need ADMIN or DEV', async () => {
    const refused = await user('POST', '/task-services', { name: 'u', url: 'https://u.example.org' });
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toContain('needs ADMIN or DEV');
    expect((await dev('POST', '/task-services', { name: 'd', url: 'https://d.example.org' })).status).toBe(
      201,
    );
  });

  test('a USER may start a release only of studies in their groups', async () => {
    expect((await member('POST', '/releases', { name: 'mine', studies: [STUDY] })).status).toBe(201);
    const outside = await member('POST', '/releases', { name: 'not mine', studies: [STUDY, OTHER] });
    expect(outside.status).toBe(403);
    expect(outside.body.detail).toContain(OTHER);
    expect((await user('POST', '/releases', { name: 'none', studies: [STUDY] })).status).toBe(403);
  });
});

describe('PUBLIC_READS=false', () => {
  let closed: InProcessGateway;
  beforeAll(async () => {
    closed = await inProcessGateway({ PUBLIC_READS: 'false' });
  });
  afterAll(async () => {
    await closed?.close();
  });

  test('reads need a token; the service map, status, keys and API document stay public', async () => {
    expect((await closed.anonymous('GET', '/releases')).status).toBe(401);
    expect((await closed.anonymous('GET', '/task-services')).status).toBe(401);
    expect((await closed.api('GET', '/releases')).status).toBe(200);
    for (const path of ['/', '/status', '/.well-known/jwks.json', '/openapi.json'])
      expect({ path, status: (await closed.anonymous('GET', path)).status }).toEqual({ path, status: 200 });
  });
});
