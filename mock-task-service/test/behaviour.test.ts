import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { type MockHandle, startMock } from '../src/index.ts';
import { task, until } from './helpers.ts';

let mock: MockHandle;
let seq = 0;
const id = () => `TA_B${++seq}`;

beforeAll(async () => {
  mock = await startMock({ services: ['alpha', 'beta'], stageMs: 150, publishMs: 100 });
});
afterEach(() => {
  mock.reset();
});
afterAll(async () => {
  await mock.stop();
});

const alpha = () => mock.serviceUrl('alpha');
const beta = () => mock.serviceUrl('beta');

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

describe('latency', () => {
  test('fixed latency delays every answer of that service only', async () => {
    mock.setBehaviour({ latencyMs: 120 }, 'alpha');
    const slow = await timed(() => fetch(`${alpha()}/status`));
    expect(slow.value.status).toBe(200);
    expect(slow.ms).toBeGreaterThanOrEqual(115);
    const fast = await timed(() => fetch(`${beta()}/status`));
    expect(fast.ms).toBeLessThan(100);
  });

  test('a latency range gives delays within [min, max]', async () => {
    mock.setBehaviour({ latencyMs: [40, 80] }, 'alpha', 'initialize');
    const r = await timed(() => task(alpha(), 'initialize', id()));
    expect(r.value.status).toBe(200);
    expect(r.ms).toBeGreaterThanOrEqual(38);
    expect(mock.behaviourOf('alpha', 'initialize').latencyMs).toEqual([40, 80]);
    expect(mock.behaviourOf('alpha', 'start').latencyMs).toBe(0);
  });
});

describe('status codes', () => {
  test('any status for one action, task unchanged; other actions and services unaffected', async () => {
    mock.setBehaviour({ httpStatus: 503 }, 'alpha', 'initialize');
    const t = id();
    const refused = await task(alpha(), 'initialize', t);
    expect(refused.status).toBe(503);
    expect(typeof refused.body.message).toBe('string');
    expect(mock.tasks('alpha').some((x) => x.kf_id === t)).toBe(false);
    expect((await task(beta(), 'initialize', t)).status).toBe(200);
    mock.setBehaviour({ httpStatus: 0 }, 'alpha', 'initialize');
    expect((await task(alpha(), 'initialize', t)).status).toBe(200);
    mock.setBehaviour({ httpStatus: 500 }, undefined, 'start');
    expect((await task(alpha(), 'start', t)).status).toBe(500);
    expect((await task(beta(), 'start', t)).status).toBe(500);
    expect(mock.callsFor({ service: 'alpha', action: 'start' }).at(-1)?.status).toBe(500);
  });

  test('counted rules (scenario/control `times`) apply to the next N requests only', async () => {
    const m = await startMock({
      scenario: { rules: [{ action: 'get_status', behaviour: { httpStatus: 502 }, times: 2 }] },
    });
    try {
      const t = id();
      await task(m.url, 'initialize', t);
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await task(m.url, 'get_status', t)).status);
      expect(codes).toEqual([502, 502, 200]);
      m.reset();
      expect((await task(m.url, 'get_status', t)).status).toBe(502);
    } finally {
      await m.stop();
    }
  });
});

describe('/status', () => {
  test('down answers 503 (or the configured code) while /tasks keeps working', async () => {
    mock.setBehaviour({ statusMode: 'down' }, 'alpha');
    expect((await fetch(`${alpha()}/status`)).status).toBe(503);
    expect((await task(alpha(), 'initialize', id())).status).toBe(200);
    mock.setBehaviour({ statusDownCode: 500 }, 'alpha');
    expect((await fetch(`${alpha()}/status`)).status).toBe(500);
    expect((await fetch(`${beta()}/status`)).status).toBe(200);
  });

  test('flapping alternates ok / 503', async () => {
    mock.setBehaviour({ statusMode: 'flap' }, 'beta');
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await fetch(`${beta()}/status`)).status);
    expect(codes).toEqual([200, 503, 200, 503, 200, 503]);
  });

  test('flapping with a probability gives both answers', async () => {
    mock.setBehaviour({ statusMode: 'flap', flapProbability: 0.5 }, 'beta', 'status');
    const codes = new Set<number>();
    await until(async () => {
      codes.add((await fetch(`${beta()}/status`)).status);
      return codes.size === 2;
    }, 5000);
    expect([...codes].sort()).toEqual([200, 503]);
  });

  test('slow status delays only GET /status', async () => {
    mock.setBehaviour({ statusLatencyMs: 150 }, 'alpha');
    const slow = await timed(() => fetch(`${alpha()}/status`));
    expect(slow.ms).toBeGreaterThanOrEqual(145);
    const fast = await timed(() => task(alpha(), 'initialize', id()));
    expect(fast.ms).toBeLessThan(140);
  });

  test('status body shapes: nested, bare, text', async () => {
    mock.setBehaviour({ statusShape: 'nested', version: '2.3.4' }, 'alpha');
    expect(await (await fetch(`${alpha()}/status`)).json()).toEqual({
      message: { name: 'alpha', version: '2.3.4' },
    });
    mock.setBehaviour({ statusShape: 'bare' }, 'alpha');
    expect(await (await fetch(`${alpha()}/status`)).json()).toEqual({});
    mock.setBehaviour({ statusShape: 'text' }, 'alpha');
    expect(await (await fetch(`${alpha()}/status`)).text()).toBe('OK');
  });
});

describe('hang and drop', () => {
  test('hang keeps the request open until the client aborts; recorded with status 0', async () => {
    mock.setBehaviour({ hang: true }, 'alpha', 'start');
    const t = id();
    await task(alpha(), 'initialize', t);
    const ac = new AbortController();
    let settled = false;
    const pending = task(alpha(), 'start', t, {}, { signal: ac.signal }).finally(() => {
      settled = true;
    });
    await until(
      () => mock.callsFor({ service: 'alpha', action: 'start', taskId: t }).length === 1,
      2000,
      'start call',
    );
    // The request is held: the other endpoints still answer while it is pending.
    expect((await fetch(`${alpha()}/status`)).status).toBe(200);
    expect(settled).toBe(false);
    ac.abort();
    await expect(pending).rejects.toThrow();
    expect(mock.callsFor({ service: 'alpha', action: 'start', taskId: t })[0]?.status).toBe(0);
    expect(mock.tasks('alpha').find((x) => x.kf_id === t)?.state).toBe('pending');
  });

  test('a service-wide hang also holds /status', async () => {
    mock.setBehaviour({ hang: true }, 'beta');
    const ac = new AbortController();
    const pending = fetch(`${beta()}/status`, { signal: ac.signal });
    await until(() => mock.callsFor({ service: 'beta', action: 'status' }).length === 1);
    ac.abort();
    await expect(pending).rejects.toThrow();
  });

  test('hung requests are released by stop()', async () => {
    const m = await startMock({ behaviour: { hang: true } });
    const pending = fetch(`${m.url}/status`).then(
      () => 'answered',
      () => 'rejected',
    );
    await until(() => m.calls.length === 1);
    await m.stop();
    expect(await pending).toBe('rejected');
  });

  test('drop closes the connection without a response: fetch rejects', async () => {
    mock.setBehaviour({ drop: true }, 'alpha', 'get_status');
    const t = id();
    await task(alpha(), 'initialize', t);
    await expect(task(alpha(), 'get_status', t)).rejects.toThrow();
    expect(mock.callsFor({ service: 'alpha', action: 'get_status', taskId: t })[0]?.status).toBe(0);
    mock.setBehaviour({ drop: true }, 'alpha', 'status');
    await expect(fetch(`${alpha()}/status`)).rejects.toThrow();
    // the server itself is fine afterwards
    expect((await task(alpha(), 'cancel', t)).status).toBe(200);
  });
});

describe('lost replies', () => {
  test('dropReply: the start is applied, then the connection closes without an answer', async () => {
    mock.setBehaviour({ dropReply: true }, 'alpha', 'start');
    const t = id();
    await task(alpha(), 'initialize', t);
    await expect(task(alpha(), 'start', t)).rejects.toThrow();
    expect(mock.callsFor({ service: 'alpha', action: 'start', taskId: t })[0]?.status).toBe(0);
    expect(mock.tasks('alpha').find((x) => x.kf_id === t)).toMatchObject({ state: 'running', starts: 1 });
    expect((await task(alpha(), 'get_status', t)).body.state).toBe('running');
    // drop, by contrast, loses the request before the action.
    mock.setBehaviour({ drop: true, dropReply: false }, 'alpha', 'start');
    const u = id();
    await task(alpha(), 'initialize', u);
    await expect(task(alpha(), 'start', u)).rejects.toThrow();
    expect(mock.tasks('alpha').find((x) => x.kf_id === u)?.state).toBe('pending');
  });
});

describe('work', () => {
  test('failAfterMs turns a running task failed with partial progress', async () => {
    mock.setBehaviour({ failAfterMs: 60, stageMs: 1000 }, 'alpha');
    const t = id();
    await task(alpha(), 'initialize', t);
    expect((await task(alpha(), 'start', t)).body.state).toBe('running');
    const failed = await until(async () => {
      const r = await task(alpha(), 'get_status', t);
      return r.body.state === 'failed' ? r : null;
    });
    expect(failed.body.progress as number).toBeLessThan(100);
    expect((await task(alpha(), 'cancel', t)).body.state).toBe('failed');
  });

  test('immediate: start answers staged and publish answers published', async () => {
    mock.setBehaviour({ immediate: true, stageMs: 10_000 }, 'beta');
    const t = id();
    await task(beta(), 'initialize', t);
    expect((await task(beta(), 'start', t)).body).toMatchObject({ state: 'staged', progress: 100 });
    expect((await task(beta(), 'publish', t)).body).toMatchObject({ state: 'published', progress: 100 });
  });

  test('replyWhenDone: start/publish answer only after the work, with the final state', async () => {
    mock.setBehaviour({ replyWhenDone: true, stageMs: 200, publishMs: 150 }, 'alpha');
    const t = id();
    await task(alpha(), 'initialize', t);
    const start = await timed(() => task(alpha(), 'start', t));
    expect(start.value.body).toMatchObject({ state: 'staged', progress: 100 });
    expect(start.ms).toBeGreaterThanOrEqual(190);
    const publish = await timed(() => task(alpha(), 'publish', t));
    expect(publish.value.body.state).toBe('published');
    expect(publish.ms).toBeGreaterThanOrEqual(140);
  });

  test('replyWhenDone: a caller that times out does not stop the work; polls find the task staged', async () => {
    mock.setBehaviour({ replyWhenDone: true, stageMs: 800 }, 'alpha', 'start');
    const t = id();
    await task(alpha(), 'initialize', t);
    const gaveUp = await task(alpha(), 'start', t, {}, { signal: AbortSignal.timeout(50) }).then(
      () => 'answered',
      () => 'gave up',
    );
    expect(gaveUp).toBe('gave up');
    expect((await task(alpha(), 'get_status', t)).body.state).toBe('running');
    await until(async () => (await task(alpha(), 'get_status', t)).body.state === 'staged', 3000, 'staged');
    expect(mock.tasks('alpha').find((x) => x.kf_id === t)).toMatchObject({ state: 'staged', starts: 1 });
    // The start that got no answer is recorded as such.
    await until(() => mock.callsFor({ action: 'start', taskId: t })[0]?.status === 0, 3000, 'start record');
  });

  test('forgetTasks: old tasks answer 404, or 400 when configured; initialize works again', async () => {
    const t = id();
    await task(alpha(), 'initialize', t);
    await task(beta(), 'initialize', t);
    mock.forgetTasks('alpha');
    expect((await task(alpha(), 'get_status', t)).status).toBe(404);
    expect((await task(beta(), 'get_status', t)).status).toBe(200);
    mock.setBehaviour({ unknownTaskStatus: 400 });
    mock.forgetTasks();
    expect((await task(beta(), 'start', t)).status).toBe(400);
    expect(mock.tasks()).toHaveLength(0);
    expect((await task(alpha(), 'initialize', t)).body.state).toBe('pending');
  });
});

describe('answer forms', () => {
  test('state aliases and upper case', async () => {
    mock.setBehaviour({ stateAliases: { pending: 'initialized', canceled: 'cancelled' } }, 'alpha');
    const t = id();
    expect((await task(alpha(), 'initialize', t)).body.state).toBe('initialized');
    expect((await task(alpha(), 'cancel', t)).body.state).toBe('cancelled');
    mock.setBehaviour({ stateAliases: { canceled: 'cancelling' } }, 'alpha', 'cancel');
    expect((await task(alpha(), 'cancel', t)).body.state).toBe('cancelling');

    mock.setBehaviour({ upperCaseStates: true, immediate: true }, 'beta');
    const u = id();
    expect((await task(beta(), 'initialize', u)).body.state).toBe('PENDING');
    expect((await task(beta(), 'start', u)).body.state).toBe('STAGED');
    // the mock's own view stays canonical
    expect(mock.tasks('beta').find((x) => x.kf_id === u)?.state).toBe('staged');
  });

  test('progress as int, float, "50%" string, null or missing', async () => {
    mock.setBehaviour({ stageMs: 400 }, 'alpha');
    const t = id();
    await task(alpha(), 'initialize', t);
    await task(alpha(), 'start', t);
    await until(async () => ((await task(alpha(), 'get_status', t)).body.progress as number) > 0);
    const get = async (progressForm: 'int' | 'float' | 'string' | 'null' | 'missing') => {
      mock.setBehaviour({ progressForm }, 'alpha', 'get_status');
      return (await task(alpha(), 'get_status', t)).body;
    };
    expect(Number.isInteger((await get('int')).progress)).toBe(true);
    const f = (await get('float')).progress as number;
    expect(typeof f).toBe('number');
    expect(f).toBeGreaterThan(0);
    expect((await get('string')).progress).toMatch(/^\d+%$/);
    const n = await get('null');
    expect('progress' in n && n.progress === null).toBe(true);
    expect('progress' in (await get('missing'))).toBe(false);
  });
});

describe('setBehaviour scoping and reset', () => {
  test('later calls win; a service rule beats an earlier global one; reset restores options', async () => {
    mock.setBehaviour({ httpStatus: 500 });
    mock.setBehaviour({ httpStatus: 0 }, 'beta');
    expect((await task(alpha(), 'initialize', id())).status).toBe(500);
    expect((await task(beta(), 'initialize', id())).status).toBe(200);
    mock.setBehaviour({ httpStatus: 418 });
    expect((await task(beta(), 'initialize', id())).status).toBe(418);
    expect(() => mock.setBehaviour({}, 'nope')).toThrow('unknown service');
    mock.reset();
    expect(mock.calls).toHaveLength(0);
    expect((await task(alpha(), 'initialize', id())).status).toBe(200);
  });

  test('options: behaviour for all services and perService overrides', async () => {
    const m = await startMock({
      services: 2,
      behaviour: { stateAliases: { pending: 'initialized' } },
      perService: { 'svc-1': { httpStatus: 503 } },
    });
    try {
      expect((await task(m.serviceUrl('svc-0'), 'initialize', 'T')).body.state).toBe('initialized');
      expect((await task(m.serviceUrl('svc-1'), 'initialize', 'T')).status).toBe(503);
      m.setBehaviour({ httpStatus: 0 }, 'svc-1');
      expect((await task(m.serviceUrl('svc-1'), 'initialize', 'T')).status).toBe(200);
      m.reset();
      expect((await task(m.serviceUrl('svc-1'), 'initialize', 'T')).status).toBe(503);
    } finally {
      await m.stop();
    }
  });
});
