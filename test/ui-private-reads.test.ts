import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import type { MockHandle } from '../mock-task-service/src/index';
import { createRelease, createStudy, registerMockServices, waitForState } from './support/fixtures';
import { ARTIFACTS, launchBrowser, startUiSystem, type UiSystem } from './support/ui';

// PUBLIC_READS=false: pages need a token too. The page loads its content and follows the
// event feed with the signed-in token (sent as a header, which EventSource cannot do).

let ui: UiSystem;
let mock: MockHandle;
let study: string;
let browser: Awaited<ReturnType<typeof launchBrowser>>;

beforeAll(async () => {
  ui = await startUiSystem('ui_private', { PUBLIC_READS: 'false' });
  ({ mock } = await registerMockServices(ui.t.api, 2, { stageMs: 1500, publishMs: 300 }));
  study = await createStudy(ui.t.api);
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await mock?.stop();
  await ui?.stop();
});

describe('dashboard with PUBLIC_READS=false', () => {
  test('without a token a page shows no data, only how to sign in', async () => {
    const release = await createRelease(ui.t.api, [study], { name: 'Private release' });
    const res = await fetch(`${ui.url}/ui/releases/${release.kf_id}`);
    expect(res.status).toBe(401);
    const html = await res.text();
    expect(html).toContain('Sign in to read');
    expect(html).not.toContain('Private release');
    const bad = await fetch(`${ui.url}/ui/releases/${release.kf_id}`, {
      headers: { authorization: 'Bearer nope', 'x-ui-fragment': '1' },
    });
    expect(bad.status).toBe(401);
    expect((await bad.json()).detail).toBeString();
    await waitForState(ui.t.api, release.kf_id, 'staged');
  });

  test('signed in, the page loads with the token and follows the feed live', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${ui.url}/ui`);
    await page.getByRole('heading', { name: 'Sign in to read' }).waitFor();
    // no demo token is handed to a visitor who may not even read; sign in by pasting one
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByLabel('Bearer token').fill(ui.t.adminToken);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('heading', { name: 'Releases' }).waitFor({ timeout: 5000 });
    await page.getByRole('link', { name: 'Private release' }).waitFor();

    const release = await createRelease(ui.t.api, [study], { name: 'Watched release' });
    await page.goto(`${ui.url}/ui/releases/${release.kf_id}`);
    await page.locator('#release-state').waitFor({ timeout: 5000 });
    await page.locator('#live-status[data-live="on"]').waitFor({ timeout: 5000 });
    await waitForState(ui.t.api, release.kf_id, 'staged');
    await page.locator('#release-state[data-state="staged"]').waitFor({ timeout: 1000 });
    await page.getByRole('button', { name: 'Publish' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Publish' }).click();
    await page.locator('#release-state[data-state="published"]').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'private-release.png'), fullPage: true });
    await page.close();
  });
});
