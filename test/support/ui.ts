import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { uiRoutes } from '../../src/gateway/ui/routes';
import { CHROMIUM, MISSING_CHROMIUM } from './services';
import { startTestSystem, type TestSystem } from './system';

export interface UiSystem {
  t: TestSystem;
  /** where the browser goes: /ui and the REST API on one origin */
  url: string;
  stop(): Promise<void>;
}

/**
 * A test system whose gateway serves the dashboard. When the gateway does not mount /ui (yet),
 * a second server on a free loopback port serves /ui with `uiRoutes` and passes everything else
 * (REST API, SSE feed) to the gateway app, so the browser sees one origin either way.
 */
export async function startUiSystem(label: string, env: Record<string, string> = {}): Promise<UiSystem> {
  const t = await startTestSystem(label, env);
  const probe = await fetch(`${t.url}/ui/assets/app.css`).catch(() => undefined);
  if (probe?.ok && (probe.headers.get('content-type') ?? '').startsWith('text/css')) {
    return { t, url: t.url, stop: () => t.stop() };
  }
  const gateway = t.system.app;
  if (!gateway) {
    await t.stop();
    throw new Error('the test system runs no gateway: /ui cannot be served');
  }
  const front = new Hono();
  front.route('/ui', uiRoutes({ db: t.system.database.db, config: t.system.config, auth: t.system.auth }));
  front.all('*', (c) => gateway.fetch(c.req.raw));
  const server = Bun.serve({ port: 0, hostname: '127.0.0.1', fetch: front.fetch, idleTimeout: 60 });
  return {
    t,
    url: `http://127.0.0.1:${server.port}`,
    async stop() {
      await server.stop(true);
      await t.stop();
    },
  };
}

export const ARTIFACTS = join(import.meta.dir, '..', 'artifacts');

/** Headless Debian chromium driven by playwright-core, with a fresh profile; loopback only. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(MISSING_CHROMIUM);
  const profile = await mkdtemp(join(tmpdir(), 'rc-ui-chromium-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** A full-page screenshot in test/artifacts/ (git-ignored), for a person to look at. */
export const screenshot = (page: Page, name: string) =>
  page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });

/** Opens a dashboard page in demo mode and waits until the demo ADMIN token is in use. */
export async function openSignedIn(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('#who', { hasText: 'demo-admin' }).waitFor({ timeout: 5000 });
  return page;
}

/** Clicks a button of the page, then the confirming button of the dialog it opens. */
export async function clickAndConfirm(page: Page, button: string, dialog: string, confirm = button) {
  await page.getByRole('button', { name: button }).click();
  await page.getByRole('dialog', { name: dialog }).getByRole('button', { name: confirm }).click();
}
