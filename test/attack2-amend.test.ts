import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createStudy, registerServices, waitForState, waitForTaskStates } from './support/fixtures';
import { Cluster } from './support/processes';
import { makeApi } from './support/system';

// Attacks on PATCH /releases/{id} with is_major, now a `release.amend` intent for the coordinator
// (docs/api.md "PATCH /releases/{id}", docs/lifecycle.md amend rows). Real processes, so the
// coordinator can be stopped while the gateway keeps answering (the 202 path).

let cluster: Cluster;
let mock: MockHandle;
let api: ReturnType<typeof makeApi>;
let study: string;

beforeAll(async () => {
  cluster = await Cluster.create('attack2-amend', { GATEWAY_REPLY_TIMEOUT_MS: '800' });
  await cluster.start('gateway');
  await cluster.start('worker');
  await cluster.start('coordinator');
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: 2, stageMs: 300, publishMs: 100 });
  await registerServices(api, mock);
  study = await createStudy(api);
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

/** A create answered 201, or 202 when the coordinator took longer than the short reply wait (800 ms) under load. */
async function createRelease(studies: string[]): Promise<{ kf_id: string }> {
  const res = await api('POST', '/releases', { name: 'Test release', studies });
  if (res.status !== 201 && res.status !== 202)
    throw new Error(`release not created: ${res.status} ${JSON.stringify(res.body)}`);
  return { kf_id: res.body.kf_id as string };
}

describe('PATCH is_major', () => {
  /** Held: amend and publish are serialised by the coordinator; the loser of the race changes nothing. */
  test('PATCH is_major + name racing a publish: either both apply, or the PATCH is refused whole', async () => {
    const release = await createRelease([study]);
    await waitForState(api, release.kf_id, 'staged', 30_000);
    const [patch, publish] = await Promise.all([
      api('PATCH', `/releases/${release.kf_id}`, { is_major: true, name: 'renamed in the race' }),
      api('POST', `/releases/${release.kf_id}/publish`),
    ]);
    expect(publish.status).toBe(200);
    const done = await waitForState(api, release.kf_id, 'published', 30_000);
    if (patch.status === 200) {
      expect(done.is_major).toBe(true);
      expect(done.name).toBe('renamed in the race');
    } else {
      expect(patch.status).toBe(409);
      expect(done.is_major).toBe(false);
      expect(done.name).toBe('Test release');
    }
  }, 60_000);

  /**
   * Promise (docs/api.md): "A 202 with the release and detail means the is_major change is stored
   * and will be applied", and PATCH changes is_major to what the request says. What happens: the
   * gateway decides whether to send an amend by comparing with the is_major it READS from the
   * releases table (`input.isMajor !== row.isMajor` in updateRelease). While an earlier amend is
   * stored but not yet applied (the coordinator is slow or restarting: the 202 path), a PATCH back to
   * the original value sees no difference, sends nothing and answers 200; the stored amend is then
   * applied, and the release ends up with the value of the EARLIER request: the last PATCH is lost.
   */
  test('a PATCH back to the old is_major while the first one is still pending wins', async () => {
    const release = await createRelease([study]);
    await waitForTaskStates(api, release.kf_id, 'running', 30_000).catch(() => undefined);
    await cluster.kill('coordinator');
    const first = await api('PATCH', `/releases/${release.kf_id}`, { is_major: true });
    expect(first.status).toBe(202); // stored, will be applied
    const second = await api('PATCH', `/releases/${release.kf_id}`, { is_major: false });
    expect([200, 202]).toContain(second.status);
    await cluster.start('coordinator');
    // a cancel answered by the coordinator comes after both PATCHes: everything before it is applied
    const cancel = await api('DELETE', `/releases/${release.kf_id}`);
    expect([200, 202]).toContain(cancel.status);
    await waitForState(api, release.kf_id, ['canceling', 'canceled'], 30_000);
    const after = await api('GET', `/releases/${release.kf_id}`);
    // the last request said minor
    expect(after.body.is_major).toBe(false);
  }, 60_000);

  /**
   * The 202 path of a create: the release is stored as an intent, not yet a row. Checked: what a
   * PATCH (is_major) answers then, and whether that change survives the create being applied.
   */
  test('PATCH is_major on a release whose create is still pending', async () => {
    await cluster.kill('coordinator');
    const created = await api('POST', '/releases', { name: 'pending create', studies: [study] });
    expect(created.status).toBe(202);
    const id = created.body.kf_id as string;
    const get = await api('GET', `/releases/${id}`);
    const patch = await api('PATCH', `/releases/${id}`, { is_major: true });
    await cluster.start('coordinator');
    await waitForState(api, id, ['initializing', 'running', 'staged'], 30_000);
    const after = await api('GET', `/releases/${id}`);
    // either the PATCH was refused (the release is not there yet, like its GET), or it took effect
    if (patch.status === 404) expect(get.status).toBe(404);
    else {
      expect([200, 202]).toContain(patch.status);
      expect(after.body.is_major).toBe(true);
    }
    expect(patch.status).toBeLessThan(500);
  }, 60_000);
});
