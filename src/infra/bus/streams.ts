import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { type NatsConnection, nanos } from '@nats-io/transport-node';
import type { BusNames } from './subjects';

export interface StreamOptions {
  /** how long a consumer may hold a message before it is redelivered */
  ackWaitMs: number;
  commandAckWaitMs: number;
  maxDeliver: number;
  eventsMaxAgeMs: number;
}

/** Creates (or updates) the four streams and the durable pull consumers. Safe to run on every start. */
export async function ensureStreams(
  nc: NatsConnection,
  names: BusNames,
  opts: StreamOptions,
): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc);
  const workQueue = (name: string, subject: string): Partial<StreamConfig> & { name: string } => ({
    name,
    subjects: [subject],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(120_000),
  });
  await upsertStream(jsm, workQueue(names.streams.intents, names.intents));
  await upsertStream(jsm, workQueue(names.streams.commands, names.commands));
  await upsertStream(jsm, workQueue(names.streams.results, names.results));
  await upsertStream(jsm, {
    name: names.streams.events,
    subjects: [names.events],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(opts.eventsMaxAgeMs),
    duplicate_window: nanos(120_000),
  });
  const pull = (durable: string, ackWaitMs: number) => ({
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    max_deliver: opts.maxDeliver,
    max_ack_pending: 10_000,
  });
  await upsertConsumer(jsm, names.streams.intents, pull(names.consumers.coordinatorIntents, opts.ackWaitMs));
  await upsertConsumer(jsm, names.streams.results, pull(names.consumers.coordinatorResults, opts.ackWaitMs));
  await upsertConsumer(jsm, names.streams.commands, pull(names.consumers.workers, opts.commandAckWaitMs));
  return jsm;
}

async function upsertStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }) {
  try {
    await jsm.streams.info(config.name);
  } catch {
    await jsm.streams.add(config);
    return;
  }
  await jsm.streams.update(config.name, config);
}

async function upsertConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
) {
  try {
    await jsm.consumers.info(stream, config.durable_name);
    await jsm.consumers.update(stream, config.durable_name, config);
  } catch {
    await jsm.consumers.add(stream, config);
  }
}

/** Removes every stream of a prefix (tests clean up after themselves with this). */
export async function deleteStreams(nc: NatsConnection, names: BusNames) {
  const jsm = await jetstreamManager(nc);
  for (const s of [...Object.values(names.streams), `KV_${names.haltedBucket}`, `KV_${names.sentBucket}`]) {
    await jsm.streams.delete(s).catch(() => {});
  }
}
