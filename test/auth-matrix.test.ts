import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHmac } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { createStudy } from './support/fixtures';
import { type Api, makeApi, startTestSystem, type TestSystem } from './support/system';

/**
 * Every write route × every kind of caller, against a system that verifies tokens with a JWKS
 * served from 127.0.0.1 (RS256 and ES256 keys), with issuer and audience configured.
 */
const ISSUER = 'https://idp.test/';
const AUDIENCE = 'release-coordinator-test';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>> & { kid: string; alg: 'RS256' | 'ES256' };
const keyPair = async (alg: 'RS256' | 'ES256', kid: string): Promise<KeyPair> => ({
  ...(await generateKeyPair(alg, { extractable: true })),
  kid,
  alg,
});

let rsa: KeyPair;
let ec: KeyPair;
let stranger: KeyPair;
let jwksServer: ReturnType<typeof Bun.serve>;
let jwksHits = 0;
let t: TestSystem;
let strict: TestSystem;
let studyOfUser: string;
let otherStudy: string;

interface TokenOptions {
  key?: KeyPair;
  roles?: string[];
  groups?: string[];
  service?: boolean;
  claims?: Record<string, unknown>;
  audience?: string;
  issuer?: string;
  expires?: number | string;
  notBefore?: number | string;
  kid?: string | null;
}

async function token(o: TokenOptions = {}): Promise<string> {
  const key = o.key ?? rsa;
  const jwt = new SignJWT({
    preferred_username: 'someone',
    ...(o.roles ? { 'https://kidsfirstdrc.org/roles': o.roles } : {}),
    ...(o.groups ? { 'https://kidsfirstdrc.org/groups': o.groups } : {}),
    ...(o.service ? { gty: 'client-credentials' } : {}),
    ...o.claims,
  })
    .setProtectedHeader({ alg: key.alg, ...(o.kid === null ? {} : { kid: o.kid ?? key.kid }), typ: 'JWT' })
    .setIssuer(o.issuer ?? ISSUER)
    .setAudience(o.audience ?? AUDIENCE)
    .setSubject('someone')
    .setIssuedAt()
    .setExpirationTime(o.expires ?? '10m');
  if (o.notBefore !== undefined) jwt.setNotBefore(o.notBefore);
  return jwt.sign(key.privateKey);
}

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');
const claimsPart = () =>
  b64url(
    JSON.stringify({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'x',
      exp: Math.floor(Date.now() / 1000) + 600,
      'https://kidsfirstdrc.org/roles': ['ADMIN'],
    }),
  );

/** `alg: none`: an unsigned token claiming ADMIN. */
const algNone = () => `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT', kid: rsa.kid }))}.${claimsPart()}.`;

/** HS256 "signed" with the RSA public key (the classic algorithm-confusion attack). */
async function hs256WithPublicKey(): Promise<string> {
  const pem = await exportSPKI(rsa.publicKey);
  const head = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: rsa.kid }))}.${claimsPart()}`;
  return `${head}.${createHmac('sha256', pem).update(head).digest('base64url')}`;
}

type Caller =
  | 'anonymous'
  | 'USER'
  | 'DEV'
  | 'ADMIN'
  | 'ADMIN (ES256)'
  | 'service'
  | 'expired'
  | 'future nbf'
  | 'bad signature'
  | 'wrong audience'
  | 'wrong issuer'
  | 'alg none'
  | 'HS256 with the public key'
  | 'missing kid'
  | 'unknown kid';

const REFUSED: Caller[] = [
  'anonymous',
  'expired',
  'future nbf',
  'bad signature',
  'wrong audience',
  'wrong issuer',
  'alg none',
  'HS256 with the public key',
  'missing kid',
  'unknown kid',
];

const tokens = new Map<Caller, string | undefined>();

interface WriteRoute {
  method: string;
  path: string;
  body?: () => unknown;
  /** callers that pass the role check (everyone else with a valid token gets 403) */
  allowed: Caller[];
}

const ADMIN: Caller[] = ['ADMIN', 'ADMIN (ES256)'];
const ROUTES: WriteRoute[] = [
  {
    method: 'POST',
    path: '/releases',
    body: () => ({ name: 'auth', studies: [otherStudy] }),
    allowed: ADMIN,
  },
  { method: 'PATCH', path: '/releases/RE_00000000', body: () => ({ name: 'x' }), allowed: ADMIN },
  { method: 'DELETE', path: '/releases/RE_00000000', allowed: ADMIN },
  { method: 'POST', path: '/releases/RE_00000000/publish', allowed: ADMIN },
  {
    method: 'PATCH',
    path: '/tasks/TA_00000000',
    body: () => ({ state: 'running' }),
    allowed: [...ADMIN, 'service'],
  },
  {
    method: 'POST',
    path: '/task-services',
    body: () => ({ name: 'x', url: 'ftp://x' }),
    allowed: [...ADMIN, 'DEV'],
  },
  {
    method: 'PATCH',
    path: '/task-services/TS_00000000',
    body: () => ({ name: 'y' }),
    allowed: [...ADMIN, 'DEV'],
  },
  { method: 'DELETE', path: '/task-services/TS_00000000', allowed: [...ADMIN, 'DEV'] },
  { method: 'POST', path: '/studies', body: () => ({ kf_id: 'not-a-study' }), allowed: [...ADMIN, 'DEV'] },
  { method: 'POST', path: '/studies/sync', allowed: [...ADMIN, 'DEV'] },
  {
    method: 'POST',
    path: '/release-notes',
    body: () => ({ description: 'n', release: 'RE_00000000', study: otherStudy }),
    allowed: ADMIN,
  },
  { method: 'PATCH', path: '/release-notes/RN_00000000', body: () => ({ description: 'z' }), allowed: ADMIN },
  { method: 'DELETE', path: '/release-notes/RN_00000000', allowed: ADMIN },
];

function call(base: string, route: WriteRoute, bearer: string | undefined) {
  const api = makeApi(base, bearer);
  return api(route.method, route.path, route.body?.());
}

beforeAll(async () => {
  [rsa, ec, stranger] = await Promise.all([
    keyPair('RS256', 'rsa-1'),
    keyPair('ES256', 'ec-1'),
    keyPair('RS256', 'rsa-1'), // same kid as the real key: a forged signature
  ]);
  const published: JWK[] = [];
  for (const k of [rsa, ec])
    published.push({ ...(await exportJWK(k.publicKey)), kid: k.kid, alg: k.alg, use: 'sig' });
  jwksServer = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: () => {
      jwksHits++;
      return Response.json({ keys: published });
    },
  });
  const jwksUrl = `http://127.0.0.1:${jwksServer.port}/jwks.json`;
  [t, strict] = await Promise.all([
    startTestSystem('auth_matrix', { AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }),
    startTestSystem('auth_strict', {
      AUTH_JWKS_URL: jwksUrl,
      AUTH_ISSUER: ISSUER,
      AUTH_AUDIENCE: AUDIENCE,
      PUBLIC_READS: 'false',
      AUTH_ROLES_CLAIM: 'realm_access.roles',
      AUTH_GROUPS_CLAIM: 'groups',
    }),
  ]);
  tokens.set('anonymous', undefined);
  tokens.set('USER', await token({ roles: ['USER'] }));
  tokens.set('DEV', await token({ roles: ['DEV'] }));
  tokens.set('ADMIN', await token({ roles: ['ADMIN'] }));
  tokens.set('ADMIN (ES256)', await token({ key: ec, roles: ['ADMIN'] }));
  tokens.set('service', await token({ service: true }));
  tokens.set('expired', await token({ roles: ['ADMIN'], expires: Math.floor(Date.now() / 1000) - 3600 }));
  tokens.set('future nbf', await token({ roles: ['ADMIN'], notBefore: '1h' }));
  tokens.set('bad signature', await token({ key: stranger, roles: ['ADMIN'] }));
  tokens.set('wrong audience', await token({ roles: ['ADMIN'], audience: 'someone-else' }));
  tokens.set('wrong issuer', await token({ roles: ['ADMIN'], issuer: 'https://evil.test/' }));
  tokens.set('alg none', algNone());
  tokens.set('HS256 with the public key', await hs256WithPublicKey());
  tokens.set('missing kid', await token({ roles: ['ADMIN'], kid: null }));
  tokens.set('unknown kid', await token({ roles: ['ADMIN'], kid: 'no-such-key' }));

  const admin = makeApi(t.url, tokens.get('ADMIN'));
  studyOfUser = await createStudy(admin);
  otherStudy = await createStudy(admin);
});

afterAll(async () => {
  await Promise.all([t?.stop(), strict?.stop()]);
  jwksServer?.stop(true);
});

describe('every write route × every caller', () => {
  for (const route of ROUTES) {
    test(`${route.method} ${route.path}`, async () => {
      const outcomes: Record<string, number> = {};
      for (const [caller, bearer] of tokens) {
        const res = await call(t.url, route, bearer);
        outcomes[caller] = res.status;
        if (REFUSED.includes(caller)) {
          expect({ caller, status: res.status }).toEqual({ caller, status: 401 });
          expect(typeof res.body.detail).toBe('string');
        } else if (route.allowed.includes(caller)) {
          expect({ caller, allowed: ![401, 403].includes(res.status) }).toEqual({ caller, allowed: true });
          expect(res.status).not.toBe(500);
        } else {
          expect({ caller, status: res.status }).toEqual({ caller, status: 403 });
          expect(res.body.detail).toMatch(/permission|only start releases of your own studies/);
        }
      }
      // every caller was tried
      expect(Object.keys(outcomes).length).toBe(15);
    });
  }
});

describe('reasons and special rules', () => {
  test('each refused token says why in detail', async () => {
    const reason = async (caller: Caller) =>
      (await call(t.url, ROUTES[1]!, tokens.get(caller))).body.detail as string;
    expect(await reason('anonymous')).toMatch(/credentials were not provided/);
    expect(await reason('expired')).toMatch(/expired/);
    expect(await reason('future nbf')).toMatch(/not valid yet/);
    expect(await reason('bad signature')).toMatch(/signature/);
    expect(await reason('wrong audience')).toMatch(/audience/);
    expect(await reason('wrong issuer')).toMatch(/issuer/);
    expect(await reason('alg none')).toMatch(/algorithm|malformed/);
    expect(await reason('HS256 with the public key')).toMatch(/algorithm/);
    expect(await reason('missing kid')).toMatch(/kid/);
    expect(await reason('unknown kid')).toMatch(/unknown key/);
  });

  test('"Bearer garbage" and other schemes are 401 with a reason, never anonymous', async () => {
    const anon = makeApi(t.url);
    const garbage = await anon('GET', '/releases', undefined, { authorization: 'Bearer garbage' });
    expect(garbage.status).toBe(401);
    expect(garbage.body.detail).toMatch(/malformed/);
    const basic = await anon('GET', '/releases', undefined, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(basic.status).toBe(401);
    expect(basic.body.detail).toContain('Bearer');
  });

  test('a USER whose groups hold every study may start a release; one study outside them is 403', async () => {
    const member = makeApi(t.url, await token({ roles: ['USER'], groups: [studyOfUser] }));
    const ok = await member('POST', '/releases', { name: 'mine', studies: [studyOfUser] });
    expect(ok.status).toBe(201);
    expect(ok.body.author).toBe('someone');
    const mixed = await member('POST', '/releases', {
      name: 'not all mine',
      studies: [studyOfUser, otherStudy],
    });
    expect(mixed.status).toBe(403);
    expect(mixed.body.detail).toContain(otherStudy);
    // groups grant nothing beyond starting releases
    const patch = await member('PATCH', `/releases/${ok.body.kf_id}`, { name: 'renamed' });
    expect(patch.status).toBe(403);
  });

  test('ego-style claims (context.user.roles) are read', async () => {
    const egoAdmin = makeApi(
      t.url,
      await token({
        claims: {
          preferred_username: undefined,
          context: { user: { name: 'ego-admin', roles: ['ADMIN'], groups: [] } },
        },
      }),
    );
    const created = await egoAdmin('POST', '/releases', { name: 'ego', studies: [otherStudy] });
    expect(created.status).toBe(201);
    expect(created.body.author).toBe('ego-admin');
    const egoUser = makeApi(t.url, await token({ claims: { context: { user: { roles: ['USER'] } } } }));
    expect((await egoUser('DELETE', `/releases/${created.body.kf_id}`)).status).toBe(403);
  });

  test('a service token may report on a task that exists, and only there', async () => {
    const admin = makeApi(t.url, tokens.get('ADMIN'));
    const created = await admin('POST', '/releases', { name: 'svc', studies: [otherStudy] });
    expect(created.status).toBe(201);
    const service = makeApi(t.url, tokens.get('service'));
    expect((await service('PATCH', '/tasks/TA_00000000', { state: 'running' })).status).toBe(404);
    expect((await service('PATCH', `/releases/${created.body.kf_id}`, { name: 'x' })).status).toBe(403);
    const bad = await service('PATCH', '/tasks/TA_00000000', { state: 42 });
    expect([400, 404]).toContain(bad.status);
  });

  test('reads are public by default; a valid token is accepted on reads too', async () => {
    expect((await makeApi(t.url)('GET', '/releases')).status).toBe(200);
    expect((await makeApi(t.url, tokens.get('USER'))('GET', '/tasks')).status).toBe(200);
  });

  test('the JWKS is fetched once and cached, not per request', () => {
    expect(jwksHits).toBeGreaterThanOrEqual(1);
    // one fetch per system plus refreshes for the unknown kid (cooldown-limited)
    expect(jwksHits).toBeLessThanOrEqual(6);
  });
});

describe('PUBLIC_READS=false with Keycloak-style claim paths', () => {
  let anon: Api;
  beforeAll(() => {
    anon = makeApi(strict.url);
  });

  test('reads need a token; /, /status, the JWKS, /openapi.json and /docs stay public', async () => {
    for (const path of ['/releases', '/tasks', '/task-services', '/events', '/studies', '/release-notes']) {
      const res = await anon('GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
    }
    for (const path of [
      '/',
      '/status',
      '/.well-known/jwks.json',
      '/openapi.json',
      '/docs',
      '/docs/swagger-ui.css',
    ]) {
      const res = await anon('GET', path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
  });

  test('roles and groups come from the configured claim paths (realm_access.roles, groups)', async () => {
    const admin = makeApi(strict.url, await token({ claims: { realm_access: { roles: ['admin'] } } }));
    expect((await admin('GET', '/releases')).status).toBe(200);
    const study = await createStudy(admin);
    const kidsFirstOnly = makeApi(strict.url, await token({ roles: ['ADMIN'] }));
    // the Kids First claim is not configured here: that caller has no role
    expect((await kidsFirstOnly('POST', '/releases', { name: 'x', studies: [study] })).status).toBe(403);
    const member = makeApi(
      strict.url,
      await token({ claims: { realm_access: { roles: ['USER'] }, groups: [study] } }),
    );
    expect((await member('POST', '/releases', { name: 'x', studies: [study] })).status).toBe(201);
  });
});
