import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createRelease, createStudy, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

// No task services: releases go straight to staged, so versions are what is under test.
let t: TestSystem;
let study: string;
beforeAll(async () => {
  t = await startTestSystem('versioning');
  study = await createStudy(t.api);
});
afterAll(async () => {
  await t?.stop();
});

async function publish(id: string) {
  await waitForState(t.api, id, 'staged');
  expect((await t.api('POST', `/releases/${id}/publish`)).status).toBe(200);
  return waitForState(t.api, id, 'published');
}

describe('semantic versions', () => {
  test('the worked example: 0.0.0 → published 0.1.0 → next 0.1.1 → published 0.2.0; a major → 1.0.0', async () => {
    const first = await createRelease(t.api, [study]);
    expect(first.version).toBe('0.0.0');
    expect((await publish(first.kf_id)).version).toBe('0.1.0');
    const second = await createRelease(t.api, [study]);
    expect(second.version).toBe('0.1.1');
    expect((await publish(second.kf_id)).version).toBe('0.2.0');
    const major = await createRelease(t.api, [study], { is_major: true });
    expect(major.version).toBe('0.2.1');
    expect((await publish(major.kf_id)).version).toBe('1.0.0');
    const studyView = await t.api('GET', `/studies/${study}`);
    expect(studyView.body.last_pub_version).toBe('1.0.0');
    expect(studyView.body.last_pub_date).not.toBeNull();
  });

  test('releases created at the same moment never share a version', async () => {
    const created = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        t.api('POST', '/releases', { name: `concurrent ${i}`, studies: [study] }),
      ),
    );
    expect(created.every((r) => r.status === 201)).toBe(true);
    const versions = created.map((r) => r.body.version as string);
    expect(new Set(versions).size).toBe(versions.length);
  });

  test('is_major changed on a staged release decides its version; once published it may not change', async () => {
    const release = await createRelease(t.api, [study]);
    await waitForState(t.api, release.kf_id, 'staged');
    const marked = await t.api('PATCH', `/releases/${release.kf_id}`, {
      is_major: true,
      name: 'marked major',
    });
    expect(marked.status).toBe(200);
    expect(marked.body).toMatchObject({ is_major: true, name: 'marked major' });
    const events = await t.api('GET', `/events?release=${release.kf_id}`);
    expect(events.body.results.map((e: { message: string }) => e.message)).toContain(
      `release ${release.kf_id} marked major by test-admin`,
    );
    const published = await publish(release.kf_id);
    expect(published.version).toMatch(/^\d+\.0\.0$/);

    // refused as a whole: the name in the same request is not changed either
    const late = await t.api('PATCH', `/releases/${release.kf_id}`, { is_major: false, name: 'too late' });
    expect(late.status).toBe(409);
    expect(late.body.detail).toContain('is_major may not change');
    const after = await t.api('GET', `/releases/${release.kf_id}`);
    expect(after.body).toMatchObject({ is_major: true, name: 'marked major', version: published.version });
  });
});
