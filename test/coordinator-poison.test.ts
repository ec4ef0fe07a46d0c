import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, createInbox, headers, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import postgres from 'postgres';
import { newKfId } from '../src/domain/ids';
import { type Intent, type IntentReply, REPLY_HEADER } from '../src/infra/bus/messages';
import { busNames } from '../src/infra/bus/subjects';
import { createStudy, waitForState } from './support/fixtures';
import { NATS_URL, startTestSystem, type TestSystem } from './support/system';
import { until } from './support/until';

// A message the coordinator cannot apply (here an intent the gateway would have refused, published
// on the bus directly) is a poison message: tried alone a few times, then parked (terminated in
// NATS, an error event, a metric, one error log line) and answered, instead of failing and being
// redelivered until NATS gives up while its sender waits for a reply that never comes (issue #17).

let t: TestSystem;
let nc: NatsConnection;
let direct: postgres.Sql;
let study: string;
const logLines: Array<{ level: number; msg: string }> = [];

beforeAll(async () => {
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line)) });
  t = await startTestSystem(
    'poison',
    { POLL_INTERVAL_MS: '3600000', HEALTH_INTERVAL_MS: '3600000' },
    {},
    log,
  );
  study = await createStudy(t.api);
  nc = await connect({ servers: NATS_URL });
  direct = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
}, 60_000);

afterAll(async () => {
  await direct?.end();
  await nc?.close();
  await t?.stop();
});

const create = (name: string): Extract<Intent, { type: 'release.create' }> => ({
  type: 'release.create',
  id: `poison-test-${crypto.randomUUID()}`,
  release: {
    kfId: newKfId('RE'),
    name,
    description: '',
    studies: [study],
    tags: [],
    author: '',
    isMajor: false,
  },
});

describe('a message the coordinator cannot apply', () => {
  test('is parked after a few tries and answered; the message next to it in the batch is applied', async () => {
    const names = busNames(t.prefix);
    const js = jetstream(nc);
    const inbox = createInbox();
    let answer: IntentReply | undefined;
    const sub = nc.subscribe(inbox, {
      max: 1,
      callback: (_err, m) => {
        answer = m.json<IntentReply>();
      },
    });
    const poison = create('a NUL \u0000 in the name');
    const healthy = create('healthy neighbour');
    const h = headers();
    h.set(REPLY_HEADER, inbox);
    const errorsBefore = logLines.filter((l) => l.level >= 50).length;
    await Promise.all([
      js.publish(names.intent(poison.type), JSON.stringify(poison), { msgID: poison.id, headers: h }),
      js.publish(names.intent(healthy.type), JSON.stringify(healthy), { msgID: healthy.id }),
    ]);

    // the sender hears that it cannot be applied, with the reason
    const reply = await until(() => answer, { timeoutMs: 15_000, message: 'a reply to the poison intent' });
    sub.unsubscribe();
    expect(reply.status).toBe(422);
    expect((reply.body as { detail: string }).detail).toContain('could not apply this request');
    await waitForState(t.api, healthy.release.kfId, 'staged');
    expect((await t.api('GET', `/releases/${poison.release.kfId}`)).status).toBe(404);

    // terminated in NATS: nothing pending or awaiting an ack, never redelivered
    const jsm = await jetstreamManager(nc);
    const consumer = await until(
      async () => {
        const c = await jsm.consumers.info(names.streams.intents, names.consumers.coordinatorIntents);
        return c.num_pending === 0 && c.num_ack_pending === 0 ? c : undefined;
      },
      { message: 'the intents consumer to hold nothing' },
    );
    expect(consumer.num_redelivered).toBe(0);

    // recorded: an error event, the metric, and one error log line
    const events = await direct<{ message: string }[]>`
      select message from events where event_type = 'error' and release_id = ${poison.release.kfId}`;
    expect(events.map((e) => e.message)).toEqual([
      expect.stringContaining(`release.create ${poison.id} could not be applied and was set aside`),
    ]);
    const metric = await t.system.metrics.registry.getSingleMetricAsString(
      'rc_coordinator_poison_messages_total',
    );
    expect(metric).toContain('rc_coordinator_poison_messages_total{type="release.create"} 1');
    const errors = logLines.filter((l) => l.level >= 50).slice(errorsBefore);
    expect(errors.map((l) => l.msg)).toEqual([
      'message cannot be applied; parked (terminated in NATS, not retried)',
    ]);
  }, 30_000);
});
