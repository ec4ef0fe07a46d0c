import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Context, Hono } from 'hono';
import type { Child } from 'hono/jsx';
import { isLoopbackHost } from '../../config';
import { AUTH_REFUSALS } from '../../domain/errors';
import { KF_ID_PATTERN } from '../../domain/ids';
import { isReleaseState } from '../../domain/lifecycle/states';
import { isUnavailable } from '../../infra/errors';
import { listReleases } from '../features/releases/queries';
import { type AppEnv, readBearer } from '../http/auth';
import type { GatewayDeps } from '../http/context';
import { handsOutDevelopmentTokens, isLocalRequest } from '../http/dev-token';
import { LIST_PAGE_SIZE, lastHealthCheck, listServices, listStudies, releaseDetail } from './data';
import {
  Layout,
  type LayoutProps,
  Message,
  NeedsToken,
  NewReleasePage,
  type PageKind,
  ReleasePage,
  ReleasesPage,
  ServicesPage,
} from './views';

/** What the dashboard needs from the gateway: it only reads; changes go through the REST API. */
export type UiDeps = Pick<GatewayDeps, 'db' | 'config' | 'auth'> & Partial<Pick<GatewayDeps, 'log'>>;

/** Asks for the main content only (the client script swaps it in after signing in, or to refresh). */
export const FRAGMENT_HEADER = 'x-ui-fragment';

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};
const assetCache = new Map<string, Uint8Array>();
async function asset(name: string): Promise<Uint8Array | undefined> {
  if (!(name in ASSETS)) return undefined;
  let bytes = assetCache.get(name);
  if (!bytes) {
    bytes = new Uint8Array(await readFile(new URL(`./assets/${name}`, import.meta.url)));
    assetCache.set(name, bytes);
  }
  return bytes;
}
let assetVersion: Promise<string> | undefined;
const versionOfAssets = () => {
  assetVersion ??= Promise.all([asset('app.js'), asset('app.css')]).then((files) => {
    const h = createHash('sha256');
    for (const f of files) if (f) h.update(f);
    return h.digest('hex').slice(0, 12);
  });
  return assetVersion;
};

const isLoopbackUrl = (url: string) => {
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
};

/**
 * Demo mode: the coordinator verifies tokens with its own key, is not in production, says it is
 * reached on this machine only (PUBLIC_URL on loopback) and lets anyone read. Only then do pages
 * carry an ADMIN token, and only to a caller on this machine (the peer address the server saw).
 */
const isDemo = (deps: UiDeps) =>
  handsOutDevelopmentTokens(deps) && deps.config.PUBLIC_READS && isLoopbackUrl(deps.config.PUBLIC_URL);

/** A page body answered with another status than 200. */
class WithStatus {
  constructor(
    readonly status: 404,
    readonly body: Child,
  ) {}
}

type ReadAccess = { ok: true } | { ok: false; status: 401 | 503; reason?: string };

type PageOpts = Omit<LayoutProps, 'assetVersion' | 'publicReads' | 'demoToken'>;

/** In demo mode, an ADMIN token for callers on this machine (minted again after an hour). */
function demoTokens(deps: UiDeps) {
  let demo: { token: string; at: number } | undefined;
  return async (c: Context<AppEnv>) => {
    if (!isDemo(deps) || !(await isLocalRequest(c))) return undefined;
    if (!demo || Date.now() - demo.at > 3600_000) {
      demo = {
        token: await deps.auth.mint!({ username: 'demo-admin', roles: ['ADMIN'], ttl: '12h' }),
        at: Date.now(),
      };
    }
    return demo.token;
  };
}

/** Whether the request may see data: reads are public, or its bearer token verifies. */
async function readAccess({ auth, config }: UiDeps, c: Context<AppEnv>): Promise<ReadAccess> {
  if (!auth.verify) return { ok: true };
  const bearer = await readBearer(c.req.header('authorization'), auth);
  if (bearer.kind === 'principal') return { ok: true };
  if (bearer.kind === 'anonymous') return config.PUBLIC_READS ? { ok: true } : { ok: false, status: 401 };
  return { ok: false, status: bearer.status, reason: bearer.reason };
}

/** `page` wraps a body in the layout; `render` answers a page request (or only its main content). */
function pageRenderer(deps: UiDeps) {
  const { auth, config } = deps;
  const demoToken = demoTokens(deps);
  const page = async (c: Context<AppEnv>, opts: PageOpts, body: Child) => (
    <Layout
      {...opts}
      assetVersion={await versionOfAssets()}
      publicReads={!auth.verify || config.PUBLIC_READS}
      demoToken={await demoToken(c)}
    >
      {body}
    </Layout>
  );
  /** Renders a page: the whole document, or only the main content when the script asks for it. */
  const render = async (c: Context<AppEnv>, opts: PageOpts & { body: () => Promise<Child | WithStatus> }) => {
    c.header('Cache-Control', 'no-store');
    c.header('Vary', 'Authorization, X-UI-Fragment');
    const fragment = c.req.header(FRAGMENT_HEADER) !== undefined;
    const access = await readAccess(deps, c);
    if (!access.ok) {
      const reason = access.reason ?? AUTH_REFUSALS.noCredentials;
      if (fragment) return c.json({ detail: reason }, access.status);
      return c.html(
        await page(c, { ...opts, needsToken: access.status === 401 && !access.reason }, <NeedsToken />),
        access.status,
      );
    }
    const out = await opts.body();
    const { status, body } = out instanceof WithStatus ? out : { status: 200, body: out };
    // biome-ignore lint/complexity/noUselessFragments: renders the body alone as the HTML answer
    if (fragment) return c.html(<>{body}</>, status as 200);
    return c.html(await page(c, opts, body), status as 200);
  };
  return { page, render };
}

type Pages = ReturnType<typeof pageRenderer>;

/** live updates replay a little history, so nothing between this read and the subscription is missed */
const since = () => new Date(Date.now() - 3000).toISOString();

/** GET /assets/:file: the script and the stylesheet (cached for a day when versioned). */
async function serveAsset(c: Context<AppEnv, '/assets/:file'>) {
  const name = c.req.param('file');
  const bytes = await asset(name);
  if (!bytes) return c.json({ detail: 'Not found.' }, 404);
  c.header('Content-Type', ASSETS[name]!);
  c.header('Cache-Control', c.req.query('v') ? 'public, max-age=86400' : 'no-cache');
  c.header('X-Content-Type-Options', 'nosniff');
  return c.body(bytes as Uint8Array<ArrayBuffer>);
}

/** A page that failed: 503 while the database is unreachable, else 500 (logged). */
function errorHandler(deps: UiDeps, { page }: Pages) {
  return async (err: Error, c: Context<AppEnv>) => {
    const unavailable = isUnavailable(err);
    if (!unavailable) deps.log?.error({ err }, 'dashboard page failed');
    const status = unavailable ? 503 : 500;
    const text = unavailable
      ? 'The database cannot be reached right now; this page will work again when it is back.'
      : 'Something went wrong while rendering this page; the error is in the coordinator log.';
    if (c.req.header(FRAGMENT_HEADER) !== undefined) return c.json({ detail: text }, status);
    return c.html(
      await page(c, { title: 'Error', page: 'error' }, <Message title="Unavailable">{text}</Message>),
      status,
    );
  };
}

/** The releases list (filtered by state, paged by offset). */
function releasesPage({ db }: UiDeps, { render }: Pages) {
  return (c: Context<AppEnv>) => {
    const rawState = c.req.query('state') || undefined;
    const state = rawState && isReleaseState(rawState) ? rawState : undefined;
    const offset = Math.max(0, Math.min(1_000_000, Number.parseInt(c.req.query('offset') ?? '0', 10) || 0));
    return render(c, {
      title: 'Releases',
      page: 'releases',
      since: since(),
      body: async () => {
        const { records, total } = await listReleases(db, { state }, { limit: LIST_PAGE_SIZE, offset });
        return <ReleasesPage records={records} total={total} state={state} offset={offset} />;
      },
    });
  };
}

/** One release, or 404 for an id that names none. */
function releasePage({ db }: UiDeps, { render }: Pages) {
  return (c: Context<AppEnv, '/releases/:id'>) => {
    const id = c.req.param('id');
    return render(c, {
      title: id,
      page: 'release',
      release: KF_ID_PATTERN.test(id) ? id : undefined,
      since: since(),
      body: async () => {
        const detail = KF_ID_PATTERN.test(id) ? await releaseDetail(db, id) : undefined;
        if (!detail) {
          return new WithStatus(
            404,
            <Message title="Release not found">
              There is no release {id}. <a href="/ui">All releases</a>
            </Message>,
          );
        }
        return <ReleasePage detail={detail} />;
      },
    });
  };
}

/**
 * The operator dashboard, server-rendered with hono/jsx and kept live by a small script
 * (`/ui/assets/app.js`) that follows GET /events/stream. Pages read Postgres like the REST
 * routes do; every change (start, publish, cancel, enable/disable, notes) is a REST call from
 * the browser with the signed-in token, so the API's rules apply unchanged.
 *
 * It authenticates by itself (the pages and assets need no token; data is shown when reads are
 * public or the request's bearer token verifies), so mount it before the gateway's auth
 * middleware, e.g. `app.route('/ui', uiRoutes(deps))`.
 */
export function uiRoutes(deps: UiDeps): Hono<AppEnv> {
  const { db, config } = deps;
  const pages = pageRenderer(deps);
  const { page, render } = pages;
  const app = new Hono<AppEnv>({ strict: false });
  app.onError(errorHandler(deps, pages));
  app.get('/assets/:file', serveAsset);
  app.get('/', releasesPage(deps, pages));
  app.get('/releases', releasesPage(deps, pages));
  app.get('/releases/new', (c) =>
    render(c, {
      title: 'Start a release',
      page: 'new-release',
      body: async () => <NewReleasePage studies={await listStudies(db)} key={crypto.randomUUID()} />,
    }),
  );
  app.get('/releases/:id', releasePage(deps, pages));
  app.get('/services', (c) =>
    render(c, {
      title: 'Task services',
      page: 'services',
      body: async () => (
        <ServicesPage
          services={await listServices(db)}
          lastCheck={(s) => lastHealthCheck(s, config.HEALTH_INTERVAL_MS)}
          threshold={config.HEALTH_FAILURE_THRESHOLD}
        />
      ),
    }),
  );
  app.get('*', async (c) =>
    c.html(
      await page(
        c,
        { title: 'Not found', page: 'error' as PageKind },
        <Message title="Not found">
          No such page. <a href="/ui">All releases</a>
        </Message>,
      ),
      404,
    ),
  );
  return app;
}
