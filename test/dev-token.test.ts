import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { devTokenRoutes, handsOutDevelopmentTokens } from '../src/gateway/http/dev-token';
import { studyId } from './support/fixtures';
import { makeApi, startTestSystem, type TestSystem } from './support/system';

// Development tokens (POST /dev/token, `rc token --dev`, the token in /ui) go to callers on the
// coordinator's own machine only: the peer address the server saw decides, headers can only refuse.

let t: TestSystem;
beforeAll(async () => {
  t = await startTestSystem('dev_token');
});
afterAll(async () => {
  await t?.stop();
});

/** What Bun.serve hands the app as its second argument: the server, which knows the peer's address. */
const peer = (address: string) => ({
  requestIP: () => ({ address, family: address.includes(':') ? 'IPv6' : 'IPv4', port: 50_000 }),
});
const post = (headers: Record<string, string>, env?: object, body?: unknown) =>
  t.system.app!.request(
    '/dev/token',
    {
      method: 'POST',
      headers: { host: '127.0.0.1:3000', 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body ?? {}),
    },
    env,
  );

describe('POST /dev/token', () => {
  test('on this machine: an ADMIN token that writes, or a task-service token that cannot', async () => {
    const res = await fetch(`${t.url}/dev/token`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const admin = (await res.json()) as { token: string; kind: string; roles: string[] };
    expect(admin).toMatchObject({ kind: 'admin', roles: ['ADMIN'] });
    const asAdmin = makeApi(t.url, admin.token);
    expect((await asAdmin('POST', '/studies', { kf_id: studyId(), name: 'by a dev token' })).status).toBe(
      201,
    );

    const service = (await (
      await fetch(`${t.url}/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'service' }),
      })
    ).json()) as { token: string; kind: string };
    expect(service.kind).toBe('service');
    expect((await makeApi(t.url, service.token)('POST', '/studies', { kf_id: studyId() })).status).toBe(403);
  });

  test('the peer address decides: loopback yes (IPv4, IPv6, mapped), any other address no', async () => {
    for (const address of ['127.0.0.1', '::1', '::ffff:127.0.0.1'])
      expect({ address, status: (await post({}, peer(address))).status }).toEqual({ address, status: 200 });
    for (const address of ['192.0.2.7', '10.0.0.1', 'fd00::2', '::ffff:192.0.2.7']) {
      const res = await post({}, peer(address));
      expect({ address, status: res.status }).toEqual({ address, status: 403 });
      expect(((await res.json()) as { detail: string }).detail).toContain("coordinator's own machine");
    }
    // no server behind the request (the peer is unknown): no token
    expect((await post({})).status).toBe(403);
  });

  test('headers only refuse: a relayed request, or one naming another host (DNS rebinding)', async () => {
    const local = peer('127.0.0.1');
    const refusing: Array<Record<string, string>> = [
      { 'x-forwarded-for': '127.0.0.1' },
      { forwarded: 'for=127.0.0.1' },
      { 'x-real-ip': '127.0.0.1' },
      { host: 'attacker.example:3000' },
    ];
    for (const headers of refusing)
      expect({ headers, status: (await post(headers, local)).status }).toEqual({ headers, status: 403 });
    expect((await post({ host: 'localhost:3000' }, local)).status).toBe(200);
    expect((await post({}, local, { kind: 'root' })).status).toBe(400);
  });

  test('not in production, nor with an identity provider or auth disabled: 404 with the reason', async () => {
    const { config, auth } = t.system;
    expect(handsOutDevelopmentTokens({ auth, config })).toBe(true);
    expect(handsOutDevelopmentTokens({ auth, config: { ...config, NODE_ENV: 'production' } })).toBe(false);
    expect(handsOutDevelopmentTokens({ auth: { ...auth, mode: 'jwks' }, config })).toBe(false);
    expect(handsOutDevelopmentTokens({ auth: { ...auth, mode: 'disabled', mint: undefined }, config })).toBe(
      false,
    );
    const res = await devTokenRoutes({ auth, config: { ...config, NODE_ENV: 'production' } }).request(
      '/token',
      { method: 'POST', headers: { host: '127.0.0.1' } },
      peer('127.0.0.1'),
    );
    expect(res.status).toBe(404);
    expect(((await res.json()) as { detail: string }).detail).toContain('no development tokens');
  });
});

describe('the dashboard', () => {
  test('fills in the demo ADMIN token for a caller on this machine only', async () => {
    const page = async (address: string) =>
      (await t.system.app!.request('/ui', { headers: { host: '127.0.0.1:3000' } }, peer(address))).text();
    expect(await page('127.0.0.1')).toContain('data-demo="true"');
    const remote = await page('192.0.2.7');
    expect(remote).not.toContain('data-demo="true"');
    expect(remote).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    expect(await (await fetch(`${t.url}/ui`)).text()).toContain('data-demo="true"');
  });
});
