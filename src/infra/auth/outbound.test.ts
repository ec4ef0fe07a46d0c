import { afterAll, describe, expect, test } from 'bun:test';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import type { SigningKey } from './keys';
import { OutboundTokens } from './outbound';

async function key(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const publicJwk = await exportJWK(publicKey);
  return { kid: await calculateJwkThumbprint(publicJwk), alg: 'ES256', privateKey, publicJwk };
}

// a local OAuth token endpoint (client credentials), counting how often it is asked
let issued = 0;
const tokenEndpoint = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  async fetch(req) {
    const form = new URLSearchParams(await req.text());
    if (form.get('grant_type') !== 'client_credentials' || form.get('client_secret') !== 's3cret') {
      return Response.json({ error: 'invalid_client' }, { status: 401 });
    }
    issued++;
    return Response.json({ access_token: `oauth-token-${issued}-${form.get('audience')}`, expires_in: 3600 });
  },
});
afterAll(() => tokenEndpoint.stop(true));

describe('tokens sent to task services', () => {
  test('signed by the coordinator: kid, audience = the service URL, short expiry; cached per audience', async () => {
    const k = await key();
    const tokens = new OutboundTokens(k, 'https://coordinator.example', 300);
    const a = await tokens.authorization('http://svc-a');
    const b = await tokens.authorization('http://svc-b');
    expect(await tokens.authorization('http://svc-a')).toBe(a);
    expect(a).not.toBe(b);
    const jwt = a.replace(/^Bearer /, '');
    expect(decodeProtectedHeader(jwt)).toMatchObject({ alg: 'ES256', kid: k.kid });
    const claims = decodeJwt(jwt);
    expect(claims).toMatchObject({
      aud: 'http://svc-a',
      iss: 'https://coordinator.example',
      sub: 'release-coordinator',
    });
    expect(claims.exp! - claims.iat!).toBe(300);
  });

  test('with OAuth client credentials configured: the endpoint token, fetched once and reused', async () => {
    const tokens = new OutboundTokens(await key(), 'https://coordinator.example', 300, {
      tokenUrl: `http://127.0.0.1:${tokenEndpoint.port}/token`,
      clientId: 'rc',
      clientSecret: 's3cret',
      audience: 'task-services',
    });
    const before = issued;
    const [x, y] = await Promise.all([
      tokens.authorization('http://svc-a'),
      tokens.authorization('http://svc-b'),
    ]);
    expect(x).toBe(`Bearer oauth-token-${before + 1}-task-services`);
    expect(y).toBe(x);
    expect(await tokens.authorization('http://svc-c')).toBe(x);
    expect(issued).toBe(before + 1);
  });

  test('extra claims (gty: client-credentials) and a per-service audience, for identity-provider services', async () => {
    const tokens = new OutboundTokens(await key(), 'https://coordinator.example', 300, undefined, fetch, {
      gty: 'client-credentials',
      aud: 'may-not-override',
      azp: 'release-coordinator',
    });
    const own = decodeJwt(
      (await tokens.authorization('http://svc-a', 'https://search.example/api')).slice(7),
    );
    expect(own).toMatchObject({
      aud: 'https://search.example/api',
      gty: 'client-credentials',
      azp: 'release-coordinator',
      sub: 'release-coordinator',
    });
    const byUrl = decodeJwt((await tokens.authorization('http://svc-b')).slice(7));
    expect(byUrl.aud).toBe('http://svc-b');
    expect(byUrl.gty).toBe('client-credentials');
  });

  test('OAuth client credentials: a service with its own audience gets a token for that audience', async () => {
    const tokens = new OutboundTokens(await key(), 'https://coordinator.example', 300, {
      tokenUrl: `http://127.0.0.1:${tokenEndpoint.port}/token`,
      clientId: 'rc',
      clientSecret: 's3cret',
      audience: 'task-services',
    });
    const before = issued;
    const shared = await tokens.authorization('http://svc-a');
    const own = await tokens.authorization('http://svc-b', 'https://variant-store.example');
    expect(shared).toBe(`Bearer oauth-token-${before + 1}-task-services`);
    expect(own).toBe(`Bearer oauth-token-${before + 2}-https://variant-store.example`);
    expect(await tokens.authorization('http://svc-c', 'https://variant-store.example')).toBe(own);
    expect(issued).toBe(before + 2);
  });

  test('a refusing token endpoint is an error that names the status', async () => {
    const tokens = new OutboundTokens(await key(), 'https://coordinator.example', 300, {
      tokenUrl: `http://127.0.0.1:${tokenEndpoint.port}/token`,
      clientId: 'rc',
      clientSecret: 'wrong',
    });
    await expect(tokens.authorization('http://svc-a')).rejects.toThrow(/answered 401/);
  });
});
