import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { BrowserContext } from 'playwright-core';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { freePort, studyId } from './support/fixtures';
import { launchBrowser, openSignedIn, screenshot, startUiSystem, type UiSystem } from './support/ui';

// Adding a task service and a study from the dashboard: the API's answers (the live
// GET {url}/status check, 400 field messages, 409) are shown in words next to the fields.

let ui: UiSystem;
let mock: MockHandle;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let context: BrowserContext;

const services = async () =>
  (await ui.t.api('GET', '/task-services?limit=100')).body.results as Array<Record<string, unknown>>;

beforeAll(async () => {
  ui = await startUiSystem('ui_forms');
  mock = await startMock({ services: ['search-index'] });
  browser = await launchBrowser();
  context = browser.context;
});
afterAll(async () => {
  await browser?.close();
  await mock?.stop();
  await ui?.stop();
});

describe('dashboard forms', () => {
  test('add a task service: a URL whose /status fails is refused with the reason; a good one is registered', async () => {
    const page = await openSignedIn(context, `${ui.url}/ui/services`);
    await page.getByText('No task services registered yet').waitFor();
    const form = page.locator('#service-form');

    // nothing listens there: the live check fails and the reason is shown next to the URL
    const nowhere = `http://127.0.0.1:${await freePort()}/task-service`;
    await form.getByLabel('Name', { exact: true }).fill('search-index');
    await form.getByLabel('URL').fill(nowhere);
    await form.getByRole('button', { name: 'Check and register' }).click();
    const urlError = page.locator('#svc-url-error');
    await urlError
      .getByText(`GET ${nowhere}/status did not answer 200 with JSON`)
      .waitFor({ timeout: 10_000 });
    expect(await form.getByLabel('URL').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#service-result').textContent()).toStartWith('Not registered:');
    expect(await services()).toHaveLength(0);
    await screenshot(page, 'service-form-refused.png');

    // a deadline the API does not take: the message is next to that field (the advanced part opens)
    await form.getByLabel('URL').fill(mock.serviceUrl('search-index'));
    await form.getByText('Advanced: deadlines and tokens').click();
    await form.getByLabel('Request deadline (ms)').fill('5');
    await form.getByRole('button', { name: 'Check and register' }).click();
    await page.locator('#svc-request-timeout-error:not(:empty)').waitFor({ timeout: 5000 });
    expect(await page.locator('#svc-request-timeout-error').textContent()).toMatch(/100/);
    expect(await urlError.textContent()).toBe('');

    // the good one, with its advanced settings
    await form.getByLabel('Request deadline (ms)').fill('3000');
    await form.getByLabel('Token audience').fill('search-index-audience');
    await form.getByLabel('Description').fill('Search index of the portal');
    await form.getByRole('button', { name: 'Check and register' }).click();
    const result = page.locator('#service-result[data-outcome="registered"]');
    await result.waitFor({ timeout: 10_000 });
    expect(await result.textContent()).toContain('health ok');
    const [registered] = await services();
    expect(registered).toMatchObject({
      name: 'search-index',
      url: mock.serviceUrl('search-index'),
      description: 'Search index of the portal',
      enabled: true,
      request_timeout_ms: 3000,
      token_audience: 'search-index-audience',
      health_status: 'ok',
    });
    expect(await result.textContent()).toContain(registered!.kf_id as string);
    // the table shows it without a reload, with its settings
    const row = page.locator(`tr[data-service="${registered!.kf_id}"]`);
    await row.waitFor({ timeout: 5000 });
    expect(await row.locator('.settings').textContent()).toContain('request deadline 3.0 s');
    await screenshot(page, 'service-form-registered.png');

    // the same URL again: the 409 is shown next to the URL
    await form.getByLabel('Name', { exact: true }).fill('search-index-copy');
    await form.getByLabel('URL').fill(mock.serviceUrl('search-index'));
    await form.getByRole('button', { name: 'Check and register' }).click();
    await urlError.getByText(/already registered/).waitFor({ timeout: 5000 });
    expect(await services()).toHaveLength(1);
    await page.close();
  }, 40_000);

  test('add a study from the start-a-release form: it is listed, selected, and the release gets it', async () => {
    const page = await openSignedIn(context, `${ui.url}/ui/releases/new`);
    // no studies yet: the form to add one is open
    await page.getByText('No studies yet').waitFor();
    const kfId = studyId();

    // a malformed id: the API's message is shown next to the field
    await page.getByLabel('Study id').fill('SD_1');
    await page.getByRole('button', { name: 'Add study' }).click();
    await page
      .locator('#study-kf-id-error', { hasText: 'A study id looks like SD_ABCDEFGH.' })
      .waitFor({ timeout: 5000 });

    await page.getByLabel('Study id').fill(kfId);
    await page.getByLabel('Study name').fill('Pediatric brain tumors');
    await page.getByRole('button', { name: 'Add study' }).click();
    const check = page.getByRole('checkbox', { name: new RegExp(kfId) });
    await check.waitFor({ timeout: 5000 });
    expect(await check.isChecked()).toBe(true);
    expect(await page.locator('#study-kf-id-error').textContent()).toBe('');
    const study = await ui.t.api('GET', `/studies/${kfId}`);
    expect(study.body).toMatchObject({ kf_id: kfId, name: 'Pediatric brain tumors' });

    // the same id again: 400 next to the field
    await page.getByLabel('Study id').fill(kfId);
    await page.getByRole('button', { name: 'Add study' }).click();
    await page.locator('#study-kf-id-error', { hasText: 'already exists' }).waitFor({ timeout: 5000 });
    await screenshot(page, 'study-form.png');

    // starting the release takes the study just added
    await page.getByLabel('Name', { exact: true }).fill('With a new study');
    await page.getByRole('button', { name: 'Start release' }).click();
    await page.waitForURL(/\/ui\/releases\/RE_[0-9A-Z]{8}$/, { timeout: 10_000 });
    const release = await ui.t.api('GET', `/releases/${page.url().split('/').pop()}`);
    expect(release.body.studies).toEqual([kfId]);
    await page.close();
  }, 30_000);
});
