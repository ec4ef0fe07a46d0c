/**
 * Everything a benchmark case needs to run on its own: a fresh Postgres database, a NATS prefix
 * (streams deleted at the end), the mock task services as a separate process, and the coordinator
 * as a child process (`bun src/main.ts`) with a statement/CPU counter preloaded. Loopback only.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { type Subprocess, spawn } from 'bun';
import postgres from 'postgres';
import { deleteStreams } from '../../src/infra/bus/streams';
import { busNames } from '../../src/infra/bus/subjects';
import {
  createDatabase as createScratchDatabase,
  freePort,
  type ScratchDatabase,
} from '../../test/support/harness';
import { until as sharedUntil } from '../../test/support/until';

export const ROOT = resolve(import.meta.dir, '../..');
export const BUN = join(ROOT, 'node_modules/.bin/bun');
export { BASE_DATABASE_URL } from '../../test/support/harness';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const WORK_DIR = join(tmpdir(), `rc-bench-${process.pid}`);
mkdirSync(WORK_DIR, { recursive: true });

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value other than undefined/false, bounded by `timeoutMs`; an exception ends it (the shared wait of test/support/until.ts). */
export function until<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 5,
): Promise<T> {
  return sharedUntil(fn, { message: what, timeoutMs, intervalMs, failFast: true }) as Promise<T>;
}

export { freePort };

export type BenchDatabase = ScratchDatabase;

/** A database of its own per benchmark stack (the same helper the tests use), dropped at the end. */
export function createDatabase(label: string): Promise<BenchDatabase> {
  return createScratchDatabase(
    `rc_bench_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${crypto.randomUUID().slice(0, 8)}`,
  );
}

// ---------------------------------------------------------------- mock task services

export interface MockProcess {
  url: string;
  proc: Subprocess;
  control(method: string, path: string, body?: unknown): Promise<any>;
  /** number of recorded calls matching (bounded by the mock's maxCalls, 100k) */
  count(filter: { action?: string; since?: number }): Promise<number>;
  stop(): Promise<void>;
}

export async function spawnMock(opts: {
  services: number;
  stageMs: number;
  publishMs: number;
  callback?: 'never' | 'after' | 'before';
  coordinatorUrl?: string;
}): Promise<MockProcess> {
  const args = [
    BUN,
    'mock-task-service/src/cli.ts',
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--services',
    String(opts.services),
    '--stage-ms',
    String(opts.stageMs),
    '--publish-ms',
    String(opts.publishMs),
    '--callback',
    opts.callback ?? 'never',
  ];
  if (opts.coordinatorUrl) args.push('--coordinator-url', opts.coordinatorUrl);
  const proc = spawn(args, { cwd: ROOT, stdout: 'pipe', stderr: 'ignore' });
  const reader = proc.stdout.getReader();
  let text = '';
  const deadline = Date.now() + 20_000;
  while (!text.includes('# control')) {
    if (Date.now() > deadline) throw new Error('mock did not start');
    const { value, done } = await reader.read();
    if (done) throw new Error(`mock exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  // keep draining (nothing more is printed, but never block the child)
  void (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return;
  })();
  const url = text.split('\n')[0]!.split(' ')[1]!;
  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/_control${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return res.json();
  };
  return {
    url,
    proc,
    control,
    async count(f) {
      const q = new URLSearchParams({ limit: '1' });
      if (f.action) q.set('action', f.action);
      if (f.since) q.set('since', String(f.since));
      return ((await control('GET', `/calls?${q}`)) as { total: number }).total;
    },
    async stop() {
      proc.kill('SIGTERM');
      await Promise.race([proc.exited, sleep(5_000)]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------- coordinator child

export interface CoordinatorStats {
  statements: number;
  byKind: Record<string, number>;
  cpuMs: number;
  rss: number;
  maxRssKb: number;
}

export interface CoordinatorProcess {
  url: string;
  proc: Subprocess;
  pid: number;
  logFile: string;
  stats(): Promise<CoordinatorStats>;
  /** RSS now and peak (VmHWM) from /proc, in MB */
  memory(): { rssMb: number; peakMb: number };
  stop(): Promise<void>;
}

export async function spawnCoordinator(opts: {
  label: string;
  port: number;
  env: Record<string, string>;
  /** extra bun flags, e.g. --cpu-prof */
  bunFlags?: string[];
}): Promise<CoordinatorProcess> {
  const logFile = join(WORK_DIR, `${opts.label}-coordinator.log`);
  const statsFile = join(WORK_DIR, `${opts.label}-stats.json`);
  writeFileSync(statsFile, '{"seq":0}');
  const proc = spawn(
    [BUN, ...(opts.bunFlags ?? []), '--preload', './bench/lib/stats-preload.ts', 'src/main.ts'],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        BENCH_STATS_FILE: statsFile,
        ...opts.env,
      },
      stdout: Bun.file(logFile),
      stderr: Bun.file(`${logFile}.err`),
    },
  );
  const url = `http://127.0.0.1:${opts.port}`;
  await untilAnswering(proc, url, opts.label, logFile);
  let seq = 0;
  return {
    url,
    proc,
    pid: proc.pid,
    logFile,
    stats: () => {
      const want = ++seq;
      proc.kill('SIGUSR2');
      return until(() => statsWritten(statsFile, want), 'coordinator stats', 5_000, 2);
    },
    memory: () => memoryOf(proc.pid),
    stop: () => stopProcess(proc),
  };
}

/** Waits for the process's `/status`; a process that exits first fails with its first error line. */
async function untilAnswering(proc: Subprocess, url: string, label: string, logFile: string) {
  await until(
    async () => {
      if (proc.exitCode !== null) {
        const err = await Bun.file(`${logFile}.err`)
          .text()
          .catch(() => '');
        throw new Error(`coordinator ${label} exited (${proc.exitCode}): ${err.trim().split('\n')[0]}`);
      }
      return (await fetch(`${url}/status`).catch(() => undefined))?.status === 200;
    },
    `coordinator ${label} to answer /status (log: ${logFile})`,
    30_000,
    50,
  ).catch((err) => {
    proc.kill('SIGKILL');
    throw err;
  });
}

/** The counters the preload wrote on its `want`th SIGUSR2, or undefined while not written yet. */
function statsWritten(statsFile: string, want: number): CoordinatorStats | undefined {
  try {
    const s = JSON.parse(readFileSync(statsFile, 'utf8'));
    if (s.seq < want) return undefined;
    return {
      statements: s.statements,
      byKind: s.byKind,
      cpuMs: (s.cpuUserUs + s.cpuSystemUs) / 1000,
      rss: s.rss,
      maxRssKb: s.maxRssKb,
    };
  } catch {
    return undefined;
  }
}

/** RSS now and peak (VmHWM) of a process, in MB, from /proc (0 once it is gone). */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
  } catch {
    return { rssMb: 0, peakMb: 0 };
  }
}

/** SIGTERM, then SIGKILL after 15 s. */
async function stopProcess(proc: Subprocess) {
  proc.kill('SIGTERM');
  await Promise.race([proc.exited, sleep(15_000)]);
  if (proc.exitCode === null) {
    proc.kill('SIGKILL');
    await proc.exited;
  }
}

export function diffStats(a: CoordinatorStats, b: CoordinatorStats) {
  const byKind: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.byKind)) {
    const d = v - (a.byKind[k] ?? 0);
    if (d > 0) byKind[k] = d;
  }
  return { statements: b.statements - a.statements, cpuMs: b.cpuMs - a.cpuMs, byKind };
}

// ---------------------------------------------------------------- HTTP helpers

export interface ApiResponse {
  status: number;
  body: any;
}

export function apiFor(base: string) {
  return async (method: string, path: string, body?: unknown): Promise<ApiResponse> => {
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, body: parsed };
  };
}
export type Api = ReturnType<typeof apiFor>;

/** Runs `fn` over `items` with at most `limit` at once. */
export async function pool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

// ---------------------------------------------------------------- a whole stack

export interface Stack {
  label: string;
  api: Api;
  url: string;
  mock: MockProcess;
  /** the process running the coordinator role (with topology 'all', every role) */
  coordinator: CoordinatorProcess;
  /** topology 'split': the gateway+workers process */
  app?: CoordinatorProcess;
  db: BenchDatabase;
  sql: postgres.Sql;
  prefix: string;
  study: string;
  services: number;
  env: Record<string, string>;
  /** task state changes the coordinator recorded so far (events "task … changed from … to …") */
  transitions(): Promise<number>;
  /** JetStream messages stored so far, per stream (intents, commands, results, events): its last sequence */
  busMessages(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export interface StackOptions {
  label: string;
  services: number;
  stageMs: number;
  publishMs: number;
  callback: 'never' | 'after';
  env?: Record<string, string>;
  bunFlags?: string[];
  /** 'all': one process with every role (default); 'split': gateway+workers and coordinator apart */
  topology?: 'all' | 'split';
}

/** Database + NATS prefix + mock process + coordinator process + a study + N registered services. */
export async function startStack(o: StackOptions): Promise<Stack> {
  const cleanup: Array<() => Promise<void>> = [];
  const undo = async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
  };
  try {
    const db = await createDatabase(o.label);
    cleanup.push(() => db.drop());
    const prefix = `bench${crypto.randomUUID().replace(/-/g, '').slice(0, 8)}`;
    // a case may run against NATS of its own (o.env.NATS_URL: a server or a cluster list)
    const natsUrl = o.env?.NATS_URL ?? NATS_URL;
    cleanup.push(async () => {
      const nc = await connect({ servers: natsUrl.split(','), timeout: 5_000 });
      await deleteStreams(nc, busNames(prefix));
      await nc.close();
    });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const mock = await spawnMock({
      services: o.services,
      stageMs: o.stageMs,
      publishMs: o.publishMs,
      callback: o.callback,
      coordinatorUrl: url,
    });
    cleanup.push(() => mock.stop());
    const env = stackEnv(o, { databaseUrl: db.url, prefix, port, url });
    const { app, coordinator } = await spawnRoles(o, env, port, cleanup);
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    cleanup.push(() => sql.end({ timeout: 2 }));
    const api = apiFor(url);
    const study = await registerServices(api, mock, o.services);
    return {
      label: o.label,
      api,
      url,
      mock,
      coordinator,
      app,
      db,
      sql,
      prefix,
      study,
      services: o.services,
      env,
      ...stackCounters(sql, prefix),
      stop: undo,
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

/** The settings every process of a stack runs with. */
function stackEnv(
  o: StackOptions,
  at: { databaseUrl: string; prefix: string; port: number; url: string },
): Record<string, string> {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    DATABASE_URL: at.databaseUrl,
    NATS_URL,
    NATS_PREFIX: at.prefix,
    PORT: String(at.port),
    HOST: '127.0.0.1',
    PUBLIC_URL: at.url,
    ALLOW_PRIVATE_SERVICE_URLS: 'true',
    // the bench measures the coordination path; tokens would be a separate case
    AUTH_DISABLED: 'true',
    POLL_INTERVAL_MS: '1000',
    SCHEDULER_TICK_MS: '100',
    ...o.env,
  };
}

/**
 * The stack's processes: every role in one ('all'), or the production shape of fly.toml ('split'):
 * gateway+workers serving `port`, the coordinator apart (the process whose figures are reported).
 */
async function spawnRoles(
  o: StackOptions,
  env: Record<string, string>,
  port: number,
  cleanup: Array<() => Promise<void>>,
): Promise<{ app?: CoordinatorProcess; coordinator: CoordinatorProcess }> {
  const app =
    (o.topology ?? 'all') === 'split'
      ? await spawnCoordinator({ label: `${o.label}-app`, port, env: { ...env, ROLE: 'gateway,worker' } })
      : undefined;
  if (app) cleanup.push(() => app.stop());
  const coordinatorPort = app ? await freePort() : port;
  const coordinator = await spawnCoordinator({
    label: o.label,
    port: coordinatorPort,
    env: app ? { ...env, ROLE: 'coordinator', PORT: String(coordinatorPort) } : env,
    bunFlags: [...(o.bunFlags ?? []), ...(process.env.BENCH_BUN_FLAGS?.split(' ').filter(Boolean) ?? [])],
  });
  cleanup.push(() => coordinator.stop());
  return { app, coordinator };
}

/** A study and `services` task services at the mock; returns the study's id once health checks ran. */
async function registerServices(api: Api, mock: MockProcess, services: number): Promise<string> {
  const study = `SD_${crypto
    .randomUUID()
    .replace(/[^0-9]/g, '')
    .slice(0, 8)
    .padEnd(8, '7')}`;
  const st = await api('POST', '/studies', { kf_id: study, name: 'bench study' });
  if (st.status !== 201) throw new Error(`study: ${st.status} ${JSON.stringify(st.body)}`);
  const names = Array.from({ length: services }, (_, i) => `svc-${i}`);
  await pool(names, 16, async (name) => {
    const r = await api('POST', '/task-services', { name, url: `${mock.url}/s/${name}`, author: 'bench' });
    if (r.status !== 201) throw new Error(`service ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  });
  // let the first round of health checks (every new service is due at once) pass
  await until(
    async () => (await mock.count({ action: 'status' })) >= 2 * services,
    'first health checks',
    20_000,
    50,
  ).catch(() => {});
  await sleep(200);
  return study;
}

/** What a case reads of a stack while it runs: task transitions recorded, JetStream messages stored. */
function stackCounters(sql: postgres.Sql, prefix: string): Pick<Stack, 'transitions' | 'busMessages'> {
  return {
    async transitions() {
      const [row] = await sql`select count(*)::int as n from events
        where task_id is not null and message like 'task % changed from % to %'`;
      return row!.n as number;
    },
    async busMessages() {
      const nc = await connect({ servers: NATS_URL });
      try {
        const jsm = await jetstreamManager(nc);
        const out: Record<string, number> = {};
        for (const [k, stream] of Object.entries(busNames(prefix).streams)) {
          out[k] = await jsm.streams.info(stream).then(
            (i) => i.state.last_seq,
            () => 0,
          );
        }
        return out;
      } finally {
        await nc.close();
      }
    },
  };
}

/**
 * One release from POST to `published`. Progress is followed on the release notifications
 * (a core NATS subscription to `<prefix>.evt.release.>`, the same feed downstream systems use),
 * not by polling GET, so the measurement does not load the coordinator process it measures.
 */
export async function runRelease(
  stack: Stack,
  opts: { timeoutMs?: number } = {},
): Promise<{ ms: number; id: string; gets: number }> {
  const { api } = stack;
  const feed = await followRelease(stack, { tasks: false });
  try {
    const t0 = performance.now();
    const created = await api('POST', '/releases', { name: 'bench', studies: [stack.study] });
    if (created.status !== 201) throw new Error(`release: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.kf_id as string;
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    await feed.release(id, 'staged', deadline - Date.now());
    const p = await api('POST', `/releases/${id}/publish`);
    if (p.status !== 200) throw new Error(`publish ${id}: ${p.status} ${JSON.stringify(p.body)}`);
    await feed.release(id, 'published', deadline - Date.now());
    return { ms: performance.now() - t0, id, gets: 0 };
  } finally {
    await feed.close();
  }
}

/**
 * Follows releases on the notification feed (a core NATS subscription), so a case can wait for
 * states without GET polling the process it measures. A release that halts (canceling, failed)
 * ends the wait with the reasons from its events. `tasks: false` leaves task notifications out.
 */
export async function followRelease(stack: Stack, opts: { tasks?: boolean } = {}) {
  const nc = await connect({ servers: (stack.env.NATS_URL ?? NATS_URL).split(',') });
  const releaseStates = new Map<string, Set<string>>();
  const tasksIn = new Map<string, number>();
  let wake = () => {};
  const subject = opts.tasks === false ? `${stack.prefix}.evt.release.>` : `${stack.prefix}.evt.>`;
  const sub = nc.subscribe(subject, {
    callback: (_err, msg) => {
      // <prefix>.evt.release.<id>.<state> | <prefix>.evt.task.<release>.<task>.<state>
      const parts = msg.subject.split('.');
      const state = parts[parts.length - 1]!;
      if (parts[2] === 'release') {
        const states = releaseStates.get(parts[3]!) ?? new Set();
        states.add(state);
        releaseStates.set(parts[3]!, states);
      } else tasksIn.set(state, (tasksIn.get(state) ?? 0) + 1);
      wake();
    },
  });
  await nc.flush();
  const waitFor = async (what: string, done: () => boolean, timeoutMs: number, halted?: () => string) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const id = halted?.();
      if (id) throw new Error(`release ${id} halted: ${await whyHalted(stack, id)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(left, 1_000));
      });
    }
  };
  return {
    release: (id: string, state: string, timeoutMs: number) =>
      waitFor(
        `release ${id} ${state}`,
        () => releaseStates.get(id)?.has(state) === true,
        timeoutMs,
        () => {
          const states = releaseStates.get(id);
          return states?.has('canceling') || states?.has('failed') ? id : '';
        },
      ),
    tasks: (state: string, count: number, timeoutMs: number) =>
      waitFor(`${count} tasks ${state}`, () => (tasksIn.get(state) ?? 0) >= count, timeoutMs),
    async close() {
      sub.unsubscribe();
      await nc.close();
    },
  };
}

/** The error/warning events of a release, for a readable failure message. */
export async function whyHalted(stack: Stack, releaseId: string): Promise<string> {
  try {
    const rows = await stack.sql`select event_type, message from events
      where release_id = ${releaseId} and event_type <> 'info' order by created_at limit 5`;
    return rows.map((r) => `${r.event_type}: ${r.message}`).join('; ') || '(no error events)';
  } catch (err) {
    return `(events not readable: ${err})`;
  }
}

// ---------------------------------------------------------------- the floor

const STUDIES = ['SD_BENCH001'];

async function callTask(url: string, action: string, taskId: string, releaseId: string) {
  const res = await fetch(`${url}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ action, task_id: taskId, release_id: releaseId, studies: STUDIES }),
  });
  const body = (await res.json()) as { state?: string };
  if (res.status !== 200) throw new Error(`floor ${action} ${taskId}: HTTP ${res.status}`);
  return body.state;
}

/**
 * The floor: the same HTTP calls the coordinator makes, with fetch from this process and nothing
 * else: N× initialize in parallel, N× start, N× get_status (until staged), N× publish,
 * N× get_status (until published).
 */
export async function floorRelease(mockUrl: string, services: number, releaseId: string): Promise<number> {
  const urls = Array.from({ length: services }, (_, i) => `${mockUrl}/s/svc-${i}`);
  const all = (action: string) =>
    Promise.all(urls.map((u, i) => callTask(u, action, `${releaseId}_T${i}`, releaseId)));
  const pollUntil = async (state: string) => {
    for (let round = 0; round < 1_000; round++) {
      if ((await all('get_status')).every((s) => s === state)) return;
      await sleep(1);
    }
    throw new Error(`floor: never ${state}`);
  };
  const t0 = performance.now();
  await all('initialize');
  await all('start');
  await pollUntil('staged');
  await all('publish');
  await pollUntil('published');
  return performance.now() - t0;
}

// ---------------------------------------------------------------- figures

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}
export const median = (xs: number[]) => percentile(xs, 50);
export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
