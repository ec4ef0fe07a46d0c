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
});
