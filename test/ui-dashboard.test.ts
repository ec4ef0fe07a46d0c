import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { MockHandle } from '../mock-task-service/src/index';
import { createStudy, registerMockServices, waitForState } from './support/fixtures';
import { ARTIFACTS, launchBrowser, startUiSystem, type UiSystem } from './support/ui';
import { until } from './support/until';

// The operator dashboard in a real browser (Debian chromium + playwright-core): start a
// release from the form, watch it go running → staged live, publish it, see it published.

let ui: UiSystem;
let mock: MockHandle;
let serviceIds: string[];
let study: string;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let context: BrowserContext;
let releaseId: string;

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
const stateOf = (page: Page, selector: string) =>
  page.locator(selector).first().getAttribute('data-state', { timeout: 2000 });

beforeAll(async () => {
  ui = await startUiSystem('ui_dashboard');
  ({ mock, serviceIds } = await registerMockServices(ui.t.api, 3, { stageMs: 4000, publishMs: 800 }));
  study = await createStudy(ui.t.api);
  browser = await launchBrowser();
  context = browser.context;
});
afterAll(async () => {
  await browser?.close();
  await mock?.stop();
  await ui?.stop();
});

describe('dashboard at /ui', () => {
  test('start a release, watch it reach staged live, publish it', async () => {
    const page = await context.newPage();
    await page.goto(`${ui.url}/ui/releases/new`);
    // demo mode: the ADMIN token is filled in and used
    await page.locator('#who', { hasText: 'demo-admin' }).waitFor({ timeout: 5000 });

    // a 400 from the API is shown in words, next to the field and in the alert region
    await page.getByLabel('Name', { exact: true }).fill('November data release');
    await page.getByRole('button', { name: 'Start release' }).click();
    await page.getByRole('alert').getByText('A release needs at least one study.').first().waitFor();
    expect(await page.locator('#err-studies').textContent()).toContain('at least one study');
    await shot(page, 'new-release-error.png');

    await page.getByRole('checkbox', { name: new RegExp(study) }).check();
    await page.getByLabel('Tags').fill('ui, browser-test');
    await page.getByRole('button', { name: 'Start release' }).click();
    await page.waitForURL(/\/ui\/releases\/RE_[0-9A-Z]{8}$/, { timeout: 10_000 });
    releaseId = page.url().split('/').pop()!;
    await page.evaluate(() => {
      (window as unknown as { notReloaded: boolean }).notReloaded = true;
    });

    // every task row appears and runs, updated in place from the event feed
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll<HTMLElement>('#task-rows tr[data-task]')];
        return rows.length === 3 && rows.every((r) => r.dataset.state === 'running');
      },
      undefined,
      { timeout: 10_000 },
    );
    await page.locator('#live-status[data-live="on"]').waitFor({ timeout: 5000 });
    const serviceNames = await page.locator('#task-rows th.service').allTextContents();
    expect(serviceNames.sort()).toEqual(mock.serviceNames.slice().sort());
    expect(await page.locator('#release-state').textContent()).toBe('running');
    expect(await page.getByRole('button', { name: 'Publish' }).isVisible()).toBe(false);
    // progress moves while the tasks run (read every few seconds; no event carries it)
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll<HTMLProgressElement>('#task-rows progress')].some(
          (p) => p.value > 0 && p.value < 100,
        ),
      undefined,
      { timeout: 8000 },
    );
    await shot(page, 'release-running.png');

    // running → staged: the page shows it within a second of the change
    const staged = await until(
      async () => {
        const r = await ui.t.api('GET', `/releases/${releaseId}`);
        const task = (r.body.tasks as Array<{ kf_id: string; state: string }>).find(
          (x) => x.state === 'staged',
        );
        return task?.kf_id;
      },
      { timeoutMs: 15_000, intervalMs: 5, message: 'a task to be staged' },
    );
    await page
      .locator(`#task-rows tr[data-task="${staged}"][data-state="staged"]`)
      .waitFor({ timeout: 1000 });
    await waitForState(ui.t.api, releaseId, 'staged');
    await page.locator('#release-state[data-state="staged"]').waitFor({ timeout: 1000 });
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
      true,
    );
    await page.getByRole('button', { name: 'Publish' }).waitFor({ state: 'visible', timeout: 1000 });
    await page
      .locator('#timeline')
      .getByText(/changed from running to staged/)
      .first()
      .waitFor({ timeout: 3000 });
    await shot(page, 'release-staged.png');

    // publish: asks first; Escape declines and nothing is sent
    await page.getByRole('button', { name: 'Publish' }).click();
    const dialog = page.getByRole('dialog', { name: 'Publish this release?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await ui.t.api('GET', `/releases/${releaseId}`)).body.state).toBe('staged');

    await page.getByRole('button', { name: 'Publish' }).click();
    await dialog.getByRole('button', { name: 'Publish' }).click();
    await page.locator('#release-state[data-state="published"]').waitFor({ timeout: 15_000 });
    const published = await waitForState(ui.t.api, releaseId, 'published');
    expect(await page.locator('#release-version').textContent()).toBe(published.version);
    expect(await page.getByRole('button', { name: 'Publish' }).isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Cancel release' }).isVisible()).toBe(false);
    for (const row of await page.locator('#task-rows tr[data-task]').all()) {
      expect(await row.getAttribute('data-state')).toBe('published');
    }
    await page
      .locator('#timeline')
      .getByText(/changed from publishing to published/)
      .first()
      .waitFor({ timeout: 5000 });
    await shot(page, 'release-published.png');

    // a phone: one column, nothing wider than the screen
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const tasksFit = await page.evaluate(() => {
      const wrap = document.getElementById('tasks-wrap')!;
      return wrap.scrollWidth <= wrap.clientWidth;
    });
    expect(tasksFit).toBe(true);
    await shot(page, 'release-published-phone.png');
    await page.close();
  }, 50_000);

  test('a release note is added after confirming', async () => {
    const page = await context.newPage();
    await page.goto(`${ui.url}/ui/releases/${releaseId}`);
    await page.getByLabel('Note', { exact: true }).fill('Adds the November freeze of the study.');
    await page.getByRole('button', { name: 'Add note' }).click();
    await page
      .getByRole('dialog', { name: 'Add this note?' })
      .getByRole('button', { name: 'Add note' })
      .click();
    await page
      .locator('#notes')
      .getByText('Adds the November freeze of the study.')
      .waitFor({ timeout: 5000 });
    const notes = await ui.t.api('GET', `/release-notes?release=${releaseId}`);
    expect(notes.body.results.map((n: { description: string }) => n.description)).toContain(
      'Adds the November freeze of the study.',
    );
    await page.close();
  });

  test('the release list follows the feed, filters by state, and cancel works after confirming', async () => {
    const page = await context.newPage();
    await page.goto(`${ui.url}/ui`);
    const first = page.locator(`tr[data-release="${releaseId}"]`);
    expect(await stateOf(page, `tr[data-release="${releaseId}"] .badge`)).toBe('published');
    expect(await first.getByRole('link').textContent()).toBe('November data release');

    // a release started elsewhere shows up without reloading, newest first
    const created = await ui.t.api('POST', '/releases', { name: 'Started by a script', studies: [study] });
    expect(created.status).toBe(201);
    const second = created.body.kf_id as string;
    await page.locator(`tbody tr:first-child[data-release="${second}"]`).waitFor({ timeout: 5000 });
    await page
      .locator(`tr[data-release="${second}"] .badge[data-state="running"]`)
      .waitFor({ timeout: 10_000 });

    // filter by state
    await page.getByLabel('State').selectOption('published');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/state=published/);
    expect(await page.locator(`tr[data-release="${releaseId}"]`).count()).toBe(1);
    expect(await page.locator(`tr[data-release="${second}"]`).count()).toBe(0);
    await page.getByLabel('State').selectOption('failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('No releases in state failed yet.').waitFor();

    // cancel the running one from its page
    await page.goto(`${ui.url}/ui/releases/${second}`);
    await page.getByRole('button', { name: 'Cancel release' }).click();
    await page
      .getByRole('dialog', { name: 'Cancel this release?' })
      .getByRole('button', { name: 'Cancel release' })
      .click();
    await page.locator('#release-state[data-state="canceled"]').waitFor({ timeout: 10_000 });
    await waitForState(ui.t.api, second, 'canceled');
    await page.goto(`${ui.url}/ui`);
    await shot(page, 'releases.png');
    await page.close();
  }, 30_000);

  test('task services: health, and the enabled switch (errors in words, keyboard works)', async () => {
    const page = await context.newPage();
    await page.goto(`${ui.url}/ui/services`);
    for (const id of serviceIds) {
      expect(await page.locator(`tr[data-service="${id}"] .badge`).textContent()).toBe('ok');
    }
    const name = mock.serviceNames[0]!;
    const toggle = page.getByRole('switch', { name: `${name} enabled` });
    expect(await toggle.isChecked()).toBe(true);

    // a token that does not verify: the 401 is shown in words and the switch goes back
    await page.getByRole('button', { name: /Token/ }).click();
    await page.getByLabel('Bearer token').fill('not-a-jwt');
    await page.getByRole('button', { name: 'Use token' }).click();
    await toggle.click();
    await page
      .getByRole('dialog', { name: `Disable ${name}?` })
      .getByRole('button', { name: 'Disable' })
      .click();
    const alert = page.getByRole('alert').getByText(/Disabling .* failed: .*\(HTTP 401\)/);
    await alert.waitFor({ timeout: 5000 });
    expect(await toggle.isChecked()).toBe(true);
    await shot(page, 'services-error.png');

    // the demo token again; the switch by keyboard
    await page.getByRole('button', { name: /Token/ }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Bearer token').fill(ui.t.adminToken);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.locator('#who', { hasText: 'test-admin' }).waitFor();
    await toggle.focus();
    await page.keyboard.press('Space');
    await page
      .getByRole('dialog', { name: `Disable ${name}?` })
      .getByRole('button', { name: 'Disable' })
      .click();
    await until(
      async () => (await ui.t.api('GET', `/task-services/${serviceIds[0]}`)).body.enabled === false,
      {
        timeoutMs: 5000,
        message: 'the service to be disabled',
      },
    );
    await page.getByRole('switch', { name: `${name} enabled`, checked: false }).waitFor({ timeout: 5000 });
    await page.getByRole('switch', { name: `${name} enabled` }).click();
    await page
      .getByRole('dialog', { name: `Enable ${name}?` })
      .getByRole('button', { name: 'Enable' })
      .click();
    await until(
      async () => (await ui.t.api('GET', `/task-services/${serviceIds[0]}`)).body.enabled === true,
      {
        timeoutMs: 5000,
        message: 'the service to be enabled again',
      },
    );
    await shot(page, 'services.png');
    await page.close();
  });

  test('read-only pages work without a token when reads are public', async () => {
    for (const path of ['/ui', `/ui/releases/${releaseId}`, '/ui/services', '/ui/releases/new']) {
      const res = await fetch(`${ui.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
    }
    const html = await (await fetch(`${ui.url}/ui/releases/${releaseId}`)).text();
    expect(html).toContain('November data release');
    expect((await fetch(`${ui.url}/ui/releases/RE_00000000`)).status).toBe(404);
    const js = await fetch(`${ui.url}/ui/assets/app.js`);
    expect(js.headers.get('content-type')).toContain('javascript');
  });
});
