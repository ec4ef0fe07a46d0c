import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node';
import type { MockHandle } from '../mock-task-service/src/index';
import { IntentClient } from '../src/infra/bus/intent-client';
import type { IntentBatch, IntentReply, TaskResult } from '../src/infra/bus/messages';
import { type BusNames, busNames } from '../src/infra/bus/subjects';
import {
  createRunningRelease,
  createStudy,
  eventsOf,
  registerMockServices,
  waitForTaskStates,
} from './support/fixtures';
import { NATS_URL, startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// Attacks on the batched messages (docs/architecture.md "Workers", "Coordinator"; docs/performance.md):
// each item of a result batch or of a callback batch keeps its own id and is applied exactly once,
// and "a poison item is parked alone (error event), the others applied".

let t: TestSystem;
let study: string;
let mock: MockHandle;
let nc: NatsConnection;
let js: JetStreamClient;
let names: BusNames;

beforeAll(async () => {
  // no polls: only the results and callbacks this test injects move the tasks
  t = await startTestSystem('attack2_batches', {
    POLL_INTERVAL_MS: '3600000',
    HEALTH_INTERVAL_MS: '3600000',
  });
  study = await createStudy(t.api);
  ({ mock } = await registerMockServices(t.api, 2, { stageMs: 600_000 }));
  nc = await connect({ servers: NATS_URL });
  js = jetstream(nc);
  names = busNames(t.prefix);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await mock?.stop();
  await t?.stop();
});

const stats = () => t.system.coordinator!.stats;

function stagedResult(releaseId: string, taskId: string): TaskResult {
  return {
    id: `attack2-result-${crypto.randomUUID()}`,
    kind: 'task',
    commandId: `poll:${taskId}:attack2`,
    action: 'get_status',
    taskId,
    releaseId,
    ok: true,
    status: 200,
    state: 'staged',
    progress: 100,
    latencyMs: 1,
  };
}

async function taskState(taskId: string): Promise<string> {
  return (await t.api('GET', `/tasks/${taskId}`)).body.state;
}

describe('result batches', () => {
  /**
   * Promise (docs/performance.md, docs/architecture.md): each result in a batch is its own item; a
   * poison item is parked alone and the others are applied. What happens: the coordinator parses the
   * whole batch up front (`parseResult` maps every item through `inboundOfResult`, which throws on a
   * malformed one), so ONE malformed item makes it drop the whole message ("unreadable message
   * dropped", terminated): the good result next to it is never applied. A poll result lost this way
   * only delays (the lease), but a start/publish result lost this way waits for the lost-answer scan
   * and then becomes "outcome unknown".
   */
  test('a batch with one malformed item still applies the good result next to it', async () => {
    const created = await createRunningRelease(t.api, [study]);
    const [first] = created.tasks.map((x) => x.kf_id) as [string, string];
    const good = stagedResult(created.kf_id, first);
    const batch = { id: `attack2-batch-${crypto.randomUUID()}`, kind: 'batch', results: [good, null] };
    const ack = await js.publish(names.resultBatch, JSON.stringify(batch), { msgID: batch.id });
    expect(ack.duplicate).toBe(false);

    // the good result must be applied; the bad one set aside on its own
    const state = await until(async () => ((await taskState(first)) === 'staged' ? 'staged' : undefined), {
      timeoutMs: 10_000,
      message: 'the good result of a batch with a malformed neighbour to be applied',
    }).catch(async () => taskState(first));
    expect(state).toBe('staged');
  }, 30_000);

  /** Held: JetStream's duplicate window and processed_messages keep a replayed batch to one application. */
  test('the same result batch replayed with and without its Nats-Msg-Id is applied once', async () => {
    const created = await createRunningRelease(t.api, [study]);
    const [first, second] = created.tasks.map((x) => x.kf_id) as [string, string];
    const batch = {
      id: `attack2-batch-${crypto.randomUUID()}`,
      kind: 'batch',
      results: [stagedResult(created.kf_id, first), stagedResult(created.kf_id, second)],
    };
    const before = stats().duplicates;
    const a = await js.publish(names.resultBatch, JSON.stringify(batch), { msgID: batch.id });
    const b = await js.publish(names.resultBatch, JSON.stringify(batch), { msgID: batch.id });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    await waitForTaskStates(t.api, created.kf_id, 'staged', 10_000);
    // twice more without an id: stored, and each item skipped by the coordinator
    for (let i = 0; i < 2; i++) await js.publish(names.resultBatch, JSON.stringify(batch));
    await until(() => stats().duplicates >= before + 4, { message: 'the replays to be seen as duplicates' });
    const events = await eventsOf(t.api, created.kf_id);
    for (const id of [first, second])
      expect(events.filter((e) => e.message === `task ${id} changed from running to staged`)).toHaveLength(1);
  }, 30_000);
});

describe('callback batches (rc.intent.batch)', () => {
  async function sendBatch(items: IntentBatch['intents'] | unknown[]) {
    const replies = new Map<string, IntentReply>();
    const inboxes: string[] = [];
    const subs = items.map(() => {
      const inbox = createInbox();
      inboxes.push(inbox);
      return nc.subscribe(inbox, {
        max: 1,
        callback: (_e, m) => {
          replies.set(inbox, m.json<IntentReply>());
        },
      });
    });
    const withReplies = items.map((x, i) =>
      x && typeof x === 'object' && 'intent' in x ? { ...(x as object), replyTo: inboxes[i] } : x,
    );
    const batch = { id: `attack2-ibatch-${crypto.randomUUID()}`, kind: 'batch', intents: withReplies };
    await js.publish(names.intentBatch, JSON.stringify(batch), { msgID: batch.id });
    return {
      replies,
      inboxes,
      done: () => {
        for (const s of subs) s.unsubscribe();
      },
    };
  }

  /** Held: a callback for a task the release does not have is refused on its own; its neighbour applies. */
  test('one callback for an unknown task does not hold back the others', async () => {
    const created = await createRunningRelease(t.api, [study]);
    const [first] = created.tasks.map((x) => x.kf_id) as [string, string];
    const sent = await sendBatch([
      {
        intent: {
          type: 'task.report',
          id: `attack2-cb-${crypto.randomUUID()}`,
          releaseId: created.kf_id,
          taskId: 'TA_NOSUCHTASK',
          state: 'staged',
        },
      },
      {
        intent: {
          type: 'task.report',
          id: `attack2-cb-${crypto.randomUUID()}`,
          releaseId: created.kf_id,
          taskId: first,
          state: 'staged',
          progress: 100,
        },
      },
    ]);
    await until(() => sent.replies.size === 2, { timeoutMs: 10_000, message: 'both callbacks answered' });
    sent.done();
    expect(sent.replies.get(sent.inboxes[1]!)!.status).toBe(200);
    expect(await taskState(first)).toBe('staged');
  }, 30_000);

  /**
   * Promise: the callbacks of one tick travel as one message, "each with its own id and reply
   * subject" (docs/architecture.md), and a poison item is parked alone. What happens: `parseIntent`
   * maps every item through `inboundOfIntent`, which throws on a malformed one, and the whole message
   * is terminated: the good callback beside it is never applied and its sender never gets a reply
   * (the gateway waits out GATEWAY_REPLY_TIMEOUT_MS for nothing).
   */
  test('a callback batch with one malformed item still applies and answers the good callback', async () => {
    const created = await createRunningRelease(t.api, [study]);
    const [first] = created.tasks.map((x) => x.kf_id) as [string, string];
    const sent = await sendBatch([
      { intent: { type: 'task.report' } }, // no id: not an intent
      {
        intent: {
          type: 'task.report',
          id: `attack2-cb-${crypto.randomUUID()}`,
          releaseId: created.kf_id,
          taskId: first,
          state: 'staged',
          progress: 100,
        },
      },
    ]);
    const reply = await until(() => sent.replies.get(sent.inboxes[1]!), {
      timeoutMs: 10_000,
      message: 'the good callback to be answered',
    }).catch(() => undefined);
    sent.done();
    expect(reply?.status).toBe(200);
    expect(await taskState(first)).toBe('staged');
  }, 30_000);

  /**
   * Promise (docs/architecture.md): "The callbacks a gateway receives within one turn of its event
   * loop travel as one message". What happens: IntentClient.flushGathered puts ALL of them in one
   * message with no bound (the worker's ResultBatcher splits at 256 results / 512 KiB), so a burst
   * of some 4,000 callbacks in one turn (a mass fan-out finishing together) makes a message over
   * NATS' max_payload (1 MiB): the publish is refused and EVERY callback of the burst fails (503 to
   * each service) instead of a few messages being sent. Driven here on the gateway's IntentClient.
   */
  test('a burst of callbacks bigger than one NATS message is still delivered', async () => {
    const client = new IntentClient(nc, names, 20_000);
    try {
      const burst = Array.from({ length: 5_000 }, (_, i) =>
        client.sendGathered({
          type: 'task.report',
          id: `attack2-burst-${crypto.randomUUID()}`,
          releaseId: 'RE_ATTACK2NOSUCHRELEASE',
          taskId: `TA_ATTACK2NOSUCHTASK${i}`,
          state: 'running',
          progress: i % 100,
        }),
      );
      const settled = await Promise.allSettled(burst);
      const refused = settled.filter((x) => x.status === 'rejected');
      expect({
        refused: refused.length,
        first: refused[0] && String((refused[0] as PromiseRejectedResult).reason),
      }).toEqual({ refused: 0, first: undefined });
    } finally {
      client.close();
    }
  }, 60_000);
});
