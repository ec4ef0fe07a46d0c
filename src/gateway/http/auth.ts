import type { Context, MiddlewareHandler } from 'hono';
import { AUTH_REFUSALS, Forbidden, Unauthorized } from '../../domain/errors';
import { type Auth, DISABLED_PRINCIPAL } from '../../infra/auth';
import { hasRole, type Principal, type Role } from '../../infra/auth/principal';
import { AuthError } from '../../infra/auth/verify';
import { ApiError } from './errors';

export type AppEnv = { Variables: { principal: Principal | null; requestId: string } };

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Reads `Authorization: Bearer <JWT>`. A missing header means anonymous; a header that does not
 * verify is a 401 with the reason, never a silent anonymous. Anonymous writes are refused here;
 * anonymous reads too when PUBLIC_READS=false.
 */
export function authenticate(
  auth: Auth,
  opts: {
    publicReads: boolean;
    anonymousPaths: (path: string) => boolean;
    /** writes the route itself answers for anonymous callers (credential-less task callbacks) */
    anonymousWrites?: (method: string, path: string) => boolean;
  },
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!auth.verify) {
      c.set('principal', DISABLED_PRINCIPAL);
      return next();
    }
    const principal = await principalOf(c, auth);
    c.set('principal', principal);
    if (!principal && !opts.anonymousPaths(c.req.path)) {
      if (opts.anonymousWrites?.(c.req.method, c.req.path)) return next();
      if (!READ_METHODS.has(c.req.method) || !opts.publicReads) {
        throw Unauthorized(AUTH_REFUSALS.noCredentials);
      }
    }
    return next();
  };
}

/** What an `Authorization` header says about its caller. */
export type Bearer =
  | { kind: 'anonymous' }
  | { kind: 'principal'; principal: Principal }
  | { kind: 'refused'; status: 401 | 503; reason: string };

/**
 * Reads `Authorization: Bearer <JWT>`, once for every surface. No header is anonymous; so is
 * `Bearer null` (or `undefined`, or nothing) with `emptyIsAnonymous`, which the logged-out web UI
 * sends to GraphQL. Any other token must verify.
 */
export async function readBearer(
  header: string | undefined,
  auth: Auth,
  opts: { emptyIsAnonymous?: boolean } = {},
): Promise<Bearer> {
  if (!header?.trim()) return { kind: 'anonymous' };
  const match = (opts.emptyIsAnonymous ? /^Bearer(?:\s+(\S*))?\s*$/i : /^Bearer\s+(\S+)\s*$/i).exec(
    header.trim(),
  );
  if (!match) return { kind: 'refused', status: 401, reason: AUTH_REFUSALS.malformed };
  const token = match[1] ?? '';
  if (opts.emptyIsAnonymous && (token === '' || token === 'null' || token === 'undefined'))
    return { kind: 'anonymous' };
  try {
    return { kind: 'principal', principal: await auth.verify!(token) };
  } catch (err) {
    if (err instanceof AuthError && err.unavailable)
      return { kind: 'refused', status: 503, reason: AUTH_REFUSALS.providerAway };
    return {
      kind: 'refused',
      status: 401,
      reason: err instanceof Error ? err.message : AUTH_REFUSALS.unverified,
    };
  }
}

async function principalOf(c: Context, auth: Auth): Promise<Principal | null> {
  const bearer = await readBearer(c.req.header('authorization'), auth);
  if (bearer.kind === 'principal') return bearer.principal;
  if (bearer.kind === 'anonymous') return null;
  if (bearer.status === 503) throw new ApiError(503, { detail: bearer.reason });
  throw Unauthorized(bearer.reason);
}

/** The caller must hold one of the roles (or, with `service`, be a machine client). */
export function requireRole(roles: Role[], opts: { service?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const p = c.get('principal');
    if (!p) throw Unauthorized(AUTH_REFUSALS.noCredentials);
    if (!hasRole(p, ...roles) && !(opts.service && p.service)) {
      throw Forbidden(
        `You do not have permission to perform this action (needs ${roles.join(' or ')}${opts.service ? ' or a task-service token' : ''}).`,
      );
    }
    return next();
  };
}
