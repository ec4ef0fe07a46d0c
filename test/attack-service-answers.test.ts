import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createRelease, createStudy, disableAllServices, eventsOf, waitForState } from './support/fixtures';
import { startTestSystem, type TestSystem } from './support/system';

/**
 * Attack: task services that answer in ways the mock cannot play (a 200 whose body is not JSON,
 * polls that go backwards). Each test states what docs/lifecycle.md or
 * docs/task-service-protocol.md promise and checks it against the real stack.
 */

type Answer = { status?: number; body: string } | 'hang';
type Script = (action: string, taskId: string) => Answer;

interface Stub {
  url: string;
  calls: Array<{ action: string; taskId: string }>;
  script: Script;
  stop(): void;
}

/** A task service whose every POST /tasks answer is scripted; GET /status is always ready. */
function startStub(script: Script): Stub {
  const stub: Stub = {
    url: '',
    calls: [],
    script,
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path.endsWith('/status')) return Response.json({ name: 'stub', message: 'ready', version: '1' });
      const body = (await req.json()) as { action: string; task_id: string };
      stub.calls.push({ action: body.action, taskId: body.task_id });
      const answer = stub.script(body.action, body.task_id);
      if (answer === 'hang') return new Promise<Response>(() => {});
      return new Response(answer.body, {
        status: answer.status ?? 200,
        headers: { 'content-type': 'application/json' },
      });
    },
  });
  stub.url = `http://127.0.0.1:${server.port}`;
  return stub;
}

const json = (state: string, progress = 0): Answer => ({
  body: JSON.stringify({ state, progress, kf_id: 'x', release_id: 'y' }),
});

let t: TestSystem;
let study: string;
const stubs: Stub[] = [];

beforeAll(async () => {
  t = await startTestSystem('attack_answers', {
    REQUEST_TIMEOUT_MS: '1000',
    START_TIMEOUT_MS: '1000',
    PUBLISH_TIMEOUT_MS: '1000',
    // long enough for the other tests here, short enough to see one task time out
    TASK_TIMEOUT_MS: '8000',
  });
  study = await createStudy(t.api);
});
afterAll(async () => {
  for (const s of stubs) s.stop();
  await t?.stop();
});

/** Only these stubs are enabled services: the next release gets one task per stub. */
async function useServices(...scripts: Script[]): Promise<Stub[]> {
  await disableAllServices(t.api);
  const out: Stub[] = [];
  for (const [i, script] of scripts.entries()) {
    const stub = startStub(script);
    stubs.push(stub);
    const res = await t.api('POST', '/task-services', { name: `stub-${stubs.length}-${i}`, url: stub.url });
    expect(res.status).toBe(201);
    out.push(stub);
  }
  return out;
}

describe('answers that are not what the protocol says', () => {
  /**
   * docs/task-service-protocol.md, "Status codes": "A 200 whose body is not a JSON object is a
   * refusal too", and a refused start fails the task and the release at once (docs/lifecycle.md,
   * "Staging": `start` refused → task failed; release halts). FAILS today: src/worker/worker.ts
   * `classify` takes a 200 without a JSON object for "no answer" (outcome unknown), so the start
   * counts as possibly taken, the task is polled, and here the release goes on to `staged`.
   */
  test('a start answered 200 with a body that is not JSON is a refusal: the release fails', async () => {
    let started = false;
    await useServices((action) => {
      if (action === 'start') {
        started = true;
        return { body: '<html>OK</html>' };
      }
      if (action === 'get_status') return json(started ? 'staged' : 'pending', 100);
      return json(action === 'cancel' ? 'canceled' : 'pending');
    });
    const created = await createRelease(t.api, [study]);
    const done = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 20_000);
    const events = await eventsOf(t.api, created.kf_id);
    const startEvent = events.find((e) => e.message.startsWith('request to start task'));
    // what happened, for the report
    console.log('garbage start answer:', done.state, '|', startEvent?.event_type, startEvent?.message);
    expect(done.state).toBe('failed');
    expect(startEvent?.event_type).toBe('error');
  });

  /**
   * docs/lifecycle.md, "Failures": a poll answered with a refusal (not 502/503/504) fails the task
   * at once; "refusal" = "an HTTP answer other than 200 (or a 200 without a JSON object)".
   * FAILS today: a 200 that is not JSON is ridden out like an outage (the task fails only after
   * the outage tolerance, and the halt says the service "did not answer polls").
   */
  test('a poll answered 200 with a body that is not JSON is a refusal: the task fails at once', async () => {
    await useServices((action) => {
      if (action === 'start') return json('running');
      if (action === 'get_status') return { body: 'Service Temporarily Unavailable' };
      return json(action === 'cancel' ? 'canceled' : 'pending');
    });
    const created = await createRelease(t.api, [study]);
    const done = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 20_000);
    console.log('garbage poll answer:', done.state, '|', done.halt?.message);
    expect(done.state).toBe('failed');
    expect(done.halt.message).toContain('get_status refused');
  });

  /**
   * docs/lifecycle.md, "A service that goes back": the service accepted publish (200 `publishing`)
   * and then answers every poll `staged` (it lost the publish, e.g. restored from a snapshot). The
   * first such poll writes a warning naming both states; if polls still show `staged` once the
   * publish deadline has passed, the task fails and the release halts naming it (before the fix
   * every backwards poll was dropped without a word, and the release sat in `publishing` until
   * TASK_TIMEOUT_MS).
   */
  test('publish accepted, then every poll goes back to staged: a warning, then the release halts naming the task', async () => {
    const phase = new Map<string, string>();
    const script: Script = (action, taskId) => {
      if (action === 'initialize') phase.set(taskId, 'pending');
      if (action === 'start') phase.set(taskId, 'staged');
      if (action === 'publish') return json('publishing');
      if (action === 'cancel') phase.set(taskId, 'canceled');
      return json(phase.get(taskId) ?? 'pending', 100);
    };
    await useServices(script, (action) => {
      if (action === 'publish') return json('published', 100);
      return script(action, `good-${action}`);
    });
    const created = await createRelease(t.api, [study]);
    await waitForState(t.api, created.kf_id, 'staged', 20_000);
    expect((await t.api('POST', `/releases/${created.kf_id}/publish`)).status).toBe(200);
    const done = await waitForState(t.api, created.kf_id, ['failed', 'published', 'canceled'], 20_000);
    const events = await eventsOf(t.api, created.kf_id);
    const warned = events.filter((e) => e.event_type === 'warning');
    const regressing = done.tasks.find((x: { state: string }) => x.state === 'failed');
    console.log(
      'poll regression:',
      done.state,
      JSON.stringify(done.halt),
      'warnings:',
      warned.map((e) => e.message),
    );
    expect(warned.some((e) => e.message.includes('reports staged after it had reported publishing'))).toBe(
      true,
    );
    expect(done.state).toBe('failed');
    expect(done.halt.task).toEndWith(`/tasks/${regressing.kf_id}`);
    expect(done.halt.message).toContain('still reports staged');
  });

  /**
   * docs/lifecycle.md, "Why a release halted": `task`, `task_service` are "the task and service
   * that caused it (absolute URLs), or `null` (a person's cancel, a release timeout)", and a task
   * that made no progress for TASK_TIMEOUT_MS halts the release naming that task. FAILS today: a
   * task timeout halts with `halt.task`, `halt.task_service` and `halt.service_name` all null
   * (src/lifecycle/lifecycle.ts, `timeout`: `step.halt({reason: 'cancel', message})` without the
   * task), so the dashboard banner and `rc releases show` cannot say which service held it up.
   */
  test('a task that times out: the halt names that task and its service', async () => {
    const [stuck] = await useServices((action) => {
      if (action === 'get_status' || action === 'start') return json('running', 7);
      return json(action === 'cancel' ? 'canceled' : 'pending');
    });
    const created = await createRelease(t.api, [study]);
    const done = await waitForState(t.api, created.kf_id, ['staged', 'failed', 'canceled'], 30_000);
    const task = done.tasks[0];
    console.log('task timeout halt:', done.state, JSON.stringify(done.halt));
    expect(stuck!.calls.some((c) => c.action === 'get_status')).toBe(true);
    expect(done.state).toBe('canceled');
    expect(done.halt.message).toContain(task.kf_id);
    expect(done.halt.task).toEndWith(`/tasks/${task.kf_id}`);
    expect(done.halt.service_name).toBe(task.service_name);
  });
});
