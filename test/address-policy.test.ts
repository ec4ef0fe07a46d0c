import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { classify, type Lookup, refusedUrl } from '../src/infra/task-service/address-policy';
import { createStudy, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

/**
 * The SSRF policy for task-service URLs. No test here lets a packet leave loopback: names are
 * resolved by stub resolvers, and the fetch given to the coordinator only reaches 127.0.0.1.
 */
const stubLookup = (table: Record<string, string[]>) => {
  const asked: string[] = [];
  const lookup: Lookup = async (host) => {
    asked.push(host);
    const addresses = table[host];
    if (!addresses) throw new Error(`ENOTFOUND ${host}`);
    return addresses;
  };
  return { lookup, asked };
};

describe('classify', () => {
  test.each([
    ['169.254.169.254', 'forbidden'],
    ['169.254.0.1', 'forbidden'],
    ['0.0.0.0', 'forbidden'],
    ['224.0.0.1', 'forbidden'],
    ['255.255.255.255', 'forbidden'],
    ['fe80::1', 'forbidden'],
    ['febf::1', 'forbidden'],
    ['::', 'forbidden'],
    ['ff02::1', 'forbidden'],
    ['fd00:ec2::254', 'forbidden'],
    ['::ffff:169.254.169.254', 'forbidden'],
    ['::ffff:a9fe:a9fe', 'forbidden'],
    ['64:ff9b::a9fe:a9fe', 'forbidden'],
    ['::ffff:7f00:1', 'private'],
    ['127.0.0.1', 'private'],
    ['127.8.9.10', 'private'],
    ['::1', 'private'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['2606:4700::1111', 'public'],
    ['not an address', 'forbidden'],
  ])('%s is %s', (address, kind) => {
    expect(classify(address)).toBe(kind as ReturnType<typeof classify>);
  });
});

/**
 * IPv6 addresses that carry an IPv4 address, each kind with 127.0.0.1, 169.254.169.254 and
 * 8.8.8.8 inside: they are judged by the address they carry.
 */
const EMBEDDED: [kind: string, loopback: string, metadata: string, publicOne: string][] = [
  ['IPv4-mapped ::ffff:0:0/96', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '::ffff:808:808'],
  ['IPv4-translated ::ffff:0:0:0/96', '::ffff:0:7f00:1', '::ffff:0:a9fe:a9fe', '::ffff:0:808:808'],
  ['IPv4-compatible ::/96', '::7f00:1', '::169.254.169.254', '::808:808'],
  ['6to4 2002::/16', '2002:7f00:1::', '2002:a9fe:a9fe:1::1', '2002:808:808::1'],
  ['NAT64 64:ff9b::/96', '64:ff9b::7f00:1', '64:ff9b::169.254.169.254', '64:ff9b::8.8.8.8'],
  [
    'Teredo server 2001::/32',
    '2001:0:7f00:1:8000:63bf:f7f7:f7f7',
    '2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7',
    '2001:0:808:808:8000:63bf:f7f7:f7f7',
  ],
  // the client's address is stored inverted: ~7f00:0001 = 80ff:fffe
  [
    'Teredo client 2001::/32',
    '2001:0:808:808:8000:63bf:80ff:fffe',
    '2001:0:808:808::5601:5601',
    '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
  ],
];

describe('IPv6 addresses that carry an IPv4 address are judged by it', () => {
  test.each(EMBEDDED)('%s', (_kind, loopback, metadata, publicOne) => {
    expect(classify(loopback)).toBe('private');
    expect(classify(metadata)).toBe('forbidden');
    expect(classify(publicOne)).toBe('public');
  });

  test('local-use NAT64 64:ff9b:1::/48 (RFC 8215) is at least private: it only exists inside a network', () => {
    expect(classify('64:ff9b:1::7f00:1')).toBe('private');
    expect(classify('64:ff9b:1::a9fe:a9fe')).toBe('forbidden');
    expect(classify('64:ff9b:1::808:808')).toBe('private');
  });

  test('::1 stays loopback and :: unspecified (both are inside ::/96)', () => {
    expect(classify('::1')).toBe('private');
    expect(classify('::')).toBe('forbidden');
  });

  test('the three forms of 127.0.0.1 that were connected to are refused without ALLOW_PRIVATE_SERVICE_URLS, as literals and through a name', async () => {
    const forms = ['::ffff:0:7f00:1', '2002:7f00:1::', '64:ff9b:1::7f00:1'];
    const { lookup } = stubLookup(Object.fromEntries(forms.map((a, i) => [`embedded-${i}.test`, [a]])));
    for (const [i, address] of forms.entries()) {
      for (const url of [`http://[${address}]:3001/`, `http://embedded-${i}.test:3001/`]) {
        const reason = await refusedUrl(url, { allowPrivate: false, lookup });
        expect({ url, reason }).toEqual({ url, reason: expect.stringContaining('127.0.0.1') });
        expect(reason).toMatch(/loopback or private/);
      }
    }
  });

  test('every kind carrying 169.254.169.254 is refused whatever the config, as a literal and through a name', async () => {
    const { lookup } = stubLookup(
      Object.fromEntries(EMBEDDED.map(([, , metadata], i) => [`meta-${i}.test`, [metadata]])),
    );
    for (const [i, [kind, , metadata]] of EMBEDDED.entries()) {
      for (const url of [`http://[${metadata}]/`, `http://meta-${i}.test/`]) {
        const reason = await refusedUrl(url, { allowPrivate: true, lookup });
        expect({ kind, url, reason }).toEqual({ kind, url, reason: expect.stringMatching(/never allowed/) });
      }
    }
  });

  test('every kind carrying a loopback address is refused without ALLOW_PRIVATE_SERVICE_URLS and allowed with it', async () => {
    const { lookup } = stubLookup(
      Object.fromEntries(EMBEDDED.map(([, loopback], i) => [`loop-${i}.test`, [loopback]])),
    );
    for (const [i, [kind, loopback]] of EMBEDDED.entries()) {
      for (const url of [`http://[${loopback}]/`, `http://loop-${i}.test/`]) {
        const strict = await refusedUrl(url, { allowPrivate: false, lookup });
        expect({ kind, url, strict }).toEqual({
          kind,
          url,
          strict: expect.stringMatching(/loopback or private/),
        });
        expect(await refusedUrl(url, { allowPrivate: true, lookup })).toBeUndefined();
      }
    }
  });
});

describe('refusedUrl', () => {
  const { lookup, asked } = stubLookup({
    'metadata.internal': ['169.254.169.254'],
    'v6-link-local.test': ['fe80::1'],
    'mapped.test': ['::ffff:169.254.169.254'],
    'intranet.test': ['10.0.0.7'],
    'mixed.test': ['93.184.216.34', '169.254.169.254'],
    'public.test': ['93.184.216.34'],
    'localhost.test': ['127.0.0.1'],
  });
  const strictPolicy = { allowPrivate: false, lookup };
  const devPolicy = { allowPrivate: true, lookup };

  test('names resolving to link-local or metadata addresses are refused, whatever the config', async () => {
    for (const url of [
      'http://metadata.internal/latest',
      'http://v6-link-local.test/',
      'http://mapped.test/',
      'https://mixed.test/',
    ]) {
      expect(await refusedUrl(url, devPolicy)).toMatch(/never allowed/);
    }
    expect(asked).toEqual(expect.arrayContaining(['metadata.internal', 'v6-link-local.test', 'mapped.test']));
  });

  test('address literals are checked without a lookup', async () => {
    const before = asked.length;
    expect(await refusedUrl('http://169.254.169.254/latest/meta-data', devPolicy)).toMatch(/never allowed/);
    expect(await refusedUrl('http://[fe80::1]:8080/', devPolicy)).toMatch(/never allowed/);
    expect(await refusedUrl('http://[::ffff:169.254.169.254]/', devPolicy)).toMatch(/never allowed/);
    // other spellings of 169.254.169.254 that URL parsers normalise
    expect(await refusedUrl('http://2852039166/', devPolicy)).toMatch(/never allowed/);
    expect(await refusedUrl('http://0xa9.0xfe.0xa9.0xfe/', devPolicy)).toMatch(/never allowed/);
    expect(await refusedUrl('http://8.8.8.8/', strictPolicy)).toBeUndefined();
    expect(asked.length).toBe(before);
  });

  test('private and loopback addresses only when allowed', async () => {
    expect(await refusedUrl('http://intranet.test/', strictPolicy)).toMatch(/ALLOW_PRIVATE_SERVICE_URLS/);
    expect(await refusedUrl('http://localhost.test:3001/', strictPolicy)).toMatch(/loopback or private/);
    expect(await refusedUrl('http://127.0.0.1:3001/', strictPolicy)).toMatch(/loopback or private/);
    expect(await refusedUrl('http://intranet.test/', devPolicy)).toBeUndefined();
    expect(await refusedUrl('http://[::1]:3001/', devPolicy)).toBeUndefined();
    expect(await refusedUrl('https://public.test/svc', strictPolicy)).toBeUndefined();
  });

  test('other schemes, credentials, bad URLs and unknown names are refused', async () => {
    expect(await refusedUrl('ftp://public.test/', devPolicy)).toMatch(/Only http and https/);
    expect(await refusedUrl('file:///etc/passwd', devPolicy)).toMatch(/Only http and https/);
    expect(await refusedUrl('gopher://public.test/', devPolicy)).toMatch(/Only http and https/);
    expect(await refusedUrl('http://user:secret@public.test/', devPolicy)).toMatch(/credentials/);
    expect(await refusedUrl('http://user@public.test/', devPolicy)).toMatch(/credentials/);
    expect(await refusedUrl('not a url', devPolicy)).toMatch(/valid URL/);
    expect(await refusedUrl('http://nowhere.test/', devPolicy)).toMatch(/does not resolve/);
  });
});

describe('the coordinator applies the policy on registration and on every call', () => {
  let t: TestSystem;
  const resolver = stubLookup({ 'metadata.internal': ['169.254.169.254'] });
  const fetched: string[] = [];
  /** reaches 127.0.0.1 only; records every attempt */
  const loopbackFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    fetched.push(url.href);
    if (url.hostname !== '127.0.0.1') throw new Error(`test fetch refused to leave loopback: ${url.href}`);
    return fetch(input, init);
  }) as typeof fetch;

  // a service that answers /status, then redirects POST /tasks to the metadata address; and a
  // loopback "target" that would see a followed redirect
  let targetHits = 0;
  let target: ReturnType<typeof Bun.serve>;
  let redirecting: ReturnType<typeof Bun.serve>;

  beforeAll(async () => {
    target = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => {
        targetHits++;
        return Response.json({ state: 'initialized' });
      },
    });
    redirecting = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (req) => {
        const path = new URL(req.url).pathname;
        if (path === '/status') return Response.json({ name: 'redirecting', version: '1' });
        if (path === '/r/status') {
          return new Response(null, {
            status: 302,
            headers: { location: `http://127.0.0.1:${target.port}/status` },
          });
        }
        return new Response(null, {
          status: 302,
          headers: { location: `http://127.0.0.1:${target.port}/tasks` },
        });
      },
    });
    t = await startTestSystem('address_policy', {}, { lookup: resolver.lookup, fetch: loopbackFetch });
  });
  afterAll(async () => {
    await t?.stop();
    target?.stop(true);
    redirecting?.stop(true);
  });

  test('registering a name that resolves to 169.254.169.254 is 400; the name was looked up, nothing fetched', async () => {
    const res = await t.api('POST', '/task-services', { name: 'meta', url: 'http://metadata.internal/' });
    expect(res.status).toBe(400);
    expect(res.body.url[0]).toContain('169.254.169.254');
    expect(resolver.asked).toContain('metadata.internal');
    expect(fetched).toEqual([]);
  });

  test('credentials, other schemes and link-local literals are refused before any request', async () => {
    for (const url of [
      'http://user:pw@127.0.0.1:1/',
      'ftp://127.0.0.1/',
      'http://169.254.169.254/',
      'http://[fe80::1]/',
    ]) {
      const res = await t.api('POST', '/task-services', { name: 'x', url });
      expect({ url, status: res.status }).toEqual({ url, status: 400 });
    }
    expect(fetched).toEqual([]);
  });

  test('PATCH to a forbidden URL is refused too', async () => {
    const reg = await t.api('POST', '/task-services', {
      name: 'redirecting',
      url: `http://127.0.0.1:${redirecting.port}`,
    });
    expect(reg.status).toBe(201);
    const patched = await t.api('PATCH', `/task-services/${reg.body.kf_id}`, {
      url: 'http://metadata.internal/',
    });
    expect(patched.status).toBe(400);
    expect((await t.api('GET', `/task-services/${reg.body.kf_id}`)).body.url).toBe(
      `http://127.0.0.1:${redirecting.port}`,
    );
  });

  test('a redirect answered to the /status check is not followed', async () => {
    const res = await t.api('POST', '/task-services', {
      name: 'redirect-status',
      url: `http://127.0.0.1:${redirecting.port}/r`,
    });
    expect(res.status).toBe(400);
    expect(res.body.url[0]).toContain('302');
    expect(targetHits).toBe(0);
  });

  test('a 302 from a task service is not followed by the worker: the task is rejected, the target never hit', async () => {
    const study = await createStudy(t.api);
    const created = await t.api('POST', '/releases', { name: 'redirect', studies: [study] });
    expect(created.status).toBe(201);
    const done = await waitForState(t.api, created.body.kf_id, ['failed', 'canceled']);
    expect(done.state).toBe('failed');
    expect(done.tasks.some((x: { state: string }) => x.state === 'rejected')).toBe(true);
    expect(targetHits).toBe(0);
    expect(fetched.every((u) => u.startsWith(`http://127.0.0.1:${redirecting.port}/`))).toBe(true);
  });
});
