import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { refusedUrl } from '../src/infra/task-service/address-policy';
import { startTestSystem, type TestSystem } from './support/system';

/**
 * Attack: the task-service address policy (README "Task-service URLs (SSRF policy)" and
 * Security: "Task-service addresses are judged by where packets go"), with loopback and private
 * addresses NOT allowed, as in a deployment whose services are public.
 */

const PUBLIC_ADDRESS = '93.184.216.34';
let t: TestSystem;
let mock: MockHandle;
const lookups: string[] = [];
const secret = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch: () => new Response('AccessKeyId=AKIAEXAMPLE SecretAccessKey=wJalrXUtnFEMI/K7MDENG', { status: 200 }),
});

/**
 * The coordinator's fetch: it connects as the system's would (`localhost` is loopback, the second
 * answer of the rebinding name) but never leaves the machine: a request for the public address
 * (where a coordinator that connects to the address it checked goes) fails as unreachable.
 */
const offMachine: string[] = [];
const loopbackOnly = (async (input: RequestInfo | URL, init?: RequestInit) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname !== 'localhost' && url.hostname !== '127.0.0.1') {
    offMachine.push(url.host);
    throw Object.assign(new Error(`test fetch refused to leave loopback: ${url.host}`), {
      code: 'ENETUNREACH',
    });
  }
  return fetch(input, init);
}) as typeof fetch;

beforeAll(async () => {
  t = await startTestSystem(
    'attack_ssrf',
    { ALLOW_PRIVATE_SERVICE_URLS: 'false' },
    {
      // a resolver that answers with a public address: what a DNS-rebinding name answers to the
      // first question (TTL 0), before it answers 127.0.0.1 or 169.254.169.254 to the next one
      lookup: async (host) => {
        lookups.push(host);
        return [PUBLIC_ADDRESS];
      },
      fetch: loopbackOnly,
    },
  );
  mock = await startMock({ services: ['inside'] });
});
afterAll(async () => {
  await mock?.stop();
  await t?.stop();
  secret.stop(true);
});

describe('SSRF policy', () => {
  /**
   * The policy resolves the name itself (src/task-services/address-policy.ts `refusedUrl`), then
   * `fetch` resolves it again on its own and connects wherever that second answer says. FAILS
   * today: a name the policy saw as public but that reaches a loopback service is registered
   * (201) after GET /status went to 127.0.0.1, and every later call would go there too. With a
   * rebinding DNS name, the second answer is 169.254.169.254.
   */
  test('a name that resolves to a public address for the check but connects to loopback is refused', async () => {
    const url = mock.serviceUrl('inside').replace('127.0.0.1', 'localhost');
    const res = await t.api('POST', '/task-services', { name: 'rebound', url });
    const reached = mock.callsFor({ service: 'inside', action: 'status' }).length;
    console.log(
      'rebinding:',
      res.status,
      `policy looked up ${JSON.stringify([...new Set(lookups)])} as ${PUBLIC_ADDRESS};`,
      `GET /status calls that reached the loopback service: ${reached};`,
      `requests for other hosts: ${JSON.stringify(offMachine)}`,
    );
    expect(reached).toBe(0);
    expect(res.status).toBe(400);
  });

  /**
   * `{url}/status` is built by appending to the URL as text, and a refused registration echoes
   * the first 200 characters of whatever answered. A URL ending in `#` (or `?x=`) makes the
   * "status" request go to exactly the path the caller chose. FAILS today: a DEV user reads the
   * start of any page the coordinator can reach (here a stand-in for a metadata credentials
   * page) in the 400's message.
   */
  test('a refused registration does not echo what an arbitrary internal page answered', async () => {
    const url = `http://localhost:${secret.port}/latest/meta-data/iam/security-credentials/role#`;
    const res = await t.api('POST', '/task-services', { name: 'peek', url });
    console.log('read-back through the 400:', res.status, JSON.stringify(res.body));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).not.toContain('SecretAccessKey');
  });

  /**
   * README: "link-local and cloud-metadata addresses ... are never allowed". Alibaba Cloud's
   * metadata service is 100.100.100.200, inside 100.64/10, which counts as merely "private".
   * FAILS today: with ALLOW_PRIVATE_SERVICE_URLS=true (which a deployment whose services are on a
   * private network must set) it is allowed.
   */
  test('the Alibaba Cloud metadata address is never allowed', async () => {
    const reason = await refusedUrl('http://100.100.100.200/latest/meta-data/', { allowPrivate: true });
    console.log('100.100.100.200 with private addresses allowed:', reason ?? 'allowed');
    expect(reason).toBeDefined();
  });
});
