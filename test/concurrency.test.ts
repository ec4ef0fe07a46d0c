import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { MockHandle } from '../mock-task-service/src/index';
import {
  createRelease,
  createStudy,
  eventsOf,
  registerMockServices,
  type TaskJson,
  waitForState,
  waitForTaskStates,
} from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

const FINAL_TASK = ['published', 'rejected', 'failed', 'canceled'];

let t: TestSystem;
let study: string;
let mock: MockHandle;
// one worker slot: commands of a release queue up behind each other
let narrow: TestSystem;
let narrowStudy: string;
let narrowMock: MockHandle;

beforeAll(async () => {
  [t, narrow] = await Promise.all([
    startTestSystem('concurrency'),
    startTestSystem('concurrency_narrow', { WORKER_CONCURRENCY: '1' }),
  ]);
  study = await createStudy(t.api);
  narrowStudy = await createStudy(narrow.api);
  ({ mock } = await registerMockServices(t.api, 3, { stageMs: 30, publishMs: 300 }));
  ({ mock: narrowMock } = await registerMockServices(narrow.api, 3, { stageMs: 30, publishMs: 60_000 }));
});
afterAll(async () => {
  await mock?.stop();
  await narrowMock?.stop();
  await t?.stop();
  await narrow?.stop();
});

async function stagedRelease() {
  const created = await createRelease(t.api, [study]);
  await waitForState(t.api, created.kf_id, 'staged');
  return created;
}

describe('racing requests', () => {
  test('20 simultaneous publishes of a staged release: one 200, the rest 409, one publish per task', async () => {
    const created = await stagedRelease();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => t.api('POST', `/releases/${created.kf_id}/publish`)),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    const published = await waitForState(t.api, created.kf_id, ['published', 'failed', 'canceled']);
    expect(published.state).toBe('published');
    expect(published.tasks.map((x: TaskJson) => x.state)).toEqual(['published', 'published', 'published']);
    for (const task of published.tasks as TaskJson[]) {
      expect(mock.callsFor({ taskId: task.kf_id, action: 'publish' }).map((c) => c.status)).toEqual([200]);
    }
    const messages = (await eventsOf(t.api, created.kf_id)).map((e) => e.message);
    expect(
      messages.filter(
        (m) => m.startsWith(`release ${created.kf_id},`) && m.endsWith('from staged to publishing'),
      ),
    ).toHaveLength(1);
    expect(messages.filter((m) => m.endsWith('changed from staged to publishing'))).toHaveLength(4);
    expect(messages.filter((m) => m.endsWith('changed from publishing to published'))).toHaveLength(4);
  });

  test('publish racing DELETE (5 releases): each ends published or canceled, consistently', async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const created = await stagedRelease();
      const id = created.kf_id;
      const [publish, cancel] = await Promise.all([
        t.api('POST', `/releases/${id}/publish`),
        t.api('DELETE', `/releases/${id}`),
      ]);
      expect([200, 409]).toContain(publish.status);
      expect([200, 409]).toContain(cancel.status);
      const done = await waitForState(t.api, id, ['published', 'canceled', 'failed']);
      const final = await waitForTaskStates(t.api, id, FINAL_TASK);
      expect(final.state).toBe(done.state);
      expect(['published', 'canceled']).toContain(done.state);
      outcomes.push(done.state);
      const tasks = final.tasks as TaskJson[];
      if (done.state === 'published') {
        // the cancel lost: it was refused, and nothing was canceled
        expect(cancel.status).toBe(409);
        expect(tasks.every((x) => x.state === 'published')).toBe(true);
        for (const x of tasks) expect(mock.callsFor({ taskId: x.kf_id, action: 'cancel' })).toHaveLength(0);
      } else {
        expect(cancel.status).toBe(200);
        // publishing takes 300 ms at the services, so the cancel reaches every task first
        expect(tasks.every((x) => x.state === 'canceled')).toBe(true);
      }
      for (const x of tasks) {
        const calls = mock.callsFor({ taskId: x.kf_id });
        const publishes = calls.filter((c) => c.action === 'publish');
        const cancels = calls.filter((c) => c.action === 'cancel');
        expect(publishes.length).toBeLessThanOrEqual(1);
        // a second cancel only after a publish that may have landed after the first (docs/lifecycle.md)
        expect(cancels.length).toBeLessThanOrEqual(publishes.length === 1 ? 2 : 1);
        // a publish was never sent after the task's cancel
        if (publishes[0] && cancels[0]) expect(publishes[0].at).toBeLessThanOrEqual(cancels[0].at);
        if (publish.status === 409) expect(publishes).toHaveLength(0);
      }
    }
    expect(outcomes).toHaveLength(5);
  });

  test('once the release is canceling, publishes still queued for a busy worker are never sent', async () => {
    // each publish takes 300 ms to answer, and the single worker slot makes the others wait
    narrowMock.setBehaviour({ latencyMs: 300 }, undefined, 'publish');
    const created = await createRelease(narrow.api, [narrowStudy]);
    await waitForState(narrow.api, created.kf_id, 'staged');
    expect((await narrow.api('POST', `/releases/${created.kf_id}/publish`)).status).toBe(200);
    const releaseCalls = () => narrowMock.calls.filter((c) => c.releaseId === created.kf_id);
    const first = await until(() => releaseCalls().find((c) => c.action === 'publish'), {
      message: 'the first publish to reach its service',
    });
    const deleteSentAt = Date.now();
    const cancel = await narrow.api('DELETE', `/releases/${created.kf_id}`);
    expect(cancel.status).toBe(200);
    const done = await waitForState(narrow.api, created.kf_id, ['canceled', 'failed', 'published']);
    expect(done.state).toBe('canceled');
    expect(done.tasks.map((x: TaskJson) => x.state)).toEqual(['canceled', 'canceled', 'canceled']);
    for (const x of done.tasks as TaskJson[]) {
      // the task whose publish was in flight (and aborted) is canceled once more: it may have landed
      const expected = x.kf_id === first.taskId ? 2 : 1;
      await until(() => narrowMock.callsFor({ taskId: x.kf_id, action: 'cancel' }).length === expected, {
        message: `${expected} cancel(s) for ${x.kf_id}`,
      });
    }
    // the publish in flight was aborted; the ones still queued must not be sent at all
    const late = releaseCalls().filter((c) => c.action === 'publish' && c !== first && c.at >= deleteSentAt);
    expect(late.map((c) => `${c.service} answered ${c.status} at +${c.at - deleteSentAt}ms`)).toEqual([]);
    expect(
      releaseCalls()
        .filter((c) => c.action === 'publish')
        .map((c) => c.status),
    ).toEqual([0]);
  });
});
