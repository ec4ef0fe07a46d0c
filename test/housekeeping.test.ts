import { afterAll, beforeAll, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import { loadConfig } from '../src/config';
import { KEEP_APPLIED_DAYS, Scheduler } from '../src/coordinator/scheduler';
import { type Database, openDatabase } from '../src/infra/db/client';
import { queryRows } from '../src/infra/db/rows';
import { createLogger } from '../src/infra/logger';
import { deriveTiming } from '../src/timing';
import { createTestDatabase } from './support/database';

/*
 * The coordinator forgets what only guards against repeats once no repeat can come
 * (docs/api.md, "Idempotency-Key"): applied message ids, answered intents and Idempotency-Keys
 * older than KEEP_APPLIED_DAYS. Newer ones, and intents not applied yet, stay.
 */

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let database: Database;

beforeAll(async () => {
  testDb = await createTestDatabase('housekeeping');
  database = await openDatabase({ url: testDb.url, dataDir: '/nonexistent' });
  await database.migrate();
});
afterAll(async () => {
  await database?.close();
  await testDb?.drop();
});

test('records older than the retention are forgotten; newer ones and unapplied intents stay', async () => {
  const db = database.db;
  const old = sql`now() - make_interval(days => ${KEEP_APPLIED_DAYS + 1}::int)`;
  const intent = (id: string, appliedAt: ReturnType<typeof sql> | null, createdAt = old) =>
    db.execute(sql`insert into intents (id, type, release_id, body, created_at, applied_at)
      values (${id}, 'release.cancel', 'RE_X', '{}'::jsonb, ${createdAt}, ${appliedAt})`);
  await db.execute(
    sql`insert into processed_messages (id, created_at) values ('old', ${old}), ('new', now())`,
  );
  await db.execute(sql`insert into idempotency_keys (scope, key, request_hash, created_at)
    values ('studies', 'old', 'h', ${old}), ('studies', 'new', 'h', now())`);
  await intent('applied-long-ago', old);
  await intent('applied-now', sql`now()`);
  await intent('never-applied', null);

  const config = loadConfig({ NODE_ENV: 'test' });
  const scheduler = new Scheduler(
    db,
    // the housekeeping scan needs Postgres only
    undefined as never,
    undefined as never,
    undefined as never,
    () => {},
    {
      tickMs: 1_000,
      healthIntervalMs: 1_000,
      timing: deriveTiming(config),
      taskTimeoutMs: 60_000,
      batchSize: 100,
    },
    await createLogger({ level: 'silent', format: 'json', production: false }),
  );
  await scheduler.forgetOldRecords();

  const ids = async (q: ReturnType<typeof sql>) =>
    (await queryRows<{ id: string }>(db, q)).map((r) => r.id).sort();
  expect(await ids(sql`select id from processed_messages`)).toEqual(['new']);
  expect(await ids(sql`select key as id from idempotency_keys`)).toEqual(['new']);
  expect(await ids(sql`select id from intents`)).toEqual(['applied-now', 'never-applied']);
});
