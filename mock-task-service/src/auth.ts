/**
 * Checks the bearer JWT of an incoming request, the way a task service that verifies the
 * coordinator (or only its identity provider's machine tokens) would.
 */
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

/** Value a required claim must have (compared with ===). */
export type ClaimValue = string | number | boolean;

export interface TokenRules {
  /** JWKS the token must verify against. */
  jwksUrl: string;
  /** Expected `aud` (any string: a URL, or a name an identity provider gave the service). */
  audience?: string;
  /** Claims the token must carry with exactly these values, e.g. { gty: 'client-credentials' }. */
  requiredClaims?: Record<string, ClaimValue>;
}

/** Returns why a token is refused, or null when it is accepted. */
export type TokenCheck = (authorization: string | undefined) => Promise<string | null>;

const MAX_CACHED_TOKENS = 10_000;

/** Problems with the required claims of a verified payload (empty when all match). */
export function claimProblems(
  payload: Record<string, unknown>,
  required: Record<string, ClaimValue> | undefined,
): string[] {
  const problems: string[] = [];
  for (const [claim, expected] of Object.entries(required ?? {})) {
    const actual = payload[claim];
    if (actual === undefined)
      problems.push(`claim "${claim}" is missing (expected ${JSON.stringify(expected)})`);
    else if (actual !== expected) {
      problems.push(`claim "${claim}" is ${JSON.stringify(actual)} (expected ${JSON.stringify(expected)})`);
    }
  }
  return problems;
}

function verifyFailure(e: unknown, audience: string | undefined): string {
  if (e instanceof errors.JWTClaimValidationFailed && e.claim === 'aud' && audience !== undefined) {
    return `${e.message} (expected ${JSON.stringify(audience)})`;
  }
  return (e as Error).message || (e as { code?: string }).code || 'verification failed';
}

export function createTokenCheck(rules: TokenRules): TokenCheck {
  const jwks = createRemoteJWKSet(new URL(rules.jwksUrl));
  /** Accepted tokens until their exp (verification is the expensive part of a request). */
  const accepted = new Map<string, number>();
  return async (authorization) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) return 'missing bearer token';
    const token = m[1]!;
    const until = accepted.get(token);
    if (until !== undefined && until > Date.now()) return null;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, jwks, rules.audience ? { audience: rules.audience } : {}));
    } catch (e) {
      return `invalid token: ${verifyFailure(e, rules.audience)}`;
    }
    const problems = claimProblems(payload, rules.requiredClaims);
    if (problems.length > 0) return `token refused: ${problems.join('; ')}`;
    if (accepted.size >= MAX_CACHED_TOKENS) accepted.clear();
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : Date.now() + 60_000;
    accepted.set(token, exp);
    return null;
  };
}
