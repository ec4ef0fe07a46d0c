import { SignJWT } from 'jose';
import type { SigningKey } from './keys';

export interface OAuthClientCredentials {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  audience?: string;
}

/**
 * The OAuth token endpoint answered, and refused the request (a 4xx: e.g. the client has no grant
 * for the audience). Asking again will not help until someone changes the grant; any other failure
 * (no answer, a 5xx) is the identity provider being out of reach.
 */
export class TokenRefused extends Error {
  constructor(
    readonly audience: string,
    readonly status: number,
    reason: string,
  ) {
    super(
      `The OAuth token endpoint answered ${status} to a token request ${audience ? `for audience "${audience}"` : 'without an audience'}${reason ? `: ${reason}` : ''}.`,
    );
  }
}

/** Claims the coordinator always sets itself; extra claims may not replace them. */
const RESERVED = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti']);

/**
 * Bearer tokens for calls to task services: short-lived JWTs signed by the coordinator (audience =
 * the service's own `token_audience`, else its URL; plus configured extra claims such as
 * `gty: client-credentials` for services that accept only machine tokens), cached per audience
 * until shortly before they expire; or, when configured, an access token from an OAuth
 * client-credentials endpoint (per audience too: OAUTH_AUDIENCE unless the service names its own).
 */
export class OutboundTokens {
  private readonly cache = new Map<string, { token: string; renewAt: number }>();
  private readonly oauthPending = new Map<string, Promise<{ token: string; renewAt: number }>>();
  private readonly extraClaims: Record<string, unknown>;

  constructor(
    private readonly key: SigningKey,
    private readonly issuer: string,
    private readonly ttlSeconds: number,
    private readonly oauth?: OAuthClientCredentials,
    private readonly fetchFn: typeof fetch = fetch,
    extraClaims: Record<string, unknown> = {},
  ) {
    this.extraClaims = Object.fromEntries(Object.entries(extraClaims).filter(([k]) => !RESERVED.has(k)));
  }

  /** `serviceUrl`: where the call goes; `audience`: the service's own audience, when it has one. */
  async authorization(serviceUrl: string, audience?: string | null): Promise<string> {
    const now = Date.now();
    const oauthAudience = audience ?? this.oauth?.audience ?? '';
    const cacheKey = this.oauth ? `oauth:${oauthAudience}` : `jwt:${audience ?? serviceUrl}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.renewAt > now) return `Bearer ${hit.token}`;
    const fresh = this.oauth ? await this.fromOAuth(oauthAudience) : await this.sign(audience ?? serviceUrl);
    this.cache.set(cacheKey, fresh);
    if (this.cache.size > 10_000) this.cache.clear();
    return `Bearer ${fresh.token}`;
  }

  private async sign(audience: string) {
    const token = await new SignJWT({ scope: 'task-service', ...this.extraClaims })
      .setProtectedHeader({ alg: this.key.alg, kid: this.key.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject('release-coordinator')
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key.privateKey);
    return { token, renewAt: Date.now() + this.ttlSeconds * 500 };
  }

  private fromOAuth(audience: string) {
    const pending = this.oauthPending.get(audience);
    if (pending) return pending;
    const request = (async () => {
      const o = this.oauth!;
      const body = new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: o.clientId,
        client_secret: o.clientSecret,
      });
      if (audience) body.set('audience', audience);
      const res = await this.fetchFn(o.tokenUrl, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status >= 400 && res.status < 500)
        throw new TokenRefused(audience, res.status, await reasonOf(res));
      if (!res.ok) throw new Error(`OAuth token endpoint answered ${res.status}`);
      const json = (await res.json()) as { access_token?: string; expires_in?: number };
      if (!json.access_token) throw new Error('OAuth token endpoint answered without access_token');
      const life = Math.max(30, json.expires_in ?? 300);
      return { token: json.access_token, renewAt: Date.now() + (life - 15) * 1000 };
    })().finally(() => {
      this.oauthPending.delete(audience);
    });
    this.oauthPending.set(audience, request);
    return request;
  }
}

/** `error_description` (or `error`) of an OAuth error answer (RFC 6749 5.2), at most 200 characters. */
async function reasonOf(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: unknown; error_description?: unknown };
    const reason = body.error_description ?? body.error;
    return typeof reason === 'string' ? reason.slice(0, 200) : '';
  } catch {
    return '';
  }
}
