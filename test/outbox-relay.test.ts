import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { sql } from 'drizzle-orm';
import { OutboxRelay } from '../src/coordinator/outbox-relay';
import { type OutboxMessage, outboxMessage, outboxRowText } from '../src/coordinator/store/outbox';
import { type Database, openDatabase } from '../src/infra/db/client';
import { queryRows } from '../src/infra/db/rows';
import { createLogger } from '../src/infra/logger';
import { createTestDatabase } from './support/database';
import { testPrefix } from './support/run';
import { NATS_URL } from './support/system';
import { until } from './support/until';

// The relay on its own: a batch row is deleted only once every message of it is stored, the sweep
// republishes what a crash or an outage left behind, and a message published twice is stored once (its id is the Nats-Msg-Id).

const prefix = testPrefix('relay');
const stream = `${prefix.toUpperCase()}_TEST`;
let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let database: Database;
let nc: NatsConnection;
let relay: OutboxRelay;

beforeAll(async () => {
  testDb = await createTestDatabase('outbox_relay');
  database = await openDatabase({ url: testDb.url, dataDir: '/nonexistent', poolSize: 2 });
  await database.migrate();
  nc = await connect({ servers: NATS_URL });
  const log = await createLogger({ level: 'silent', production: false });
  relay = new OutboxRelay(database.db, jetstream(nc), log);
});
afterAll(async () => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(stream).catch(() => {});
  await nc?.close();
  await database?.close();
  await testDb?.drop();
});

const message = (n: number): OutboxMessage =>
  outboxMessage(`${prefix}-m${n}-${crypto.randomUUID()}`, `${prefix}.evt.${n}`, { n });

async function storedIn(subjectFilter: string): Promise<number[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const out: number[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m && (subjectFilter === '>' || m.subject === subjectFilter)) out.push(m.json<{ n: number }>().n);
  }
  return out;
}

const batchRows = () => queryRows<{ id: string }>(database.db, sql`select id from outbox_batches`);

async function insertBatch(id: string, messages: OutboxMessage[]) {
  await database.db.execute(
    sql`insert into outbox_batches (id, messages) values (${id}, ${outboxRowText(messages)})`,
  );
}

describe('outbox relay', () => {
  test('a batch that cannot be stored stays for the sweep, which publishes and deletes it later', async () => {
    // no stream captures the subjects yet: every publish fails (no responders)
    const batch = [message(1), message(2)];
    await insertBatch('batch-a', batch);
    await relay.publish('batch-a', batch);
    expect((await batchRows()).map((r) => r.id)).toEqual(['batch-a']);

    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.>`] });
    expect(await relay.sweep(0)).toBe(2);
    expect(await batchRows()).toEqual([]);
    expect((await storedIn('>')).sort()).toEqual([1, 2]);
  });

  test('a batch published again (a crash before its row was deleted) is stored once', async () => {
    const batch = [message(4), message(5)];
    await insertBatch('batch-b', batch);
    await relay.publish('batch-b', batch);
    // the row is deleted off the hot path, once every message got its ack
    await until(async () => (await batchRows()).length === 0, {
      timeoutMs: 5_000,
      message: 'batch-b deleted',
    });
    await insertBatch('batch-c', batch); // the same messages, as if the delete had been lost
    expect(await relay.sweep(0)).toBe(2);
    expect(await storedIn(`${prefix}.evt.4`)).toEqual([4]);
    expect(await storedIn(`${prefix}.evt.5`)).toEqual([5]);
  });

  test('a batch stored in part keeps only the messages that were not, so none is sent twice', async () => {
    // the stream captures <prefix>.> but not <prefix>x.> (no responders for that one)
    const stored = message(6);
    const refused = { ...message(7), subject: `${prefix}x.evt.7` };
    await insertBatch('batch-d', [stored, refused]);
    await relay.publish('batch-d', [stored, refused]);
    const left = await until(
      async () => {
        const [row] = await queryRows<{ messages: string }>(
          database.db,
          sql`select messages from outbox_batches where id = 'batch-d'`,
        );
        const ids = (JSON.parse(row!.messages) as OutboxMessage[]).map((m) => m.id);
        return ids.length === 1 ? ids : undefined;
      },
      { timeoutMs: 5_000, message: 'batch-d to keep only the refused message' },
    );
    expect(left).toEqual([refused.id]);
    expect(await storedIn(`${prefix}.evt.6`)).toEqual([6]);
    await database.db.execute(sql`delete from outbox_batches where id = 'batch-d'`);
  });

  test('each message is serialised once: the row embeds its text, and a row of the earlier format reads the same', async () => {
    const m = message(8);
    // the row text is an array of {id, subject, payload}, the payload being the message's own JSON text
    expect(JSON.parse(outboxRowText([m]))).toEqual([{ id: m.id, subject: m.subject, payload: { n: 8 } }]);
    // a row written before payloads were kept as text (JSON.stringify of the whole array) is swept alike
    const earlier = [{ id: m.id, subject: m.subject, payload: { n: 8 } }];
    await database.db.execute(
      sql`insert into outbox_batches (id, messages) values ('batch-earlier', ${JSON.stringify(earlier)})`,
    );
    expect(await relay.sweep(0)).toBe(1);
    expect(await storedIn(`${prefix}.evt.8`)).toEqual([8]);
    expect((await batchRows()).map((r) => r.id)).not.toContain('batch-earlier');
  });

  test('an empty batch publishes nothing and touches no row', async () => {
    await insertBatch('batch-empty', []);
    await relay.publish('batch-empty', []);
    expect((await batchRows()).map((r) => r.id)).toContain('batch-empty');
    await database.db.execute(sql`delete from outbox_batches where id = 'batch-empty'`);
  });
});
