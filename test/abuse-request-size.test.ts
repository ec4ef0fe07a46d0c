import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { REQUEST_LIMITS } from '../src/gateway/http/request-limits';
import { startTestSystem, type TestSystem } from './support/system';

// Oversized requests are refused with a JSON message naming what is too large, like every other
// error answer: a long URL or query string (414), an oversized header or token and too many
// headers in all (431), a body over MAX_BODY_BYTES (413), also one declared larger than the
// runtime's own body limit. The limits sit below the HTTP parser's, so the gateway answers first.

let t: TestSystem;
let port: number;

beforeAll(async () => {
  t = await startTestSystem('abuse_request_size');
  port = Number(new URL(t.url).port);
});
afterAll(async () => {
  await t?.stop();
});

async function expectJsonError(res: Response, status: number, detail: RegExp) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/json');
  const body = (await res.json()) as { detail: string };
  expect(body.detail).toMatch(detail);
}

/** sends a raw request head (and the start of a body) and returns the status line, headers and body */
async function rawRequest(request: string): Promise<{ status: number; head: string; body: string }> {
  let received = '';
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data(_s, chunk) {
        received += chunk.toString();
        const [head, body] = received.split('\r\n\r\n');
        const length = /content-length: (\d+)/i.exec(head ?? '')?.[1];
        if (body !== undefined && length !== undefined && Buffer.byteLength(body) >= Number(length))
          resolve();
      },
      close: () => resolve(),
      error: () => resolve(),
    },
  });
  socket.write(request);
  await closed;
  socket.end();
  const [head = '', body = ''] = received.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), head, body };
}

describe('oversized requests get a JSON answer', () => {
  test('a URL or query string over the limit is 414', async () => {
    const long = 'a'.repeat(REQUEST_LIMITS.maxUrlBytes);
    await expectJsonError(
      await fetch(`${t.url}/releases?name=${long}`),
      414,
      /URL .* longer than 8192 bytes/,
    );
    await expectJsonError(
      await fetch(
        `${t.url}/graphql?query=${encodeURIComponent(`{ status { name ${'name '.repeat(2000)}} }`)}`,
      ),
      414,
      /URL .* longer than 8192 bytes/,
    );
  });

  test('one header over the limit is 431 and named; an oversized bearer token is named as the token', async () => {
    await expectJsonError(
      await fetch(`${t.url}/releases`, {
        headers: { 'x-padding': 'p'.repeat(REQUEST_LIMITS.maxHeaderBytes) },
      }),
      431,
      /^The x-padding header is larger than 8192 bytes\.$/,
    );
    await expectJsonError(
      await fetch(`${t.url}/releases`, { headers: { authorization: `Bearer ${'t'.repeat(9000)}` } }),
      431,
      /Authorization header \(the token\) is larger than 8192 bytes/,
    );
    // GraphQL reads the token itself: the limit applies before it
    await expectJsonError(
      await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${'t'.repeat(9000)}` },
        body: JSON.stringify({ query: '{ status { name } }' }),
      }),
      431,
      /token/,
    );
  });

  test('headers within the per-header limit but over the total are 431', async () => {
    const headers = Object.fromEntries(
      Array.from({ length: 7 }, (_, i) => [`x-part-${i}`, 'p'.repeat(2_200)]),
    );
    await expectJsonError(
      await fetch(`${t.url}/releases`, { headers }),
      431,
      /headers are larger than 15360 bytes/,
    );
  });

  test('a request just under the limits is served', async () => {
    const res = await fetch(`${t.url}/releases?name=${'a'.repeat(8_000)}`, {
      headers: { 'x-padding': 'p'.repeat(6_000) },
    });
    expect(res.status).toBe(200);
  });

  test('a body over MAX_BODY_BYTES is 413 in JSON, also one declared larger than the runtime accepts', async () => {
    await expectJsonError(
      await fetch(`${t.url}/studies`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${t.adminToken}` },
        body: JSON.stringify({ kf_id: 'SD_ABCDEF12', name: 'x'.repeat(2_000_000) }),
      }),
      413,
      /larger than 1048576 bytes/,
    );
    // 200 MB declared (Bun's own limit is 128 MiB), a few bytes sent: refused from the header alone
    const declared = await rawRequest(
      `POST /studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 200000000\r\n\r\n{"kf_id":`,
    );
    expect(declared.status).toBe(413);
    expect(declared.head.toLowerCase()).toContain('content-type: application/json');
    expect(JSON.parse(declared.body).detail).toMatch(/larger than 1048576 bytes/);
  });
});
