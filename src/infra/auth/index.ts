import { SignJWT } from 'jose';
import type { Config } from '../../config';
import type { Db } from '../db/client';
import type { Logger } from '../logger';
import { loadSigningKey, publicJwks, type SigningKey } from './keys';
import { OutboundTokens } from './outbound';
import type { Principal } from './principal';
import { createVerifier, type Verifier } from './verify';

export type { Principal } from './principal';

/** Audience and issuer of tokens the coordinator mints for itself in demo mode. */
export const LOCAL_AUDIENCE = 'release-coordinator';
export const LOCAL_ISSUER = 'release-coordinator-local';

export interface Auth {
  mode: 'jwks' | 'local' | 'disabled';
  /** undefined when auth is disabled: every caller is treated as ADMIN */
  verify?: Verifier;
  outbound: OutboundTokens;
  jwks: { keys: object[] };
  /** demo/test mode only: a token the coordinator itself accepts */
  mint?: (p: {
    username: string;
    roles: string[];
    groups?: string[];
    service?: boolean;
    ttl?: string;
  }) => Promise<string>;
}

export class AuthConfigError extends Error {}

/** Why this configuration may not start (checked before anything else starts), or undefined. */
export function authConfigProblem(config: Config): string | undefined {
  if (config.AUTH_DISABLED || config.AUTH_JWKS_URL) return undefined;
  if (config.NODE_ENV === 'production') {
    return 'invalid configuration: AUTH_JWKS_URL: required in production (or set AUTH_DISABLED=true to run without authentication)';
  }
  return undefined;
}

/**
 * Incoming: a remote JWKS (AUTH_JWKS_URL), or in development/test/demo the coordinator's own key
 * (so it runs without an identity provider), or nothing at all when AUTH_DISABLED=true.
 * Outgoing: tokens signed with the coordinator's key, or from an OAuth client-credentials endpoint.
 */
export async function createAuth(config: Config, db: Db, log: Logger): Promise<Auth> {
  const key = await loadSigningKey(db, config.SIGNING_KEY);
  const oauth =
    config.OAUTH_TOKEN_URL && config.OAUTH_CLIENT_ID && config.OAUTH_CLIENT_SECRET
      ? {
          tokenUrl: config.OAUTH_TOKEN_URL,
          clientId: config.OAUTH_CLIENT_ID,
          clientSecret: config.OAUTH_CLIENT_SECRET,
          audience: config.OAUTH_AUDIENCE,
        }
      : undefined;
  const outbound = new OutboundTokens(
    key,
    config.PUBLIC_URL,
    config.OUTBOUND_TOKEN_TTL_S,
    oauth,
    fetch,
    config.OUTBOUND_TOKEN_CLAIMS,
  );
  const jwks = publicJwks(key);
  const claims = {
    roles: config.AUTH_ROLES_CLAIM,
    groups: config.AUTH_GROUPS_CLAIM,
    username: config.AUTH_USERNAME_CLAIM,
  };
  if (config.AUTH_DISABLED) {
    log.warn(
      'AUTH IS DISABLED (AUTH_DISABLED=true): every request is treated as ADMIN. Never do this on a reachable host.',
    );
    return { mode: 'disabled', outbound, jwks };
  }
  if (config.AUTH_JWKS_URL) {
    return {
      mode: 'jwks',
      verify: createVerifier({
        jwksUrl: config.AUTH_JWKS_URL,
        issuer: config.AUTH_ISSUER,
        audience: config.AUTH_AUDIENCE,
        claims,
      }),
      outbound,
      jwks,
    };
  }
  const problem = authConfigProblem(config);
  if (problem) throw new AuthConfigError(problem);
  return {
    mode: 'local',
    verify: createVerifier({ localJwks: jwks, issuer: LOCAL_ISSUER, audience: LOCAL_AUDIENCE, claims }),
    outbound,
    jwks,
    mint: (p) => mintLocal(key, claims, p),
  };
}

async function mintLocal(
  key: SigningKey,
  claims: { roles: string; groups: string; username: string },
  p: { username: string; roles: string[]; groups?: string[]; service?: boolean; ttl?: string },
): Promise<string> {
  return new SignJWT({
    [claims.username]: p.username,
    [claims.roles]: p.roles,
    [claims.groups]: p.groups ?? [],
    ...(p.service ? { gty: 'client-credentials' } : {}),
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(LOCAL_ISSUER)
    .setAudience(LOCAL_AUDIENCE)
    .setSubject(p.username)
    .setIssuedAt()
    .setExpirationTime(p.ttl ?? '30d')
    .sign(key.privateKey);
}

export const DISABLED_PRINCIPAL: Principal = {
  subject: 'auth-disabled',
  username: 'auth-disabled',
  roles: ['ADMIN'],
  groups: [],
  service: true,
};
