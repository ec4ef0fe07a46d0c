import type { Context, MiddlewareHandler } from 'hono';
import { Forbidden, Unauthorized } from '../../domain/errors';
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
        throw Unauthorized('Authentication credentials were not provided.');
      }
    }
    return next();
  };
}

async function principalOf(c: Context, auth: Auth): Promise<Principal | null> {
  const header = c.req.header('authorization');
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw Unauthorized('Authorization header must be "Bearer <token>".');
  try {
    return await auth.verify!(match[1]!);
  } catch (err) {
    if (err instanceof AuthError && err.unavailable) {
      throw new ApiError(503, { detail: 'The identity provider cannot be reached; retry shortly.' });
    }
    throw Unauthorized(err instanceof Error ? err.message : 'Token could not be verified.');
  }
}

/** The caller must hold one of the roles (or, with `service`, be a machine client). */
export function requireRole(roles: Role[], opts: { service?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const p = c.get('principal');
    if (!p) throw Unauthorized('Authentication credentials were not provided.');
    if (!hasRole(p, ...roles) && !(opts.service && p.service)) {
      throw Forbidden(
        `You do not have permission to perform this action (needs ${roles.join(' or ')}${opts.service ? ' or a task-service token' : ''}).`,
      );
    }
    return next();
  };
}
