import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Lookup } from '../src/infra/task-service/address-policy';
import { createStudy, disableAllServices, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// Extends test/address-policy.test.ts with what it does not cover: a name that resolved to a
// loopback address when the service was registered and resolves to the metadata address later
// (DNS rebinding). The worker checks the address again before its calls, so nothing is sent.
// No packet leaves loopback: the resolver is a stub and the coordinator's fetch maps the name to
// 127.0.0.1 itself (recording every attempt) and refuses anything else.

let t: TestSystem;
let service: ReturnType<typeof Bun.serve>;
const asked: string[] = [];
const fetched: string[] = [];
let serviceHits = 0;

/** IPv6 addresses that carry 169.254.169.254, one of each kind, and a name resolving to each */
const METADATA_INSIDE_IPV6 = [
  '::ffff:a9fe:a9fe', // IPv4-mapped
  '::ffff:0:a9fe:a9fe', // IPv4-translated
  '::a9fe:a9fe', // IPv4-compatible
  '2002:a9fe:a9fe::1', // 6to4
  '64:ff9b::a9fe:a9fe', // NAT64
  '64:ff9b:1::a9fe:a9fe', // local-use NAT64
  '2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7', // Teredo server
  '2001:0:4136:e378:8000:63bf:5601:5601', // Teredo client (stored inverted)
];
const embeddedNames = new Map(METADATA_INSIDE_IPV6.map((address, i) => [`embedded-${i}.test`, address]));

/** `rebind.test` resolves to 127.0.0.1 exactly once (the registration check), then to 169.254.169.254 */
const rebinding: Lookup = async (host) => {
  asked.push(host);
  const embedded = embeddedNames.get(host);
  if (embedded) return [embedded];
  if (host === 'pinned.test') return ['127.0.0.1'];
  if (host !== 'rebind.test') throw new Error(`ENOTFOUND ${host}`);
  return asked.filter((h) => h === host).length === 1 ? ['127.0.0.1'] : ['169.254.169.254'];
};

beforeAll(async () => {
  service = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: (req) => {
      serviceHits++;
      if (new URL(req.url).pathname.endsWith('/status'))
        return Response.json({ name: 'rebind', version: '1' });
      return Response.json({ state: 'pending' });
    },
  });
  const loopbackFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    fetched.push(url.href);
    if (url.hostname === 'rebind.test') url.hostname = '127.0.0.1';
    if (url.hostname !== '127.0.0.1') throw new Error(`test fetch refused to leave loopback: ${url.href}`);
    return fetch(url, init);
  }) as typeof fetch;
  t = await startTestSystem(
    'abuse_ssrf',
    { HEALTH_INTERVAL_MS: '600000' },
    { lookup: rebinding, fetch: loopbackFetch },
  );
});

afterAll(async () => {
  await t?.stop();
  service?.stop(true);
});

describe('SSRF: a name that changes its answer after registration', () => {
  test('the worker re-resolves before calling: the metadata address is refused, nothing is sent', async () => {
    const reg = await t.api('POST', '/task-services', {
      name: 'rebind',
      url: `http://rebind.test:${service.port}/svc`,
    });
    expect(reg.status).toBe(201);
    const hitsAtRegistration = serviceHits;
    const fetchedAtRegistration = fetched.length;
    const study = await createStudy(t.api);
    const created = await t.api('POST', '/releases', { name: 'rebinding', studies: [study] });
    expect(created.status).toBe(201);
    const done = await waitForState(t.api, created.body.kf_id, ['failed', 'canceled', 'staged']);
    expect(done.state).toBe('failed');
    expect(done.tasks[0].state).toBe('rejected');
    // asked again after registration, and nothing at all was sent after that
    expect(asked.filter((h) => h === 'rebind.test').length).toBeGreaterThan(1);
    expect(fetched.slice(fetchedAtRegistration)).toEqual([]);
    expect(serviceHits).toBe(hitsAtRegistration);
    const events = await t.api('GET', `/events?release=${created.body.kf_id}&limit=100`);
    expect(JSON.stringify(events.body.results)).toContain('169.254.169.254');
  }, 30_000);
});

describe('SSRF: IPv6 addresses that carry the metadata address', () => {
  test('each kind is refused at registration, as a literal and through a name, and nothing is fetched', async () => {
    const fetchedBefore = fetched.length;
    const urls = [
      ...METADATA_INSIDE_IPV6.map((address) => `http://[${address}]:${service.port}/`),
      ...[...embeddedNames.keys()].map((name) => `http://${name}:${service.port}/`),
    ];
    for (const url of urls) {
      const res = await t.api('POST', '/task-services', { name: 'embedded', url });
      expect({ url, status: res.status, reason: res.body.url?.[0] }).toEqual({
        url,
        status: 400,
        reason: expect.stringMatching(/169\.254\.169\.254.*never allowed/),
      });
    }
    expect(fetched.slice(fetchedBefore)).toEqual([]);
  });
});

describe('SSRF: calls go to the address that was checked', () => {
  // `pinned.test` resolves to 127.0.0.1 for the policy only: the coordinator's fetch refuses the
  // name (anything but 127.0.0.1 and rebind.test), so a call that resolved it again would fail
  test('registration and the worker connect to the checked address, with the name in Host', async () => {
    await disableAllServices(t.api);
    const hosts: string[] = [];
    const pinned = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (req) => {
        hosts.push(`${req.method} ${new URL(req.url).pathname} ${req.headers.get('host')}`);
        if (new URL(req.url).pathname.endsWith('/status')) return Response.json({ name: 'pinned' });
        return Response.json({ state: 'pending' });
      },
    });
    try {
      const reg = await t.api('POST', '/task-services', {
        name: 'pinned',
        url: `http://pinned.test:${pinned.port}/svc`,
      });
      expect(reg.status).toBe(201);
      expect(hosts).toContain(`GET /svc/status pinned.test:${pinned.port}`);
      const study = await createStudy(t.api);
      const created = await t.api('POST', '/releases', { name: 'pinned', studies: [study] });
      expect(created.status).toBe(201);
      await until(() => hosts.includes(`POST /svc/tasks pinned.test:${pinned.port}`), { timeoutMs: 10_000 });
      expect(fetched.filter((u) => u.includes('pinned.test'))).toEqual([]);
      await t.api('DELETE', `/releases/${created.body.kf_id}`);
    } finally {
      await disableAllServices(t.api);
      pinned.stop(true);
    }
  }, 30_000);
});
