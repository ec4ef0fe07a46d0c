import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../mock-task-service/src/index';
import { createRelease, createStudy, waitForState, waitForTaskStates } from './support/fixtures';
import { Cluster } from './support/processes';
import { makeApi } from './support/system';
import { until } from './support/until';

/**
 * Attack: kill -9 of the coordinator right after it committed a halt, before it published
 * anything of it (FAULT_EXIT_AFTER_COMMIT): the cancels wait in the outbox, the abort of the
 * calls in flight and the "halted" mark that stops queued starts are never sent. One start hangs
 * at its service, and the worker makes one call at a time, so the other start is still queued
 * when the release halts and is sent after the halt. docs/lifecycle.md promises every service
 * that may hold work gets a cancel, including one whose start landed after the halt. Held up:
 * the restarted coordinator's outbox sweep sends the cancels, and the late starts' answers bring
 * a second cancel; this guards it (no other test kills the coordinator at a halt).
 */

let cluster: Cluster;
let mock: MockHandle;
let api: ReturnType<typeof makeApi>;
let study: string;

beforeAll(async () => {
  cluster = await Cluster.create('attack_halt_crash', {
    START_TIMEOUT_MS: '4000',
    WORKER_CONCURRENCY: '1',
  });
  await cluster.start('gateway,worker', 'gateway');
  await cluster.start('coordinator');
  api = makeApi(cluster.gatewayUrl, cluster.adminToken);
  mock = await startMock({ services: ['hangs', 'queued'], stageMs: 60_000 });
  for (const name of mock.serviceNames) {
    expect((await api('POST', '/task-services', { name, url: mock.serviceUrl(name) })).status).toBe(201);
  }
  study = await createStudy(api);
}, 60_000);

afterAll(async () => {
  await mock?.stop();
  await cluster?.stop();
});

describe('coordinator killed right after a halt commit', () => {
  test('every service that may hold work still gets a cancel, after any start that landed late', async () => {
    mock.setBehaviour({ hang: true }, 'hangs', 'start');
    const release = await createRelease(api, [study]);
    await waitForTaskStates(api, release.kf_id, 'initialized', 20_000);
    // the hanging start occupies the only worker slot; the other start waits behind it
    await until(() => mock.callsFor({ releaseId: release.kf_id, action: 'start' }).length >= 1, {
      timeoutMs: 10_000,
    });
    await cluster.kill('coordinator');
    await cluster.start('coordinator', 'coordinator-faulty', { FAULT_EXIT_AFTER_COMMIT: 'true' });
    const faulty = cluster.procs.get('coordinator-faulty')!;
    const cancel = await api('DELETE', `/releases/${release.kf_id}`);
    expect([200, 202]).toContain(cancel.status);
    expect(await faulty.exited).toBe(137);
    cluster.procs.delete('coordinator-faulty');
    await cluster.start('coordinator', 'coordinator-again');
    const done = await waitForState(api, release.kf_id, ['canceled', 'failed', 'published'], 30_000);
    expect(done.state).toBe('canceled');
    // the queued start may have gone out after the halt: whatever it did, a cancel came after it
    await until(() => mock.tasksWithoutCancel(release.kf_id).length === 0, { timeoutMs: 20_000 });
    for (const service of mock.serviceNames) {
      const calls = mock.callsFor({ service, releaseId: release.kf_id });
      const lastStart = calls.findLastIndex((c) => c.action === 'start');
      const lastCancel = calls.findLastIndex((c) => c.action === 'cancel');
      console.log(
        `${service}:`,
        calls.map((c) => `${c.action}:${c.status}`),
      );
      expect(lastCancel).toBeGreaterThan(lastStart);
    }
    for (const view of mock.tasks().filter((x) => x.release_id === release.kf_id)) {
      expect(['canceled', 'pending']).toContain(view.state);
    }
  }, 90_000);
});
