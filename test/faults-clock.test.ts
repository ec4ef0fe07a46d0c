import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import postgres from 'postgres';
import { shiftWallClock, untilMonotonic } from './support/faults';
import { createStudy, eventsOf } from './support/fixtures';
import { freePort } from './support/processes';
import { startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// Timeouts must not depend on the wall clock of a coordinator or worker process: a step of the
// clock (NTP correction, VM resumed, a badly set host) must neither fire a timeout early nor stop
// it from firing. Deadlines are kept in database time (now() in Postgres) and call deadlines are
// timers (monotonic). The process's Date.now is moved by hours here; waits use performance.now.
// The mock task service runs in a process of its own, so its clock does not move with ours.

const HOURS_2 = 2 * 3600_000;
const TASK_TIMEOUT_MS = 2_500;
const RELEASE_TIMEOUT_MS = 600_000;
const REQUEST_TIMEOUT_MS = 2_500;
let t: TestSystem;
let mockProc: Subprocess;
let mockUrl: string;
const serviceIds: Record<'slow' | 'hung', string> = { slow: '', hung: '' };
let study: string;
let sql: postgres.Sql;
let restore: (() => void) | undefined;

beforeAll(async () => {
  t = await startTestSystem('faults_clock', {
    TASK_TIMEOUT_MS: String(TASK_TIMEOUT_MS),
    RELEASE_TIMEOUT_MS: String(RELEASE_TIMEOUT_MS),
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    POLL_INTERVAL_MS: '100',
    // failing cancels are retried for the outage tolerance: 1 s here
    HEALTH_FAILURE_THRESHOLD: '1',
    HEALTH_INTERVAL_MS: '1000',
  });
  // `slow`: its work never ends (only a timeout ends its releases); `hung`: never answers initialize
  const port = await freePort();
  mockUrl = `http://127.0.0.1:${port}`;
  mockProc = spawn(
    [process.execPath, 'mock-task-service/src/cli.ts', '--port', String(port), '--services', 'slow,hung'],
    { cwd: join(import.meta.dir, '..'), stdout: 'ignore', stderr: 'ignore' },
  );
  mockProc.unref();
  await until(async () => (await fetch(`${mockUrl}/s/slow/status`).catch(() => undefined))?.ok, {
    timeoutMs: 15_000,
    message: 'the mock task service to listen',
  });
  await control('behaviour', { service: 'slow', behaviour: { stageMs: 3_600_000 } });
  for (const name of ['slow', 'hung'] as const) {
    const res = await t.api('POST', '/task-services', { name, url: `${mockUrl}/s/${name}` });
    expect(res.status).toBe(201);
    serviceIds[name] = res.body.kf_id;
  }
  await control('behaviour', { service: 'hung', action: 'initialize', behaviour: { hang: true } });
  await enableOnly('slow');
  study = await createStudy(t.api);
  sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
}, 60_000);

afterEach(() => {
  restore?.();
  restore = undefined;
});

afterAll(async () => {
  restore?.();
  await sql?.end();
  mockProc?.kill('SIGKILL');
  await mockProc?.exited;
  await t?.stop();
});

async function control(path: string, body: unknown) {
  const res = await fetch(`${mockUrl}/_control/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
}

async function enableOnly(name: 'slow' | 'hung') {
  for (const [n, id] of Object.entries(serviceIds)) {
    expect((await t.api('PATCH', `/task-services/${id}`, { enabled: n === name })).status).toBe(200);
  }
}

async function mockCalls(action: string): Promise<Array<{ taskId?: string }>> {
  const res = await fetch(`${mockUrl}/_control/calls?action=${action}`);
  return ((await res.json()) as { calls: Array<{ taskId?: string }> }).calls;
}

const stateOf = async (id: string) => (await t.api('GET', `/releases/${id}`)).body as { state: string };

describe('timeouts and a wall clock that jumps', () => {
  test('the release deadline is set in database time, whatever the coordinator clock says', async () => {
    restore = shiftWallClock(HOURS_2);
    const res = await t.api('POST', '/releases', { name: 'clock ahead', studies: [study] });
    expect(res.status).toBe(201);
    const [row] = await sql<{ ms: number }[]>`
      select extract(epoch from (deadline_at - created_at)) * 1000 as ms from releases where kf_id = ${res.body.kf_id}`;
    // within a few seconds of RELEASE_TIMEOUT_MS after creation, in the database's own time
    expect(Math.abs(Number(row!.ms) - RELEASE_TIMEOUT_MS)).toBeLessThan(5_000);
    restore();
    restore = undefined;
    expect((await t.api('DELETE', `/releases/${res.body.kf_id}`)).status).toBe(200);
  }, 30_000);

  test('the clock jumps back 2 h while tasks run: the no-progress timeout still fires on time', async () => {
    const res = await t.api('POST', '/releases', { name: 'clock back', studies: [study] });
    expect(res.status).toBe(201);
    const id = res.body.kf_id;
    await untilMonotonic(async () => (await stateOf(id)).state === 'running', {
      timeoutMs: 10_000,
      message: 'release to run',
    });
    const jumped = performance.now();
    restore = shiftWallClock(-HOURS_2);
    const ended = await untilMonotonic(
      async () => {
        const r = await stateOf(id);
        return ['canceled', 'failed', 'published'].includes(r.state) ? r : undefined;
      },
      { timeoutMs: TASK_TIMEOUT_MS + 6_000, message: 'the task timeout to cancel the release' },
    );
    console.log(
      `clock back 2 h: release ${ended.state} ${Math.round(performance.now() - jumped)} ms after the jump`,
    );
    expect(ended.state).toBe('canceled');
    const messages = (await eventsOf(t.api, id)).map((e) => e.message).join('\n');
    expect(messages).toMatch(/no progress/);
  }, 60_000);

  test('the clock jumps forward 2 h while tasks run: nothing times out early', async () => {
    const res = await t.api('POST', '/releases', { name: 'clock forward', studies: [study] });
    const id = res.body.kf_id;
    await untilMonotonic(async () => (await stateOf(id)).state === 'running', {
      timeoutMs: 10_000,
      message: 'release to run',
    });
    restore = shiftWallClock(HOURS_2);
    // well inside the task timeout (in real time) the release must still be running
    const running = await untilMonotonic(
      async () => {
        const [row] = await sql<{ progress_ms: number }[]>`
          select extract(epoch from (now() - progress_at)) * 1000 as progress_ms from tasks where release_id = ${id}`;
        return Number(row!.progress_ms) >= TASK_TIMEOUT_MS / 2 ? row : undefined;
      },
      { timeoutMs: TASK_TIMEOUT_MS + 5_000, message: 'half the task timeout to pass in database time' },
    );
    expect(running).toBeTruthy();
    expect((await stateOf(id)).state).toBe('running');
    restore();
    restore = undefined;
    expect((await t.api('DELETE', `/releases/${id}`)).status).toBe(200);
  }, 30_000);

  test('a hung call ends at its request deadline, in real time, across clock jumps both ways', async () => {
    await enableOnly('hung');
    const res = await t.api('POST', '/releases', { name: 'hung call', studies: [study] });
    const id = res.body.kf_id;
    await untilMonotonic(
      async () => (await mockCalls('initialize')).some((c) => c.taskId === res.body.tasks[0].kf_id),
      { timeoutMs: 10_000, message: 'initialize to reach the service' },
    );
    const sent = performance.now();
    restore = shiftWallClock(HOURS_2);
    restore();
    restore = shiftWallClock(-HOURS_2);
    const ended = await untilMonotonic(
      async () => {
        const r = await stateOf(id);
        return ['canceled', 'failed'].includes(r.state) ? r : undefined;
      },
      { timeoutMs: REQUEST_TIMEOUT_MS + 10_000, message: 'the request deadline to fail the release' },
    );
    const tookMs = performance.now() - sent;
    expect(ended.state).toBe('failed');
    expect(tookMs).toBeGreaterThan(REQUEST_TIMEOUT_MS * 0.8);
    const messages = (await eventsOf(t.api, id)).map((e) => e.message).join('\n');
    expect(messages).toContain(`timeout after ${REQUEST_TIMEOUT_MS} ms`);
  }, 60_000);
});
