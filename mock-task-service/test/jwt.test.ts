import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { Server } from 'bun';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { type MockHandle, startMock } from '../src/index.ts';
import { task } from './helpers.ts';

let jwksServer: Server<undefined>;
let mock: MockHandle;
/** A mock that, like one real service, accepts only its identity provider's machine tokens. */
let machineOnly: MockHandle;
let sign: (claims?: { aud?: string; exp?: string; extra?: Record<string, unknown> }) => Promise<string>;
let signWithOtherKey: () => Promise<string>;

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const other = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  jwksServer = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    fetch: () => Response.json({ keys: [jwk] }),
  });
  sign = (claims = {}) =>
    new SignJWT(claims.extra ?? {})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer('release-coordinator')
      .setAudience(claims.aud ?? 'task-services')
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? '5m')
      .sign(privateKey);
  signWithOtherKey = () =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setAudience('task-services')
      .setExpirationTime('5m')
      .sign(other.privateKey);
  mock = await startMock({
    services: 1,
    jwksUrl: `http://127.0.0.1:${jwksServer.port}/.well-known/jwks.json`,
    jwtAudience: 'task-services',
  });
  machineOnly = await startMock({
    jwksUrl: `http://127.0.0.1:${jwksServer.port}/.well-known/jwks.json`,
    jwtAudience: 'urn:idp:dataservice-7', // an audience of its own choosing, not its URL
    jwtRequiredClaims: { gty: 'client-credentials' },
  });
});
afterAll(async () => {
  await mock.stop();
  await machineOnly.stop();
  await jwksServer.stop(true);
});

const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

test('a valid coordinator JWT is accepted on /tasks and /status', async () => {
  const token = await sign();
  const r = await task(mock.serviceUrl('svc-0'), 'initialize', 'TA_J', {}, auth(token));
  expect(r.status).toBe(200);
  const s = await fetch(`${mock.serviceUrl('svc-0')}/status`, auth(token));
  expect(s.status).toBe(200);
  // cached verification: the same token again is still fine
  expect((await task(mock.serviceUrl('svc-0'), 'get_status', 'TA_J', {}, auth(token))).status).toBe(200);
});

test('missing, malformed, wrongly signed, expired or wrong-audience tokens get 401 {message}', async () => {
  const base = mock.serviceUrl('svc-0');
  const missing = await task(base, 'initialize', 'TA_J2');
  expect(missing.status).toBe(401);
  expect(String(missing.body.message)).toContain('missing');
  expect((await task(base, 'initialize', 'TA_J2', {}, auth('not-a-jwt'))).status).toBe(401);
  expect((await task(base, 'initialize', 'TA_J2', {}, auth(await signWithOtherKey()))).status).toBe(401);
  const expired = await sign({ exp: '-1m' });
  expect((await task(base, 'initialize', 'TA_J2', {}, auth(expired))).status).toBe(401);
  const wrongAud = await sign({ aud: 'someone-else' });
  expect((await task(base, 'initialize', 'TA_J2', {}, auth(wrongAud))).status).toBe(401);
  expect((await fetch(`${base}/status`)).status).toBe(401);
  expect(mock.tasks('svc-0').some((t) => t.kf_id === 'TA_J2')).toBe(false);
  expect(mock.callsFor({ service: 'svc-0' }).filter((c) => c.status === 401).length).toBeGreaterThanOrEqual(
    6,
  );
});

test('required claims and an audience of its own: only matching machine tokens pass', async () => {
  const base = machineOnly.url;
  const machineToken = await sign({ aud: 'urn:idp:dataservice-7', extra: { gty: 'client-credentials' } });
  expect((await task(base, 'initialize', 'TA_M', {}, auth(machineToken))).status).toBe(200);
  expect((await fetch(`${base}/status`, auth(machineToken))).status).toBe(200);

  const noGty = await task(
    base,
    'initialize',
    'TA_M2',
    {},
    auth(await sign({ aud: 'urn:idp:dataservice-7' })),
  );
  expect(noGty.status).toBe(401);
  expect(noGty.body.message).toBe('token refused: claim "gty" is missing (expected "client-credentials")');

  const userToken = await sign({ aud: 'urn:idp:dataservice-7', extra: { gty: 'password' } });
  const wrongGty = await task(base, 'initialize', 'TA_M2', {}, auth(userToken));
  expect(wrongGty.status).toBe(401);
  expect(wrongGty.body.message).toBe(
    'token refused: claim "gty" is "password" (expected "client-credentials")',
  );

  const urlAudience = await sign({ aud: machineOnly.url, extra: { gty: 'client-credentials' } });
  const wrongAud = await task(base, 'initialize', 'TA_M2', {}, auth(urlAudience));
  expect(wrongAud.status).toBe(401);
  expect(String(wrongAud.body.message)).toContain('"aud"');
  expect(String(wrongAud.body.message)).toContain('urn:idp:dataservice-7');
  expect(machineOnly.tasks().map((t) => t.kf_id)).toEqual(['TA_M']);
});

test('jwtRequiredClaims without jwksUrl is refused at start', async () => {
  await expect(startMock({ jwtRequiredClaims: { gty: 'client-credentials' } })).rejects.toThrow('jwksUrl');
});
