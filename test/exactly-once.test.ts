import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { MockHandle } from '../mock-task-service/src/index';
import type { Intent, TaskResult } from '../src/infra/bus/messages';
import { type BusNames, busNames } from '../src/infra/bus/subjects';
import {
  createRunningRelease,
  createStudy,
  eventsOf,
  registerMockServices,
  type TaskJson,
  waitForState,
} from './support/fixtures';
import { NATS_URL, startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// Each message is published three times WITHOUT a msgID, so JetStream's own duplicate window
// cannot catch it: only the coordinator's processed_messages can keep it to one application.
let t: TestSystem;
let study: string;
let mock: MockHandle;
let nc: NatsConnection;
let js: JetStreamClient;
let names: BusNames;

beforeAll(async () => {
  t = await startTestSystem('exactly_once');
  study = await createStudy(t.api);
  ({ mock } = await registerMockServices(t.api, 2, { stageMs: 60_000 }));
  nc = await connect({ servers: NATS_URL });
  js = jetstream(nc);
  names = busNames(t.prefix);
});
afterAll(async () => {
  await nc?.close();
  await mock?.stop();
  await t?.stop();
});

function stats() {
  return t.system.coordinator!.stats;
}

/** Publishes the same payload three times (no msgID) and waits until the coordinator saw all three. */
async function publishThrice(subject: string, payload: unknown) {
  const duplicatesBefore = stats().duplicates;
  for (let i = 0; i < 3; i++) {
    const ack = await js.publish(subject, JSON.stringify(payload));
    expect(ack.duplicate).toBe(false); // JetStream stored every copy
  }
  await until(() => stats().duplicates >= duplicatesBefore + 2, {
    message: 'the coordinator to see the two copies',
  });
  expect(stats().duplicates - duplicatesBefore).toBe(2);
}

function countMatching(events: Array<{ message: string }>, message: string | RegExp) {
  return events.filter((e) => (typeof message === 'string' ? e.message === message : message.test(e.message)))
    .length;
}

describe('every event is applied at most once', () => {
  test('the same task.report intent three times: one transition, one refusal warning', async () => {
    const created = await createRunningRelease(t.api, [study]);
    const [first, second] = created.tasks.map((x) => x.kf_id) as [string, string];

    const staged: Intent = {
      type: 'task.report',
      id: `dup-report-${crypto.randomUUID()}`,
      releaseId: created.kf_id,
      taskId: first,
      state: 'staged',
      progress: 100,
    };
    await publishThrice(names.intent(staged.type), staged);
    expect((await t.api('GET', `/tasks/${first}`)).body.state).toBe('staged');

    // a report that is refused each time it is applied: three copies must still give ONE warning
    const impossible: Intent = {
      type: 'task.report',
      id: `dup-report-${crypto.randomUUID()}`,
      releaseId: created.kf_id,
      taskId: second,
      state: 'published',
    };
    await publishThrice(names.intent(impossible.type), impossible);

    const events = await eventsOf(t.api, created.kf_id);
    expect(countMatching(events, `task ${first} changed from running to staged`)).toBe(1);
    const warnings = events.filter((e) => e.event_type === 'warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.task).toEndWith(`/tasks/${second}`);
    expect(warnings[0]!.message).toContain('published');
    const release = await t.api('GET', `/releases/${created.kf_id}`);
    expect(release.body.state).toBe('running');
    expect(release.body.tasks.map((x: TaskJson) => x.state)).toEqual(['staged', 'running']);

    expect(await t.api('DELETE', `/releases/${created.kf_id}`).then((r) => r.status)).toBe(200);
    await waitForState(t.api, created.kf_id, 'canceled');
  });

  test('the same worker result three times: one transition, one retry-error event', async () => {
    const created = await createRunningRelease(t.api, [study]);
    const [first, second] = created.tasks.map((x) => x.kf_id) as [string, string];
    const result = (taskId: string, extra: Partial<TaskResult>): TaskResult => ({
      id: `dup-result-${crypto.randomUUID()}`,
      kind: 'task',
      commandId: `poll:${taskId}:injected`,
      action: 'get_status',
      taskId,
      releaseId: created.kf_id,
      ok: true,
      status: 200,
      latencyMs: 1,
      ...extra,
    });

    // still running, after a transport retry: each application would write one error event
    const retried = result(first, { state: 'running', progress: 42, retryErrors: ['injected failure'] });
    await publishThrice(names.taskResult(first), retried);
    // then staged, for both tasks
    for (const id of [first, second]) {
      await publishThrice(names.taskResult(id), result(id, { state: 'staged', progress: 100 }));
    }
    const staged = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled']);
    expect(staged.state).toBe('staged');
    expect(staged.tasks.map((x: TaskJson) => x.state)).toEqual(['staged', 'staged']);

    const events = await eventsOf(t.api, created.kf_id);
    expect(
      countMatching(
        events,
        new RegExp(`^request to get_status task ${first} of .* failed \\(will retry\\): injected failure$`),
      ),
    ).toBe(1);
    for (const id of [first, second])
      expect(countMatching(events, `task ${id} changed from running to staged`)).toBe(1);
    expect(countMatching(events, / changed from running to staged$/)).toBe(3); // two tasks and the release
    // the services themselves never finished: the injected results alone moved the release
    for (const view of mock.tasks().filter((x) => x.release_id === created.kf_id))
      expect(view.state).toBe('running');
  });
});
