import { describe, expect, test } from 'bun:test';
import type { Action } from '../domain/lifecycle/states';
import { type CallOutcome, getStatus, postTask } from '../infra/task-service/client';
import { classify } from './worker';

/*
 * How a task service's HTTP answer becomes an outcome for the lifecycle (docs/lifecycle.md,
 * "Calls that get no answer"): answered (200 with a JSON object), refused (any other HTTP answer,
 * a redirect included, or an address the policy refuses), no answer (nothing came back: the
 * outcome is unknown), or not sent (the release halted first). No network: fetch is a stub.
 */

const ACTIONS: Action[] = ['initialize', 'start', 'publish', 'get_status', 'cancel'];
const BASE = 'https://search.example.org/task-service/';
const task = { task_id: 'TA_00000001', release_id: 'RE_00000001', studies: ['SD_00000001'] };

/** A fetch that answers every request with this response, and remembers what it was asked. */
function answering(status: number, body: unknown, headers: Record<string, string> = {}) {
  const asked: Array<{ url: string; init: RequestInit }> = [];
  const fetch = (async (url: string, init: RequestInit) => {
    asked.push({ url, init });
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { 'content-type': 'application/json', ...headers } });
  }) as unknown as typeof globalThis.fetch;
  return { fetch, asked };
}

/** A fetch that fails before any answer, as a refused connection does. */
const unreachable = (async () => {
  throw Object.assign(new Error('Unable to connect'), { code: 'ConnectionRefused' });
}) as unknown as typeof fetch;

/** A fetch that never answers: only its signal ends it. */
const silent = ((_url: string, init: RequestInit) =>
  new Promise((_resolve, reject) => {
    init.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true });
  })) as unknown as typeof fetch;

const post = (
  action: Action,
  fetch: typeof globalThis.fetch,
  extra: Partial<{ timeoutMs: number; signal: AbortSignal }> = {},
) => postTask(BASE, { action, ...task }, { timeoutMs: 5_000, fetch, ...extra });

describe('answered: 200 with a JSON object', () => {
  test('the body is kept (state, progress); the call is ok', async () => {
    const out = await post('start', answering(200, { state: 'running', progress: 0.4 }).fetch);
    expect(out).toMatchObject({
      ok: true,
      transport: false,
      status: 200,
      body: { state: 'running', progress: 0.4 },
    });
    expect(out.latencyMs).toBeGreaterThanOrEqual(0);
  });

  test('POST {url}/tasks (one slash), JSON both ways, redirects not followed, caller headers added', async () => {
    const { fetch, asked } = answering(200, { state: 'initialized' });
    await postTask(
      BASE,
      { action: 'initialize', ...task },
      { timeoutMs: 5_000, fetch, headers: { authorization: 'Bearer x' } },
    );
    expect(asked).toHaveLength(1);
    const { url, init } = asked[0]!;
    expect(url).toBe('https://search.example.org/task-service/tasks');
    expect(init.method).toBe('POST');
    expect(init.redirect).toBe('manual');
    expect(JSON.parse(String(init.body))).toEqual({ action: 'initialize', ...task });
    expect(init.headers).toMatchObject({
      'content-type': 'application/json',
      accept: 'application/json',
      authorization: 'Bearer x',
    });
    expect((init.headers as Record<string, string>)['user-agent']).toStartWith('release-coordinator/');
  });

  test('GET {url}/status', async () => {
    const { fetch, asked } = answering(200, { name: 'search', message: 'ready' });
    expect((await getStatus(BASE, { timeoutMs: 5_000, fetch })).ok).toBe(true);
    expect(asked[0]!.url).toBe('https://search.example.org/task-service/status');
    expect(asked[0]!.init.method).toBe('GET');
  });
});

describe('refused: an HTTP answer other than 200', () => {
  for (const status of [400, 401, 403, 404, 409, 422, 500]) {
    test(`${status} is the service's answer: refused for every action`, async () => {
      const out = await post('start', answering(status, { detail: 'no' }).fetch);
      expect(out).toMatchObject({ ok: false, transport: false, status });
      expect(out.error).toStartWith(`HTTP ${status}`);
      for (const action of ACTIONS)
        expect({ action, outcome: classify(action, out) }).toEqual({ action, outcome: 'refused' });
    });
  }

  test('a redirect is an answer, not followed: refused', async () => {
    const { fetch, asked } = answering(302, '', { location: 'http://169.254.169.254/' });
    const out = await post('publish', fetch);
    expect(asked).toHaveLength(1);
    expect(out).toMatchObject({ ok: false, transport: false, status: 302 });
    expect(classify('publish', out)).toBe('refused');
  });

  test('502, 503 and 504 (a proxy while the service restarts): no answer yet for a poll, refused otherwise', async () => {
    for (const status of [502, 503, 504]) {
      const out = await post('get_status', answering(status, 'Bad Gateway').fetch);
      expect(classify('get_status', out)).toBe('unknown');
      for (const action of ['initialize', 'start', 'publish', 'cancel'] as const)
        expect({ status, action, outcome: classify(action, out) }).toEqual({
          status,
          action,
          outcome: 'refused',
        });
    }
  });
});

describe('no answer: the outcome is unknown', () => {
  test('a refused connection', async () => {
    const out = await post('start', unreachable);
    expect(out).toMatchObject({ ok: false, transport: true, error: 'connection refused' });
    expect(out.status).toBeUndefined();
    for (const action of ACTIONS) expect(classify(action, out)).toBe('unknown');
  });

  test('the deadline passed', async () => {
    const out = await post('publish', silent, { timeoutMs: 20 });
    expect(out).toMatchObject({ ok: false, transport: true, error: 'timeout after 20 ms' });
    expect(classify('publish', out)).toBe('unknown');
  });

  test('the call was aborted because its release halted', async () => {
    const halted = new AbortController();
    const call = post('start', silent, { signal: halted.signal });
    halted.abort();
    const out = await call;
    expect(out).toMatchObject({ ok: false, transport: true, error: 'aborted (release halted)' });
    expect(classify('start', out)).toBe('unknown');
  });
});

describe('outcomes decided before any call', () => {
  const before = (o: Partial<CallOutcome> & { refused?: boolean; notSent?: boolean }) => ({
    ok: false,
    transport: false,
    latencyMs: 0,
    ...o,
  });

  test('an address the policy refuses: refused, for every action', () => {
    for (const action of ACTIONS)
      expect(classify(action, before({ refused: true, error: 'refused: ...' }))).toBe('refused');
  });

  test('the release halted before the command went out: not sent', () => {
    for (const action of ACTIONS) expect(classify(action, before({ notSent: true }))).toBe('not_sent');
  });
});
