import { describe, expect, test } from 'bun:test';
import { classify, type Lookup, refusedUrl } from './address-policy';

/*
 * Where a task-service URL may point (README "Task-service URLs (SSRF policy)"). Pure: names are
 * resolved by a stub, nothing leaves the process. test/address-policy.test.ts checks the same
 * policy applied by a running coordinator (registration and every call).
 */

const table: Record<string, string[]> = {
  'public.example.org': ['93.184.216.34', '2606:2800:220:1::1'],
  'loopback.example.org': ['127.0.0.1'],
  'private.example.org': ['10.0.0.7'],
  'metadata.example.org': ['169.254.169.254'],
  'mixed.example.org': ['93.184.216.34', '192.168.1.10'],
  'v6-link-local.example.org': ['fe80::1'],
  'empty.example.org': [],
};
const lookup: Lookup = async (host) => {
  const found = table[host];
  if (!found) throw new Error(`ENOTFOUND ${host}`);
  return found;
};
const strict = { allowPrivate: false, lookup };
const allowing = { allowPrivate: true, lookup };

describe('kinds of address', () => {
  const kinds: Array<[string, ReturnType<typeof classify>]> = [
    // IPv4
    ['127.0.0.1', 'private'],
    ['127.255.255.254', 'private'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.0.1', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.0.1', 'forbidden'],
    ['169.254.169.254', 'forbidden'],
    ['0.0.0.0', 'forbidden'],
    ['224.0.0.251', 'forbidden'],
    ['240.0.0.1', 'forbidden'],
    ['8.8.8.8', 'public'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['192.169.0.1', 'public'],
    // IPv6
    ['::1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fe80::1', 'forbidden'],
    ['febf:ffff::1', 'forbidden'],
    ['::', 'forbidden'],
    ['ff02::1', 'forbidden'],
    ['fd00:ec2::254', 'forbidden'],
    ['2606:4700:4700::1111', 'public'],
    // IPv6 carrying IPv4: judged by what it carries
    ['::ffff:127.0.0.1', 'private'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'forbidden'],
    ['::ffff:8.8.8.8', 'public'],
    // not an address at all
    ['localhost', 'forbidden'],
    ['', 'forbidden'],
  ];
  test.each(kinds)('%s is %s', (address, kind) => {
    expect(classify(address)).toBe(kind);
  });
});

describe('refusedUrl', () => {
  test('public addresses and names pass, with or without private addresses allowed', async () => {
    for (const url of [
      'https://public.example.org/task-service',
      'http://93.184.216.34:8080/',
      'https://[2606:4700:4700::1111]/',
    ]) {
      expect(await refusedUrl(url, strict)).toBeUndefined();
      expect(await refusedUrl(url, allowing)).toBeUndefined();
    }
  });

  test('loopback and private addresses, IPv4 and IPv6, only when allowed (ALLOW_PRIVATE_SERVICE_URLS)', async () => {
    for (const url of [
      'http://127.0.0.1:3001',
      'http://10.0.0.7/',
      'http://172.20.1.1/',
      'http://192.168.1.1/',
      'http://[::1]:3001/',
      'http://[fd00::5]/',
      'http://loopback.example.org/',
      'http://private.example.org/',
    ]) {
      const reason = await refusedUrl(url, strict);
      expect({ url, reason }).toEqual({
        url,
        reason: expect.stringContaining('ALLOW_PRIVATE_SERVICE_URLS=true'),
      });
      expect(await refusedUrl(url, allowing)).toBeUndefined();
    }
  });

  test('link-local, metadata, unspecified and multicast addresses never, whatever is allowed', async () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data',
      'http://[fe80::1]/',
      'http://[fd00:ec2::254]/',
      'http://0.0.0.0:3000/',
      'http://[::]/',
      'http://224.0.0.1/',
      'http://metadata.example.org/',
      'http://v6-link-local.example.org/',
      'http://[::ffff:169.254.169.254]/',
    ]) {
      for (const opts of [strict, allowing]) {
        const reason = await refusedUrl(url, opts);
        expect({ url, reason }).toEqual({ url, reason: expect.stringContaining('is never allowed') });
      }
    }
  });

  test('every address a name resolves to is checked: one private address refuses the name', async () => {
    expect(await refusedUrl('https://mixed.example.org/', strict)).toContain('192.168.1.10');
    expect(await refusedUrl('https://mixed.example.org/', allowing)).toBeUndefined();
  });

  test('address literals are not looked up', async () => {
    const asked: string[] = [];
    const recording: Lookup = async (host) => {
      asked.push(host);
      return ['8.8.8.8'];
    };
    await refusedUrl('http://10.0.0.1/', { allowPrivate: false, lookup: recording });
    await refusedUrl('http://[::1]/', { allowPrivate: false, lookup: recording });
    expect(asked).toEqual([]);
  });

  test('other schemes, credentials, unparseable URLs and names that do not resolve are refused', async () => {
    for (const [url, words] of [
      ['ftp://public.example.org/', 'Only http and https'],
      ['file:///etc/passwd', 'Only http and https'],
      ['https://user:secret@public.example.org/', 'credentials'],
      ['not a url', 'valid URL'],
      ['https://unknown.example.org/', 'does not resolve'],
      ['https://empty.example.org/', 'does not resolve'],
    ] as const) {
      for (const opts of [strict, allowing]) {
        const reason = await refusedUrl(url, opts);
        expect({ url, reason }).toEqual({ url, reason: expect.stringContaining(words) });
      }
    }
  });
});
