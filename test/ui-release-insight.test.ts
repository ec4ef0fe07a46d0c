import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { MockHandle } from '../mock-task-service/src/index';
import { createRelease, createStudy, registerMockServices, waitForState } from './support/fixtures';
import {
  clickAndConfirm,
  launchBrowser,
  openSignedIn,
  screenshot,
  startUiSystem,
  type UiSystem,
} from './support/ui';

// Issue #18 on the release page: why a release halted (banner naming the service), who published
// or canceled it, where its time went (one bar per task on a shared time axis, server-rendered so
// it reads without JavaScript, with a table of durations), the service of each event, and
// "Run again".

const SERVICES = ['search-index', 'file-portal', 'variant-store'];

let ui: UiSystem;
let mock: MockHandle;
let studies: string[];
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let context: BrowserContext;
let failedId: string;

beforeAll(async () => {
  ui = await startUiSystem('ui_insight');
  ({ mock } = await registerMockServices(ui.t.api, SERVICES.length, {
    services: SERVICES,
    publishMs: 600,
    // different speeds, so the chart shows which service held the release up
    perService: {
      'search-index': { stageMs: 1200 },
      'file-portal': { stageMs: 2600 },
      'variant-store': { stageMs: 500 },
    },
  }));
  studies = [await createStudy(ui.t.api), await createStudy(ui.t.api)];
  browser = await launchBrowser();
  context = browser.context;
});
afterAll(async () => {
  await browser?.close();
  await mock?.stop();
  await ui?.stop();
});

/** The chart's rows as the browser shows them: service name and task state. */
const chartRows = (page: Page) =>
  page.locator('#phase-chart .chart-row[data-task]').evaluateAll((rows) =>
    rows.map((r) => ({
      service: (r as HTMLElement).dataset.service,
      state: (r as HTMLElement).dataset.state,
      label: r.querySelector('.chart-service')?.textContent,
      phases: [...r.querySelectorAll('rect[data-phase]')].map((x) => (x as SVGElement).dataset.phase),
    })),
  );

describe('release page: where the time went', () => {
  test('a published release: one bar per task named by its service, durations per phase, who published', async () => {
    const release = await createRelease(ui.t.api, studies, {
      name: 'November data release',
      tags: ['monthly'],
      description: 'Adds the November freeze.',
    });
    const page = await openSignedIn(context, `${ui.url}/ui/releases/${release.kf_id}`);

    // the chart follows the release live: the bars grow into staged without a reload
    await page.locator('#release-state[data-state="staged"]').waitFor({ timeout: 15_000 });
    await page
      .locator('#phase-chart .chart-row[data-state="staged"]')
      .nth(SERVICES.length - 1)
      .waitFor({ timeout: 5000 });
    const staged = await chartRows(page);
    expect(staged.map((r) => r.label).sort()).toEqual([...SERVICES].sort());
    for (const row of staged) expect(row.phases).toEqual(['initialize', 'running', 'staged']);

    await clickAndConfirm(page, 'Publish', 'Publish this release?');
    await page.locator('#release-state[data-state="published"]').waitFor({ timeout: 15_000 });
    await page
      .locator('#phase-chart .chart-row[data-state="published"]')
      .nth(SERVICES.length - 1)
      .waitFor({ timeout: 5000 });
    for (const row of await chartRows(page)) {
      expect(row.phases).toEqual(['initialize', 'running', 'staged', 'publishing']);
    }

    // the text equivalent: a duration for every phase of every task, and the legend
    const body = await ui.t.api('GET', `/releases/${release.kf_id}`);
    for (const task of body.body.tasks as Array<{ kf_id: string; states_at: Record<string, string> }>) {
      const ms = (phase: string) =>
        page
          .locator(`#durations tr[data-task="${task.kf_id}"] td[data-phase="${phase}"]`)
          .getAttribute('data-ms');
      const running = Date.parse(task.states_at.staged!) - Date.parse(task.states_at.running!);
      expect(Number(await ms('running'))).toBe(running);
      for (const phase of ['initialize', 'staged', 'publishing'])
        expect(Number(await ms(phase))).toBeGreaterThan(0);
    }
    // the slowest service to stage held the release up
    expect(await page.locator('#longest-work').textContent()).toBe('file-portal');
    expect(await page.locator('#phase-chart .legend li').allTextContents()).toEqual(
      expect.arrayContaining([expect.stringContaining('Running'), expect.stringContaining('Staged')]),
    );
    // who published, and when
    expect(await page.locator('#release-published').textContent()).toContain('by demo-admin');
    expect(body.body.published_by).toBe('demo-admin');
    // every task event names its service
    const taskEvents = page.locator('#timeline li', { hasText: /task TA_/ });
    expect(await taskEvents.count()).toBeGreaterThan(0);
    for (const li of await taskEvents.all())
      expect(SERVICES).toContain((await li.locator('.ev-service').textContent()) ?? '');

    await screenshot(page, 'release-published-timeline.png');
    // the README's picture of the release page (kept in git): UI_README_SCREENSHOT=1 refreshes it
    if (process.env.UI_README_SCREENSHOT) {
      await page.screenshot({
        path: join(import.meta.dir, '..', 'src', 'ui', 'assets', 'release-page.png'),
        fullPage: true,
      });
    }

    // readable without JavaScript: the chart and the durations are in the server's HTML
    const html = await (await fetch(`${ui.url}/ui/releases/${release.kf_id}`)).text();
    const bars = [...html.matchAll(/<div class="chart-row" data-task="TA_\w+" data-service="([^"]+)"/g)];
    expect(bars.map((m) => m[1]).sort()).toEqual([...SERVICES].sort());
    expect(html.match(/<svg class="chart-bar" role="img" aria-label="[^"]+"/g)).toHaveLength(SERVICES.length);
    expect(html).toContain('<table class="durations" id="durations">');

    // dark mode keeps the phases apart (colours and textures)
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'release-published-timeline-dark.png');
    await page.emulateMedia({ colorScheme: 'light' });

    // a phone: the chart fits the screen
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, 'release-published-timeline-phone.png');
    await page.close();
  }, 50_000);

  test('a failed release: the banner names the service, its task and message; events name their service', async () => {
    // variant-store keeps working until the page watches; then its status answers turn into refusals
    mock.setBehaviour({ stageMs: 60_000 }, 'variant-store', 'start');
    const release = await createRelease(ui.t.api, studies, {
      name: 'December data release',
      tags: ['monthly'],
    });
    failedId = release.kf_id;
    const page = await openSignedIn(context, `${ui.url}/ui/releases/${failedId}`);
    await page.locator('#live-status[data-live="on"]').waitFor({ timeout: 5000 });
    await page
      .locator('#phase-chart .chart-row[data-service="variant-store"][data-state="running"]')
      .waitFor({ timeout: 10_000 });
    expect(await page.locator('#halt-area .banner').count()).toBe(0);
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });
    mock.setBehaviour({ httpStatus: 500 }, 'variant-store', 'get_status');

    // the banner appears live when the release halts
    const banner = page.locator('#halt-area .banner[data-reason="failed"]');
    await banner.waitFor({ timeout: 15_000 });
    const failed = await waitForState(ui.t.api, failedId, 'failed');
    await page.locator('#release-state[data-state="failed"]').waitFor({ timeout: 5000 });
    await page.getByRole('heading', { name: 'Release failed', exact: true }).waitFor({ timeout: 5000 });
    const halt = failed.halt as { service_name: string; task: string; task_service: string; message: string };
    expect(halt.service_name).toBe('variant-store');
    const serviceLink = banner.getByRole('link', { name: 'variant-store' });
    expect(await serviceLink.getAttribute('href')).toBe(`/ui/services#${halt.task_service.split('/').pop()}`);
    const taskId = halt.task.split('/').pop()!;
    expect(await banner.getByRole('link', { name: taskId }).getAttribute('href')).toBe(`#task-${taskId}`);
    expect(await page.locator(`#task-${taskId}`).count()).toBe(1);
    expect(await banner.locator('.halt-message').textContent()).toContain(halt.message);

    // the failed task's bar ends with a mark; the others were canceled
    const rows = await chartRows(page);
    expect(rows.find((r) => r.service === 'variant-store')?.state).toBe('failed');
    expect(
      await page.locator('#phase-chart .chart-row[data-service="variant-store"] .end-failed').count(),
    ).toBe(1);

    // the events about tasks name their service; the one about the failure names it twice
    const taskEvents = page.locator('#timeline li', { hasText: /task TA_/ });
    for (const li of await taskEvents.all())
      expect(SERVICES).toContain((await li.locator('.ev-service').textContent()) ?? '');
    const failure = page.locator('#timeline li.ev-error', { hasText: taskId });
    expect(await failure.count()).toBeGreaterThan(0);
    expect(await failure.first().locator('.ev-service').textContent()).toBe('variant-store');

    // only Run again is offered on a final release
    expect(await page.getByRole('button', { name: 'Run again' }).isVisible()).toBe(true);
    expect(await page.getByRole('button', { name: 'Cancel release' }).isVisible()).toBe(false);
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    await screenshot(page, 'release-failed.png');

    // the banner is in the server's HTML too
    const html = await (await fetch(`${ui.url}/ui/releases/${failedId}`)).text();
    expect(html).toContain('data-reason="failed"');
    expect(html).toContain('variant-store');
    await page.close();
  }, 40_000);

  test('Run again starts a new release with the same studies and options after confirming; cancel shows who', async () => {
    mock.reset();
    const page = await openSignedIn(context, `${ui.url}/ui/releases/${failedId}`);
    const before = (await ui.t.api('GET', '/releases')).body.count as number;

    // Escape declines: nothing is created
    await page.getByRole('button', { name: 'Run again' }).click();
    const dialog = page.getByRole('dialog', { name: 'Run this release again?' });
    await dialog.waitFor();
    expect(await dialog.textContent()).toContain(studies[0]!);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await ui.t.api('GET', '/releases')).body.count).toBe(before);

    await page.getByRole('button', { name: 'Run again' }).click();
    await dialog.getByRole('button', { name: 'Run again' }).click();
    await page.waitForURL(
      (url) => /\/ui\/releases\/RE_[0-9A-Z]{8}$/.test(url.pathname) && !url.pathname.endsWith(failedId),
      {
        timeout: 10_000,
      },
    );
    const againId = page.url().split('/').pop()!;
    const [original, again] = await Promise.all([
      ui.t.api('GET', `/releases/${failedId}`),
      ui.t.api('GET', `/releases/${againId}`),
    ]);
    expect(again.body.name).toBe('December data release (run again)');
    expect(again.body.studies).toEqual(original.body.studies);
    expect(again.body.tags).toEqual(original.body.tags);
    expect(again.body.description).toBe(original.body.description);
    expect(again.body.is_major).toBe(original.body.is_major);
    expect((await ui.t.api('GET', '/releases')).body.count).toBe(before + 1);

    // cancel it: the banner and the facts say who canceled and when
    await clickAndConfirm(page, 'Cancel release', 'Cancel this release?');
    await page.locator('#release-state[data-state="canceled"]').waitFor({ timeout: 10_000 });
    await page
      .locator('#halt-area .banner[data-reason="canceled"] .halt-by', { hasText: 'demo-admin' })
      .waitFor({ timeout: 5000 });
    expect(await page.locator('#release-canceled').textContent()).toContain('by demo-admin');
    await screenshot(page, 'release-canceled.png');
    await page.close();
  }, 40_000);
});
