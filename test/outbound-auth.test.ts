import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createStudy, freePort, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

/**
 * Every call to a task service carries a short-lived JWT signed by the coordinator (kid, audience
 * = the service URL) that the service verifies against GET /.well-known/jwks.json, and a
 * User-Agent naming the coordinator and its version.
 */
let t: TestSystem;
let mock: MockHandle;
let strangerMock: MockHandle;
/** a service that accepts only its identity provider's machine tokens: gty client-credentials, its own audience */
let machineOnly: MockHandle;
let serviceUrl: string;

beforeAll(async () => {
  t = await startTestSystem('outbound_auth', {
    PUBLIC_URL: 'https://coordinator.test',
    OUTBOUND_TOKEN_CLAIMS: '{"gty":"client-credentials"}',
  });
  const port = await freePort();
  serviceUrl = `http://127.0.0.1:${port}`;
  const jwksUrl = `${t.url}/.well-known/jwks.json`;
  mock = await startMock({ port, stageMs: 30, publishMs: 30, jwksUrl, jwtAudience: serviceUrl });
  // a service that expects tokens for another audience: the coordinator's are not valid there
  strangerMock = await startMock({ jwksUrl, jwtAudience: 'https://someone-else.test' });
  machineOnly = await startMock({
    stageMs: 30,
    publishMs: 30,
    jwksUrl,
    jwtAudience: 'urn:variant-store',
    jwtRequiredClaims: { gty: 'client-credentials' },
  });
});
afterAll(async () => {
  await mock?.stop();
  await strangerMock?.stop();
  await machineOnly?.stop();
  await t?.stop();
});

describe('tokens sent to task services', () => {
  test('the JWKS is public and lists the signing key with its kid', async () => {
    const res = await t.anonymous('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('max-age');
    expect(res.body.keys).toHaveLength(1);
    const [key] = res.body.keys;
    expect(key).toMatchObject({ use: 'sig', alg: expect.stringMatching(/^(ES256|RS256)$/) });
    expect(typeof key.kid).toBe('string');
    expect(key.d).toBeUndefined();
  });

  test('a service that verifies the tokens accepts registration and a whole release', async () => {
    const reg = await t.api('POST', '/task-services', { name: 'verifying', url: serviceUrl });
    expect(reg.status).toBe(201);
    const study = await createStudy(t.api);
    const created = await t.api('POST', '/releases', { name: 'signed calls', studies: [study] });
    expect(created.status).toBe(201);
    await waitForState(t.api, created.body.kf_id, 'staged');
    expect((await t.api('POST', `/releases/${created.body.kf_id}/publish`)).status).toBe(200);
    await waitForState(t.api, created.body.kf_id, 'published');

    const calls = mock.calls;
    expect(calls.length).toBeGreaterThanOrEqual(5); // status, initialize, start, polls, publish
    expect(calls.map((c) => c.action)).toEqual(
      expect.arrayContaining(['status', 'initialize', 'start', 'publish']),
    );
    for (const call of calls) {
      expect(call.status).toBe(200); // the mock answers 401 to any token it cannot verify
      expect(call.headers['user-agent']).toStartWith('release-coordinator/');
      expect(call.headers.authorization).toStartWith('Bearer ');
    }
  });

  test('the token is short-lived, names the coordinator and carries the kid of the published key', async () => {
    const raw = mock.calls.at(-1)!.headers.authorization!.slice('Bearer '.length);
    const jwks = createRemoteJWKSet(new URL(`${t.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(raw, jwks, { audience: serviceUrl });
    expect(protectedHeader.kid).toBe(decodeProtectedHeader(raw).kid!);
    expect(payload.iss).toBe('https://coordinator.test');
    expect(payload.sub).toBe('release-coordinator');
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
  });

  test('a service expecting another audience refuses the token, so registration is refused', async () => {
    const res = await t.api('POST', '/task-services', { name: 'stranger', url: strangerMock.url });
    expect(res.status).toBe(400);
    expect(res.body.url[0]).toContain('401');
    expect(strangerMock.calls.length).toBeGreaterThanOrEqual(1);
    expect(strangerMock.calls[0]!.headers['user-agent']).toStartWith('release-coordinator/');
  });

  test('a service that accepts only machine tokens with its own audience: token_audience plus OUTBOUND_TOKEN_CLAIMS satisfy it', async () => {
    const without = await t.api('POST', '/task-services', { name: 'variant-store', url: machineOnly.url });
    expect(without.status).toBe(400);
    expect(without.body.url[0]).toContain('401');
    const reg = await t.api('POST', '/task-services', {
      name: 'variant-store',
      url: machineOnly.url,
      token_audience: 'urn:variant-store',
    });
    expect(reg.status).toBe(201);
    const study = await createStudy(t.api);
    const created = await t.api('POST', '/releases', { name: 'machine tokens', studies: [study] });
    expect(created.status).toBe(201);
    await waitForState(t.api, created.body.kf_id, 'staged');
    const calls = machineOnly.calls.filter((c) => c.releaseId === created.body.kf_id);
    expect(calls.map((c) => c.action)).toEqual(expect.arrayContaining(['initialize', 'start']));
    expect(calls.every((c) => c.status === 200)).toBe(true);
    await t.api('PATCH', `/task-services/${reg.body.kf_id}`, { enabled: false });
  });
});
