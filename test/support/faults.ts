import { expect } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import postgres from 'postgres';
import type { MockHandle } from '../../mock-task-service/src/index';
import { BASE_DATABASE_URL } from './database';
import { waitForState } from './fixtures';
import { freePort } from './processes';
import type { Api } from './system';
import { until } from './until';

/** SOAK=1 (`npm run test:soak`) makes the fault and abuse loops longer; the default run stays small. */
export const SOAK = process.env.SOAK === '1';
export const soakOr = <T>(normal: T, soak: T): T => (SOAK ? soak : normal);

/**
 * A nats-server of the test's own on a free loopback port, with its own store, so a test may stop,
 * wipe and restart it without touching the shared server on 4222.
 */
export class PrivateNats {
  private proc?: Subprocess;
  readonly storeDir = mkdtempSync(join(tmpdir(), 'rc-faults-nats-'));
  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateNats> {
    const n = new PrivateNats(await freePort());
    await n.start();
    return n;
  }

  get url() {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start() {
    this.proc = spawn(
      ['nats-server', '-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir],
      {
        stdout: 'ignore',
        stderr: 'ignore',
        env: { PATH: `${process.env.PATH}:/usr/sbin:/usr/local/sbin` },
      },
    );
    await until(
      async () => {
        const s = await Bun.connect({ hostname: '127.0.0.1', port: this.port, socket: { data() {} } }).catch(
          () => null,
        );
        s?.end();
        return s !== null;
      },
      { timeoutMs: 10_000, message: `private nats-server on ${this.port} to listen` },
    );
  }

  /** kill -9 (nothing is flushed: the harshest stop) */
  async kill() {
    this.proc?.kill('SIGKILL');
    await this.proc?.exited;
    this.proc = undefined;
  }

  /** deletes the whole JetStream store (streams, consumers, KV); only while stopped */
  wipe() {
    if (this.proc) throw new Error('stop the server before wiping its store');
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  async close() {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

/**
 * Makes the test database refuse new connections and ends every session on it, for as long as
 * `during` runs; always lets connections back in afterwards.
 */
export async function withPostgresAway<T>(databaseUrl: string, during: () => Promise<T>): Promise<T> {
  const dbName = new URL(databaseUrl).pathname.slice(1);
  const admin = postgres(BASE_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`alter database "${dbName}" with allow_connections false`);
    await admin.unsafe(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${dbName}'`);
    return await during();
  } finally {
    await admin.unsafe(`alter database "${dbName}" with allow_connections true`);
    await admin.end();
  }
}

/** A deliberate outage (the fault itself, not synchronisation): waits `ms` of real time. */
export function outage(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** How often each task of a release received `action` from the coordinator, per the mock's call log. */
export function callsPerTask(mock: MockHandle, releaseId: string, action: string): Map<string, number> {
  const per = new Map<string, number>();
  for (const c of mock.calls) {
    if (c.releaseId === releaseId && c.action === action && c.taskId) {
      per.set(c.taskId, (per.get(c.taskId) ?? 0) + 1);
    }
  }
  return per;
}

/** No task of the release got `action` twice (and, when `expected` is given, exactly that many tasks got it). */
export function expectNoDuplicate(mock: MockHandle, releaseId: string, action: string, expected?: number) {
  const per = callsPerTask(mock, releaseId, action);
  const twice = [...per].filter(([, n]) => n > 1);
  expect({ releaseId, action, twice }).toEqual({ releaseId, action, twice: [] });
  if (expected !== undefined)
    expect({ releaseId, action, tasks: per.size }).toEqual({ releaseId, action, tasks: expected });
}

/**
 * Publishes a release once it is staged, retrying while the gateway answers 503 (a dependency still
 * coming back), and waits until it is published.
 */
export async function publishWhenStaged(api: Api, releaseId: string) {
  await waitForState(api, releaseId, 'staged', 60_000);
  const res = await until(
    async () => {
      const r = await api('POST', `/releases/${releaseId}/publish`);
      return r.status === 503 ? undefined : r;
    },
    { timeoutMs: 30_000, message: 'the gateway to take the publish' },
  );
  expect([200, 202]).toContain(res.status);
  return waitForState(api, releaseId, 'published', 60_000);
}

/** Row counts of every table of a database (to prove a rejected request changed nothing). */
export async function rowCounts(sql: postgres.Sql): Promise<Record<string, number>> {
  const tables = await sql<{ name: string }[]>`
    select table_name as name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`;
  const out: Record<string, number> = {};
  for (const t of tables) {
    const [row] = await sql.unsafe<{ n: number }[]>(`select count(*)::int as n from "${t.name}"`);
    out[t.name] = row!.n;
  }
  return out;
}

export const FINAL_STATES = ['published', 'canceled', 'failed'];

/**
 * `until` measured with the monotonic clock (performance.now), for tests that move the wall clock
 * (Date.now) on purpose.
 */
export async function untilMonotonic<T>(
  check: () => T | Promise<T>,
  opts: { timeoutMs: number; intervalMs?: number; message: string },
): Promise<NonNullable<T>> {
  const deadline = performance.now() + opts.timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
  throw new Error(`timed out after ${opts.timeoutMs} ms: ${opts.message} (last: ${String(last)})`);
}

/**
 * Moves this process's wall clock (Date.now) by `offsetMs`, as an NTP step or a VM resume would;
 * timers and performance.now keep running normally. Returns the function that puts it back.
 */
export function shiftWallClock(offsetMs: number): () => void {
  const original = Date.now;
  const real = original.bind(Date);
  Date.now = () => real() + offsetMs;
  return () => {
    Date.now = original;
  };
}
