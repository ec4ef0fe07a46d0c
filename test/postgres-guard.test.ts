import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { type Database, openDatabase } from '../src/infra/db/client';
import { queryRows } from '../src/infra/db/rows';
import { RequestBudget, withBudget } from '../src/infra/request-budget';
import { createTestDatabase } from './support/database';
import { outage } from './support/faults';
import { TcpProxy } from './support/tcp-proxy';
import { until } from './support/until';

// The database guard of the gateway (src/db/guard.ts) in front of a TCP proxy that can make
// Postgres vanish (black-hole: every byte held and delivered when it passes again, like a
// SIGSTOPped server or a healed partition) or refuse connections. Statements run as a request's
// do: inside a RequestBudget. Outage lengths are the fault being injected, not synchronisation.

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let direct: postgres.Sql;
let proxy: TcpProxy;
let database: Database;

beforeAll(async () => {
  testDb = await createTestDatabase('pg_guard');
  direct = postgres(testDb.url, { max: 1, onnotice: () => {} });
  await direct`create table writes (label text not null)`;
  proxy = await TcpProxy.start();
  database = await openDatabase({ url: proxy.url(testDb.url), dataDir: '/nonexistent' });
});

afterAll(async () => {
  await database?.close();
  await direct?.end();
  proxy?.close();
  await testDb?.drop();
});

/** runs `work` as a request would (with a budget), and how long it took */
async function asRequest<T>(
  work: () => Promise<T>,
  budgetMs = 25_000,
): Promise<{ ms: number; value?: T; error?: Error }> {
  const budget = new RequestBudget(budgetMs);
  const started = performance.now();
  try {
    const value = await withBudget(budget, async () => await work());
    return { ms: performance.now() - started, value };
  } catch (error) {
    budget.abandon(error as Error);
    return { ms: performance.now() - started, error: error as Error };
  }
}

const rootCode = (err: unknown) => {
  let e = err as { code?: string; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return e?.code;
};

const labels = async () =>
  (await direct<{ label: string }[]>`select label from writes order by label`).map((r) => r.label);

/** Postgres answers again through the proxy, and the guard lets requests through */
async function healed() {
  proxy.setMode('pass');
  await until(
    async () => (await asRequest(() => queryRows(database.db, sql`select 1`))).error === undefined,
    {
      timeoutMs: 10_000,
      message: 'requests to reach Postgres again',
    },
  );
}

describe('Postgres black-holed', () => {
  test('requests fail fast (503 code) instead of waiting, and none of their writes applies when Postgres returns', async () => {
    const { db } = database;
    expect(
      (await asRequest(() => db.execute(sql`insert into writes values ('before')`))).error,
    ).toBeUndefined();
    // a transaction in flight when the outage begins
    const inFlight = asRequest(() =>
      db.transaction(async (tx) => {
        await tx.execute(sql`insert into writes values ('in flight')`);
        await tx.execute(sql`select pg_sleep(1)`);
        await tx.execute(sql`insert into writes values ('in flight, second')`);
      }),
    );
    await until(
      async () =>
        (await direct`select 1 from pg_stat_activity where state = 'active' and query like '%pg_sleep(1)%'`)
          .length > 0,
      { message: 'the transaction to be in its second statement' },
    );
    proxy.setMode('blackhole');
    const during = await Promise.all([
      inFlight,
      asRequest(() => db.execute(sql`select count(*) from writes`)),
      asRequest(() => db.execute(sql`insert into writes values ('during, alone')`)),
      asRequest(() =>
        db.transaction(async (tx) => {
          await tx.execute(sql`insert into writes values ('during, in a transaction')`);
        }),
      ),
    ]);
    // once the guard knows, a request is refused at once
    const later = await asRequest(() => db.execute(sql`insert into writes values ('after detection')`));
    console.log(
      `black-hole: first requests answered in ${during.map((r) => Math.round(r.ms)).join(', ')} ms, later ones in ${Math.round(later.ms)} ms`,
    );
    for (const r of [...during, later]) {
      expect(r.error).toBeDefined();
      expect(rootCode(r.error)).toBe('DATABASE_UNAVAILABLE');
    }
    await outage(2_000);
    await healed();
    // what the proxy held is delivered now; the sessions it belonged to were ended, so it changes nothing
    expect(await labels()).toEqual(['before']);
    expect(
      (await asRequest(() => db.execute(sql`insert into writes values ('after')`))).error,
    ).toBeUndefined();
    expect(await labels()).toEqual(['after', 'before']);
  }, 30_000);

  test('a request whose budget runs out while Postgres is slow (not gone) is answered, and its write rolls back', async () => {
    const { db } = database;
    const slow = await asRequest(
      () =>
        db.transaction(async (tx) => {
          await tx.execute(sql`insert into writes values ('slow')`);
          await tx.execute(sql`select pg_sleep(1.5)`);
        }),
      1_000,
    );
    // the guard's deadline, or the statement_timeout it set from it, whichever came first: both 503
    expect(['DATABASE_UNAVAILABLE', '57014']).toContain(rootCode(slow.error)!);
    console.log(`slow Postgres: answered after ${Math.round(slow.ms)} ms of a 1000 ms budget`);
    // the statement finishes on the server, then the transaction rolls back instead of committing
    await until(
      async () =>
        (
          await direct`select 1 from pg_stat_activity where query like '%pg_sleep(1.5)%' and pid <> pg_backend_pid()`
        ).length === 0,
      { timeoutMs: 10_000, message: 'the slow statement to end' },
    );
    expect(await labels()).not.toContain('slow');
  });
});

describe('Postgres refusing connections', () => {
  test('requests are refused at once, and work again when it accepts', async () => {
    const { db } = database;
    proxy.setMode('refuse');
    const refused = await Promise.all([1, 2, 3].map(() => asRequest(() => db.execute(sql`select 1`))));
    console.log(`refused: answered in ${refused.map((r) => Math.round(r.ms)).join(', ')} ms`);
    for (const r of refused) expect(r.error).toBeDefined();
    await healed();
    expect((await asRequest(() => db.execute(sql`select 1`))).error).toBeUndefined();
  });
});

describe('a busy process', () => {
  test('is not taken for Postgres gone: its requests keep working', async () => {
    // a guard of its own (no probe history), straight to Postgres
    const own = await openDatabase({ url: testDb.url, dataDir: '/nonexistent' });
    // the fault: every turn of the event loop takes 300 ms (a process applying large batches), so
    // the probe's connection (several round trips) needs more than probeTimeoutMs of wall time
    const busy = setInterval(() => Bun.sleepSync(300), 1);
    try {
      // the statement outlives suspectAfterMs, so the guard probes Postgres
      const slow = await asRequest(() => queryRows(own.db, sql`select pg_sleep(0.5)`));
      expect(slow.error).toBeUndefined();
      const after = await asRequest(() => queryRows(own.db, sql`select 1`));
      expect(after.error).toBeUndefined();
    } finally {
      clearInterval(busy);
      await own.close();
    }
  });
});

describe('the driver', () => {
  test('a connection whose array-types query fails does not end the process (patched postgres.js)', async () => {
    const child = Bun.spawn(['bun', 'test/support/types-query-canceled.ts', testDb.url], {
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const exited = await Promise.race([
      child.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 20_000)),
    ]);
    if (exited === 'timeout') child.kill();
    const [out, err] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]);
    expect({ exited, out: out.trim(), err: err.slice(0, 500) }).toEqual({
      exited: 0,
      out: 'survived',
      err: '',
    });
  });
});

describe('outside a request', () => {
  test('statements are not bounded by the guard (the coordinator waits for Postgres)', async () => {
    const { db } = database;
    proxy.setMode('blackhole');
    const pending = queryRows<{ n: number }>(db, sql`select 7 as n`);
    await outage(2_000);
    proxy.setMode('pass');
    expect((await pending)[0]?.n).toBe(7);
  }, 15_000);
});
