import { type Context, Hono } from 'hono';
import type { ConnInfo } from 'hono/conninfo';
import { isLoopbackHost } from '../../config';
import type { AppEnv } from './auth';
import type { GatewayDeps } from './context';

type ConnInfoOf = (c: Context) => ConnInfo;

declare const Deno: unknown;

let connInfoOf: Promise<ConnInfoOf> | undefined;
/** hono's peer-address helper of the runtime we run on (each adapter touches its own runtime's globals when loaded) */
const runtimeConnInfo = (): Promise<ConnInfoOf> => {
  connInfoOf ??=
    typeof Bun !== 'undefined'
      ? import('hono/bun').then((m) => m.getConnInfo)
      : typeof Deno !== 'undefined'
        ? import('hono/deno').then((m) => m.getConnInfo)
        : import('@hono/node-server/conninfo').then((m) => m.getConnInfo);
  return connInfoOf;
};

/** The address of the peer the server accepted the connection from (never a header); undefined when unknown. */
export async function peerAddress(c: Context): Promise<string | undefined> {
  try {
    return (await runtimeConnInfo())(c).remote.address;
  } catch {
    return undefined; // no server behind this request (app.request in tests): unknown, so not local
  }
}

const RELAYED = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-real-ip'];

/**
 * A request made on this machine: the connection comes from a loopback address (as the server saw
 * it), no proxy relayed it (a proxy on this machine would make every remote caller look local), and
 * it names a loopback host (a page on another site whose name was rebound to 127.0.0.1 sends its
 * own name). Headers can only make a request count as not local, never as local.
 */
export async function isLocalRequest(c: Context): Promise<boolean> {
  if (RELAYED.some((h) => c.req.header(h) !== undefined)) return false;
  const host = c.req.header('host');
  if (!host || !isLoopbackHost(host.replace(/:\d+$/, ''))) return false;
  const peer = await peerAddress(c);
  return peer !== undefined && isLoopbackHost(peer);
}

/** No identity provider and not production: the coordinator's own key signs the tokens it accepts. */
export const handsOutDevelopmentTokens = (deps: Pick<GatewayDeps, 'auth' | 'config'>) =>
  deps.auth.mode === 'local' && !!deps.auth.mint && deps.config.NODE_ENV !== 'production';

const TTL_S = 12 * 3600;
const KINDS = {
  admin: { username: 'local-admin', roles: ['ADMIN'], service: false },
  service: { username: 'local-task-service', roles: [] as string[], service: true },
} as const;

/**
 * POST /dev/token (`rc token --dev`): in development, a 12-hour ADMIN token, or with
 * `{"kind":"service"}` a task-service token (for callbacks), for callers on this machine only.
 * Mount it before the gateway's auth middleware: the caller has no token yet.
 */
export function devTokenRoutes(deps: Pick<GatewayDeps, 'auth' | 'config'>) {
  return new Hono<AppEnv>().post('/token', async (c) => {
    c.header('Cache-Control', 'no-store');
    if (!handsOutDevelopmentTokens(deps))
      return c.json(
        {
          detail:
            'This coordinator hands out no development tokens: it checks tokens of an identity provider (AUTH_JWKS_URL), has auth disabled, or runs in production.',
        },
        404,
      );
    if (!(await isLocalRequest(c)))
      return c.json(
        {
          detail:
            "Development tokens are handed out only to callers on the coordinator's own machine (a loopback address and host name, not through a proxy).",
        },
        403,
      );
    const body = (await c.req.json().catch(() => ({}))) as { kind?: unknown };
    const kind = body?.kind ?? 'admin';
    if (kind !== 'admin' && kind !== 'service')
      return c.json({ kind: ['Must be "admin" or "service".'] }, 400);
    const who = KINDS[kind];
    const token = await deps.auth.mint!({
      username: who.username,
      roles: [...who.roles],
      service: who.service,
      ttl: `${TTL_S}s`,
    });
    return c.json({ token, kind, username: who.username, roles: who.roles, expires_in: TTL_S }, 200);
  });
}
