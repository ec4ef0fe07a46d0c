import { afterAll, describe, expect, setSystemTime, test } from 'bun:test';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import type { SigningKey } from './keys';
import { OutboundTokens, TokenError } from './outbound';

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

describe('an OAuth token endpoint that cannot give a token', () => {
  // answers by audience: 'down' → 503 while `down` holds, 'revoked' → 403, others a token
  let down = true;
  const requests: string[] = [];
  const idp = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const audience = new URLSearchParams(await req.text()).get('audience') ?? '';
      requests.push(audience);
      if (audience === 'down' && down)
        return Response.json({ error: 'temporarily_unavailable' }, { status: 503 });
      if (audience === 'revoked')
        return Response.json(
          { error: 'access_denied', error_description: 'Client is not authorized' },
          { status: 403 },
        );
      return Response.json({ access_token: `token-${audience}`, expires_in: 3600 });
    },
  });
  afterAll(() => idp.stop(true));
  const tokens = async () =>
    new OutboundTokens(await key(), 'https://coordinator.example', 300, {
      tokenUrl: `http://127.0.0.1:${idp.port}/oauth/token`,
      clientId: 'rc',
      clientSecret: 's3cret',
    });
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('a token came');
      },
      (err: unknown) => err as TokenError,
    );

  test('a refusal (403) is a TokenError that is not transient and names the endpoint and its error', async () => {
    const err = await failure((await tokens()).authorization('http://svc', 'revoked'));
    expect(err).toBeInstanceOf(TokenError);
    expect(err.transient).toBe(false);
    expect(err.message).toContain(`http://127.0.0.1:${idp.port}/oauth/token answered 403`);
    expect(err.message).toContain('access_denied: Client is not authorized');
  });

  test('an outage (503) is transient; requests are single-flight and paused, and a token comes once it is back', async () => {
    const t = await tokens();
    down = true;
    requests.length = 0;
    const errors = await Promise.all([1, 2, 3].map(() => failure(t.authorization('http://svc', 'down'))));
    // three callers at once: one request
    expect(requests).toEqual(['down']);
    for (const e of errors) expect(e).toMatchObject({ transient: true });
    expect(errors[0]!.message).toContain('answered 503 (temporarily_unavailable)');
    expect(errors[0]!.retryAt).toBeGreaterThan(Date.now());
    // before retryAt the endpoint is not asked again: the same error at once
    expect(await failure(t.authorization('http://svc', 'down'))).toBe(errors[0]!);
    expect(requests).toEqual(['down']);
    // another audience is not held up by it
    expect(await t.authorization('http://svc', 'fine')).toBe('Bearer token-fine');
    down = false;
    try {
      setSystemTime(new Date(errors[0]!.retryAt + 1));
      expect(await t.authorization('http://svc', 'down')).toBe('Bearer token-down');
    } finally {
      setSystemTime();
    }
  });

  test('an endpoint out of reach is transient too', async () => {
    const t = new OutboundTokens(await key(), 'https://coordinator.example', 300, {
      tokenUrl: 'http://127.0.0.1:1/oauth/token',
      clientId: 'rc',
      clientSecret: 's3cret',
    });
    const err = await failure(t.authorization('http://svc'));
    expect(err).toMatchObject({ transient: true });
    expect(err.message).toContain('out of reach');
  });
});
