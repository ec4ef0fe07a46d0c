import { SignJWT } from 'jose';
import { readLimited } from '../read-limited';
import type { SigningKey } from './keys';

export interface OAuthClientCredentials {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  audience?: string;
}

/** Claims the coordinator always sets itself; extra claims may not replace them. */
const RESERVED = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti']);

/** Deadline of one request to the OAuth token endpoint (the answer included). */
export const TOKEN_REQUEST_TIMEOUT_MS = 10_000;
/** After a failed token request, the next one for that audience waits this long, doubling up to the cap. */
const RETRY_FIRST_MS = 250;
const RETRY_CAP_MS = 5_000;
/** A token endpoint's answer is a short JSON object: more than this is not read. */
const TOKEN_ANSWER_LIMIT = 64 * 1024;

/**
 * No token could be had for a call. `transient`: the endpoint was out of reach or answered 5xx,
 * 408 or 429, so asking again later may work; otherwise it refused (4xx: a revoked grant, a wrong
 * secret) and asking again will not. `retryAt` (epoch ms): when the next request for this audience
 * may go out (until then the same error is returned at once, so callers never storm the endpoint).
 */
export class TokenError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly retryAt: number,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

interface Token {
  token: string;
  renewAt: number;
}

/**
 * Bearer tokens for calls to task services: short-lived JWTs signed by the coordinator (audience =
 * the service's own `token_audience`, else its URL; plus configured extra claims such as
 * `gty: client-credentials` for services that accept only machine tokens), cached per audience
 * until shortly before they expire; or, when configured, an access token from an OAuth
 * client-credentials endpoint (per audience too: OAUTH_AUDIENCE unless the service names its own).
 * OAuth token requests are single-flight per (endpoint, audience), each with a deadline; a failed
 * one is remembered with a growing pause before the endpoint is asked again for that audience.
 */
export class OutboundTokens {
  private readonly cache = new Map<string, Token>();
  private readonly oauthPending = new Map<string, Promise<Token>>();
  private readonly oauthFailures = new Map<string, { error: TokenError; count: number }>();
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

  /** the token endpoint, when tokens come from one (for messages) */
  get tokenUrl(): string | undefined {
    return this.oauth?.tokenUrl;
  }

  /**
   * `serviceUrl`: where the call goes; `audience`: the service's own audience, when it has one.
   * Throws TokenError when an OAuth token cannot be had.
   */
  async authorization(serviceUrl: string, audience?: string | null): Promise<string> {
    const now = Date.now();
    const oauthAudience = audience ?? this.oauth?.audience ?? '';
    const cacheKey = this.oauth
      ? `oauth:${this.oauth.tokenUrl}\n${oauthAudience}`
      : `jwt:${audience ?? serviceUrl}`;
    const hit = this.cache.get(cacheKey);
    if (hit && hit.renewAt > now) return `Bearer ${hit.token}`;
    const fresh = this.oauth
      ? await this.fromOAuth(cacheKey, oauthAudience)
      : await this.sign(audience ?? serviceUrl);
    this.cache.set(cacheKey, fresh);
    if (this.cache.size > 10_000) this.cache.clear();
    return `Bearer ${fresh.token}`;
  }

  private async sign(audience: string): Promise<Token> {
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

  private fromOAuth(key: string, audience: string): Promise<Token> {
    const pending = this.oauthPending.get(key);
    if (pending) return pending;
    const failed = this.oauthFailures.get(key);
    if (failed && failed.error.retryAt > Date.now()) return Promise.reject(failed.error);
    const request = this.requestToken(audience)
      .then(
        (token) => {
          this.oauthFailures.delete(key);
          return token;
        },
        (err: unknown) => {
          const count = (failed?.count ?? 0) + 1;
          const pause = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** (count - 1));
          const e = err as { message?: string; transient?: boolean };
          const error = new TokenError(e?.message ?? String(err), e?.transient !== false, Date.now() + pause);
          this.oauthFailures.set(key, { error, count });
          if (this.oauthFailures.size > 10_000) this.oauthFailures.clear();
          throw error;
        },
      )
      .finally(() => {
        this.oauthPending.delete(key);
      });
    this.oauthPending.set(key, request);
    return request;
  }

  /** One client-credentials request with a deadline; errors carry `transient` (see TokenError). */
  private async requestToken(audience: string): Promise<Token> {
    const o = this.oauth!;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: o.clientId,
      client_secret: o.clientSecret,
    });
    if (audience) body.set('audience', audience);
    const endpoint = `the OAuth token endpoint ${o.tokenUrl}`;
    const timeout = AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS);
    const fail = (message: string, transient: boolean) => Object.assign(new Error(message), { transient });
    let res: Response;
    let read: Awaited<ReturnType<typeof readLimited>>;
    try {
      res = await this.fetchFn(o.tokenUrl, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        signal: timeout,
      });
      read = await readLimited(res, TOKEN_ANSWER_LIMIT);
    } catch (err) {
      const why = timeout.aborted
        ? `did not answer within ${TOKEN_REQUEST_TIMEOUT_MS} ms`
        : `is out of reach (${(err as Error)?.message ?? String(err)})`;
      throw fail(`${endpoint} ${why}`, true);
    }
    if (read.tooLarge) throw fail(`${endpoint} answered more than ${TOKEN_ANSWER_LIMIT} bytes`, false);
    const text = read.text;
    if (!res.ok) {
      // OAuth errors: {"error": "access_denied", "error_description": "..."}
      let detail = text.slice(0, 200);
      try {
        const e = JSON.parse(text) as { error?: unknown; error_description?: unknown };
        if (typeof e.error === 'string')
          detail = typeof e.error_description === 'string' ? `${e.error}: ${e.error_description}` : e.error;
      } catch {
        // not JSON: the text as it came
      }
      const transient = res.status >= 500 || res.status === 408 || res.status === 429;
      throw fail(
        `${endpoint} answered ${res.status}${detail ? ` (${detail.slice(0, 200)})` : ''}`,
        transient,
      );
    }
    let json: { access_token?: unknown; expires_in?: unknown };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw fail(`${endpoint} answered ${res.status} without JSON`, false);
    }
    if (typeof json?.access_token !== 'string' || !json.access_token)
      throw fail(`${endpoint} answered without access_token`, false);
    const expiresIn = typeof json.expires_in === 'number' ? json.expires_in : 300;
    const life = Math.max(30, expiresIn);
    return { token: json.access_token, renewAt: Date.now() + (life - 15) * 1000 };
  }
}
