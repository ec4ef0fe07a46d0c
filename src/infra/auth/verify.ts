import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { type ClaimPaths, type Principal, principalFrom } from './principal';

export class AuthError extends Error {
  /** the identity provider could not be reached: not the caller's fault (503) */
  unavailable = false;
}

export interface VerifierOptions {
  /** remote JWKS of the identity provider; cached, refreshed on unknown kid */
  jwksUrl?: string;
  /** local keys (demo mode: the coordinator's own key) */
  localJwks?: { keys: object[] };
  issuer?: string;
  audience?: string;
  claims: ClaimPaths;
}

export type Verifier = (token: string) => Promise<Principal>;

const ALGORITHMS = ['RS256', 'ES256'];

/** Verifies a bearer JWT (signature, exp/nbf, issuer and audience when configured) and reads who it is. */
export function createVerifier(opts: VerifierOptions): Verifier {
  let keys: JWTVerifyGetKey;
  if (opts.jwksUrl) {
    keys = createRemoteJWKSet(new URL(opts.jwksUrl), {
      cacheMaxAge: 10 * 60_000,
      cooldownDuration: 30_000,
      timeoutDuration: 5_000,
    });
  } else if (opts.localJwks) {
    keys = createLocalJWKSet(opts.localJwks as Parameters<typeof createLocalJWKSet>[0]);
  } else {
    throw new Error('a verifier needs AUTH_JWKS_URL or local keys');
  }
  return async (token: string) => {
    try {
      // a key id is required: with several keys (rotation) a token without one cannot be placed
      if (!decodeProtectedHeader(token).kid) throw new AuthError('Token header has no key id (kid).');
      const { payload } = await jwtVerify(token, keys, {
        algorithms: ALGORITHMS,
        issuer: opts.issuer,
        audience: opts.audience,
        clockTolerance: 30,
      });
      if (payload.exp === undefined) throw new AuthError('Token has no expiry (exp).');
      return principalFrom(payload, opts.claims);
    } catch (err) {
      const e = new AuthError(reason(err));
      e.unavailable =
        err instanceof errors.JWKSTimeout || (err instanceof TypeError && /fetch/i.test(err.message));
      throw e;
    }
  };
}

function reason(err: unknown): string {
  if (err instanceof AuthError) return err.message;
  if (err instanceof errors.JWTExpired) return 'Token has expired.';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return 'Token is not valid yet (nbf).';
    if (err.claim === 'aud') return 'Token audience is not accepted.';
    if (err.claim === 'iss') return 'Token issuer is not accepted.';
    return `Token claim "${err.claim}" is not valid.`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'Token algorithm is not allowed.';
  if (err instanceof errors.JWKSNoMatchingKey) return 'Token is signed with an unknown key.';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'Token signature is invalid.';
  if (err instanceof errors.JWKSTimeout) return 'Could not fetch the identity provider keys in time.';
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return 'Token is malformed.';
  if (err instanceof errors.JOSENotSupported) return 'Token algorithm is not supported.';
  if (err instanceof TypeError || err instanceof SyntaxError) return 'Token is malformed.';
  return 'Token could not be verified.';
}
