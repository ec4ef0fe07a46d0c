import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../src/index.ts';
import { task, until } from './helpers.ts';

let mock: MockHandle;

beforeAll(async () => {
  mock = await startMock({ services: 3, stageMs: 300, publishMs: 200 });
});
afterAll(async () => {
  await mock.stop();
});

describe('GET /status', () => {
  test('root and named services answer 200 {name, message, version}', async () => {
    const root = await fetch(`${mock.url}/status`);
    expect(root.status).toBe(200);
    expect(await root.json()).toEqual({ name: 'mock-task-service', message: 'ready', version: '1.0.0' });
    const named = await fetch(`${mock.serviceUrl('svc-2')}/status`);
    expect(await named.json()).toMatchObject({ name: 'svc-2' });
    expect(mock.serviceNames).toEqual(['svc-0', 'svc-1', 'svc-2']);
    expect(mock.serviceUrl('svc-2')).toBe(`${mock.url}/s/svc-2`);
  });

  test('unknown service and unknown path answer 404, wrong method 405', async () => {
    expect((await fetch(`${mock.url}/s/nope/status`)).status).toBe(404);
    expect((await fetch(`${mock.url}/s/svc-0/other`)).status).toBe(404);
    expect((await fetch(`${mock.url}/tasks`)).status).toBe(405);
    expect(() => mock.serviceUrl('nope')).toThrow('unknown service');
  });
});

describe('POST /tasks', () => {
  test('initialize → pending with the full reply shape; twice is idempotent', async () => {
    const base = mock.serviceUrl('svc-0');
    const first = await task(base, 'initialize', 'TA_INIT', { studies: ['SD_1', 'SD_2'] });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({
      name: 'svc-0',
      kf_id: 'TA_INIT',
      release_id: 'RE_TEST',
      state: 'pending',
      progress: 0,
      date_submitted: expect.any(String),
    });
    const date = first.body.date_submitted as string;
    expect(new Date(date).toISOString()).toBe(date);
    const second = await task(base, 'initialize', 'TA_INIT');
    expect(second.body).toEqual(first.body);
    expect(mock.tasks('svc-0').filter((t) => t.kf_id === 'TA_INIT')).toHaveLength(1);
  });

  test('start → running, progress rises, then staged at 100; publish → publishing → published', async () => {
    const base = mock.serviceUrl('svc-1');
    await task(base, 'initialize', 'TA_FLOW');
    const started = await task(base, 'start', 'TA_FLOW');
    expect(started.body).toMatchObject({ state: 'running' });
    const seen: number[] = [];
    const staged = await until(async () => {
      const r = await task(base, 'get_status', 'TA_FLOW');
      seen.push(r.body.progress as number);
      return r.body.state === 'staged' ? r : null;
    }, 5000);
    expect(staged.body.progress).toBe(100);
    expect(seen.some((p) => p > 0 && p < 100)).toBe(true);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);

    const publishing = await task(base, 'publish', 'TA_FLOW');
    expect(publishing.body.state).toBe('publishing');
    const published = await until(async () => {
      const r = await task(base, 'get_status', 'TA_FLOW');
      return r.body.state === 'published' ? r : null;
    });
    expect(published.body.progress).toBe(100);
    expect(mock.tasks('svc-1').find((t) => t.kf_id === 'TA_FLOW')?.state).toBe('published');
  });

  test('a second start does not restart the work; publish before staged is refused', async () => {
    const base = mock.serviceUrl('svc-1');
    await task(base, 'initialize', 'TA_TWICE');
    await task(base, 'start', 'TA_TWICE');
    const again = await task(base, 'start', 'TA_TWICE');
    expect(again.body.state).toBe('running');
    const early = await task(base, 'publish', 'TA_TWICE');
    expect(early.status).toBe(400);
    expect(String(early.body.message)).toContain('running');
    const view = mock.tasks('svc-1').find((t) => t.kf_id === 'TA_TWICE');
    expect(view?.starts).toBe(2);
  });

  test('cancel → canceled (from pending or running), and stays canceled', async () => {
    const base = mock.serviceUrl('svc-2');
    await task(base, 'initialize', 'TA_C1');
    expect((await task(base, 'cancel', 'TA_C1')).body.state).toBe('canceled');
    await task(base, 'initialize', 'TA_C2');
    await task(base, 'start', 'TA_C2');
    expect((await task(base, 'cancel', 'TA_C2')).body.state).toBe('canceled');
    const later = await task(base, 'get_status', 'TA_C2');
    expect(later.body.state).toBe('canceled');
  });

  test('404 for an unknown task on get_status, start, publish and cancel', async () => {
    for (const action of ['get_status', 'start', 'publish', 'cancel']) {
      const r = await task(mock.url, action, 'TA_UNKNOWN');
      expect(r.status).toBe(404);
      expect(typeof r.body.message).toBe('string');
    }
  });

  test('400 with {message} for bad JSON, non-object, missing fields, unknown action, bad studies', async () => {
    const send = async (body: string) => {
      const res = await fetch(`${mock.url}/tasks`, { method: 'POST', body });
      return { status: res.status, body: (await res.json()) as { message: string } };
    };
    const cases: Array<[string, string]> = [
      ['{not json', 'not valid JSON'],
      ['[1,2]', 'JSON object'],
      ['{"task_id":"TA_1","release_id":"RE_1"}', 'action'],
      ['{"action":"frobnicate","task_id":"TA_1","release_id":"RE_1"}', 'action'],
      ['{"action":"initialize","release_id":"RE_1"}', 'task_id'],
      ['{"action":"initialize","task_id":"TA_1"}', 'release_id'],
      ['{"action":"initialize","task_id":"","release_id":"RE_1"}', 'task_id'],
      ['{"action":"initialize","task_id":"TA_1","release_id":"RE_1","studies":"SD_1"}', 'studies'],
    ];
    for (const [body, word] of cases) {
      const r = await send(body);
      expect(r.status).toBe(400);
      expect(r.body.message).toContain(word);
    }
    expect(mock.callsFor({ service: 'mock-task-service', action: 'invalid' }).length).toBeGreaterThanOrEqual(
      8,
    );
  });

  test('calls are recorded with action, ids, body, answered status and lowercased headers', async () => {
    const base = mock.serviceUrl('svc-0');
    await task(
      base,
      'initialize',
      'TA_REC',
      {},
      {
        headers: { Authorization: 'Bearer abc', 'User-Agent': 'release-coordinator/test' },
      },
    );
    const [rec] = mock.callsFor({ service: 'svc-0', taskId: 'TA_REC' });
    expect(rec).toMatchObject({
      service: 'svc-0',
      action: 'initialize',
      taskId: 'TA_REC',
      releaseId: 'RE_TEST',
      status: 200,
      body: { action: 'initialize', task_id: 'TA_REC', release_id: 'RE_TEST' },
    });
    expect(rec!.headers.authorization).toBe('Bearer abc');
    expect(rec!.headers['user-agent']).toBe('release-coordinator/test');
    expect(Math.abs(rec!.at - Date.now())).toBeLessThan(5000);
    await fetch(`${base}/status`);
    expect(mock.callsFor({ service: 'svc-0', action: 'status' }).at(-1)?.status).toBe(200);
  });
});

test('tasksWithoutCancel lists the tasks of a release sent some action but no cancel; callsFor({releaseId})', async () => {
  const m = await startMock({ services: 2 });
  try {
    const [a, b] = [m.serviceUrl('svc-0'), m.serviceUrl('svc-1')];
    const release = { release_id: 'RE_C' };
    await task(a, 'initialize', 'TA_C1', release);
    await task(b, 'initialize', 'TA_C1', release); // same task id at another service: a separate task
    await task(a, 'initialize', 'TA_C2', release);
    await task(a, 'initialize', 'TA_OTHER', { release_id: 'RE_OTHER' });
    m.setBehaviour({ httpStatus: 503 }, 'svc-1', 'cancel'); // a refused cancel was still sent
    await task(a, 'cancel', 'TA_C1', release);
    await task(b, 'cancel', 'TA_C1', release);
    expect(m.tasksWithoutCancel('RE_C')).toEqual([{ service: 'svc-0', taskId: 'TA_C2' }]);
    await task(a, 'cancel', 'TA_C2', release);
    expect(m.tasksWithoutCancel('RE_C')).toEqual([]);
    expect(m.tasksWithoutCancel('RE_OTHER')).toEqual([{ service: 'svc-0', taskId: 'TA_OTHER' }]);
    expect(m.callsFor({ releaseId: 'RE_C', action: 'cancel' })).toHaveLength(3);
    const viaControl = await fetch(`${m.controlUrl}/tasks-without-cancel?releaseId=RE_OTHER`);
    expect(await viaControl.json()).toEqual({ tasks: [{ service: 'svc-0', taskId: 'TA_OTHER' }] });
    expect((await fetch(`${m.controlUrl}/tasks-without-cancel`)).status).toBe(400);
    const calls = (await (await fetch(`${m.controlUrl}/calls?releaseId=RE_OTHER`)).json()) as {
      total: number;
    };
    expect(calls.total).toBe(1);
  } finally {
    await m.stop();
  }
});

test('maxCalls bounds the live calls array (oldest dropped, same array)', async () => {
  const m = await startMock({ maxCalls: 10 });
  try {
    const calls = m.calls;
    for (let i = 0; i < 40; i++) await fetch(`${m.url}/status`);
    expect(m.calls).toBe(calls);
    expect(calls.length).toBeGreaterThanOrEqual(10);
    expect(calls.length).toBeLessThanOrEqual(11);
    expect(calls.every((c) => c.action === 'status' && c.status === 200)).toBe(true);
  } finally {
    await m.stop();
  }
});
