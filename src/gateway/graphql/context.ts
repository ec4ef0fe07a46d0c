import { GraphQLError } from 'graphql';
import { AUTH_REFUSALS } from '../../domain/errors';
import { type Auth, DISABLED_PRINCIPAL } from '../../infra/auth';
import { hasRole, type Principal, type Role } from '../../infra/auth/principal';
import type { Db } from '../../infra/db/client';
import { inIds } from '../../infra/db/raw-select';
import { releases, studies, taskServices, tasks } from '../../infra/db/schema';
import { readBearer } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import type { ApiError } from '../http/errors';

/** Who is asking, read from the bearer token before execution; a token problem becomes a GraphQL error. */
export interface Viewer {
  principal: Principal | null;
  /** ADMIN or DEV: sees every record */
  privileged: boolean;
  /** the token did not verify: every field that depends on the caller answers this error */
  authError?: string;
}

export interface GqlContext {
  deps: GatewayDeps;
  viewer: Viewer;
  loaders: Loaders;
}

const anonymous: Viewer = { principal: null, privileged: false };

/**
 * `Authorization: Bearer <JWT>` → the viewer. No header, and the literal `Bearer null` (or
 * `undefined`, or nothing) that the logged-out UI sends, are anonymous; any other token must verify.
 */
export async function viewerOf(header: string | undefined, auth: Auth): Promise<Viewer> {
  if (!auth.verify) return { principal: DISABLED_PRINCIPAL, privileged: true };
  const bearer = await readBearer(header, auth, { emptyIsAnonymous: true });
  if (bearer.kind === 'anonymous') return anonymous;
  if (bearer.kind === 'refused') return { ...anonymous, authError: bearer.reason };
  return { principal: bearer.principal, privileged: hasRole(bearer.principal, 'ADMIN', 'DEV') };
}

export const gqlError = (message: string, code: string, extra: Record<string, unknown> = {}) =>
  new GraphQLError(message, { extensions: { code, ...extra } });

const NO_CREDENTIALS = AUTH_REFUSALS.noCredentials;

/** The viewer for a read: a bad token is an error, and so is anonymous when PUBLIC_READS=false. */
export function reader(ctx: GqlContext): Viewer {
  if (ctx.viewer.authError) throw gqlError(ctx.viewer.authError, 'UNAUTHENTICATED');
  if (!ctx.viewer.principal && !ctx.deps.config.PUBLIC_READS)
    throw gqlError(NO_CREDENTIALS, 'UNAUTHENTICATED');
  return ctx.viewer;
}

/** The caller, who must hold one of the roles. */
export function requireRoles(ctx: GqlContext, roles: Role[]): Principal {
  const viewer = reader(ctx);
  if (!viewer.principal) throw gqlError(NO_CREDENTIALS, 'UNAUTHENTICATED');
  if (!hasRole(viewer.principal, ...roles)) {
    throw gqlError(
      `You do not have permission to perform this action (needs ${roles.join(' or ')}).`,
      'FORBIDDEN',
    );
  }
  return viewer.principal;
}

const CODES: Record<number, string> = {
  400: 'BAD_USER_INPUT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  413: 'BAD_USER_INPUT',
  502: 'BAD_GATEWAY',
  503: 'SERVICE_UNAVAILABLE',
};

/** The text of an ApiError: its `detail`, or `field: messages` for each bad field. */
export function apiErrorMessage(err: ApiError): string {
  if (typeof err.body.detail === 'string') return err.body.detail;
  return Object.entries(err.body)
    .map(
      ([field, messages]) => `${field}: ${Array.isArray(messages) ? messages.join(' ') : String(messages)}`,
    )
    .join('; ');
}

/** An ApiError thrown by a shared service as the GraphQL error the UI shows. */
export function fromApiError(err: ApiError, at?: GraphQLError): GraphQLError {
  return new GraphQLError(apiErrorMessage(err), {
    nodes: at?.nodes,
    source: at?.source,
    positions: at?.positions,
    path: at?.path,
    extensions: {
      code: CODES[err.status] ?? 'ERROR',
      status: err.status,
      ...(err.status === 400 && typeof err.body.detail !== 'string' ? { fields: err.body } : {}),
    },
  });
}

// --- per-request batching of lookups by kf_id (one query per table per tick, not one per row) ---

function batchLoader<V>(load: (ids: string[]) => Promise<V[]>, key: (v: V) => string) {
  const cache = new Map<string, Promise<V | undefined>>();
  let queue: Array<{ id: string; resolve: (v: V | undefined) => void; reject: (e: unknown) => void }> = [];
  const flush = async () => {
    const batch = queue;
    queue = [];
    try {
      const ids = [...new Set(batch.map((b) => b.id))];
      const rows: V[] = [];
      for (let i = 0; i < ids.length; i += 500) rows.push(...(await load(ids.slice(i, i + 500))));
      const byId = new Map(rows.map((r) => [key(r), r]));
      for (const b of batch) b.resolve(byId.get(b.id));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  };
  return (id: string): Promise<V | undefined> => {
    let p = cache.get(id);
    if (!p) {
      p = new Promise((resolve, reject) => {
        queue.push({ id, resolve, reject });
        if (queue.length === 1) setTimeout(flush, 0);
      });
      cache.set(id, p);
    }
    return p;
  };
}

export function createLoaders(db: Db) {
  return {
    release: batchLoader(
      (ids) => db.select().from(releases).where(inIds(releases.kfId, ids)),
      (r) => r.kfId,
    ),
    task: batchLoader(
      (ids) => db.select().from(tasks).where(inIds(tasks.kfId, ids)),
      (r) => r.kfId,
    ),
    taskService: batchLoader(
      (ids) => db.select().from(taskServices).where(inIds(taskServices.kfId, ids)),
      (r) => r.kfId,
    ),
    study: batchLoader(
      (ids) => db.select().from(studies).where(inIds(studies.kfId, ids)),
      (r) => r.kfId,
    ),
  };
}
export type Loaders = ReturnType<typeof createLoaders>;
