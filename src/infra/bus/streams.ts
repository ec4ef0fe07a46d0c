import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { type NatsConnection, nanos } from '@nats-io/transport-node';
import { sleep } from '../time';
import type { BusNames } from './subjects';

export interface StreamOptions {
  /** how long a consumer may hold a message before it is redelivered */
  ackWaitMs: number;
  commandAckWaitMs: number;
  maxDeliver: number;
  eventsMaxAgeMs: number;
  /** copies of every stream and consumer (NATS_REPLICAS): 1 on a single server, 3 on a three-node cluster */
  replicas: number;
}

/**
 * Creates (or updates) the four streams and the durable pull consumers, each with `replicas`
 * copies. Safe to run on every start, and again by any process that finds a stream or consumer
 * missing (a lost store): an existing stream or consumer with another replica count is updated.
 */
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
    num_replicas: opts.replicas,
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
    num_replicas: opts.replicas,
  });
  const pull = (durable: string, ackWaitMs: number) => ({
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    max_deliver: opts.maxDeliver,
    max_ack_pending: 10_000,
    num_replicas: opts.replicas,
  });
  await upsertConsumer(jsm, names.streams.intents, pull(names.consumers.coordinatorIntents, opts.ackWaitMs));
  await upsertConsumer(jsm, names.streams.results, pull(names.consumers.coordinatorResults, opts.ackWaitMs));
  await upsertConsumer(jsm, names.streams.commands, pull(names.consumers.workers, opts.commandAckWaitMs));
  return jsm;
}

async function upsertStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }) {
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(config.name);
  } catch (err) {
    // only a stream that is not there is created: an info that timed out (a cluster electing a
    // leader) is an error to retry, not a reason to add one
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
    await withReplicaHelp(config.num_replicas, () => jsm.streams.add(config));
    return;
  }
  const rescaled = info.config.num_replicas !== config.num_replicas;
  await withReplicaHelp(config.num_replicas, () => jsm.streams.update(config.name, config));
  if (rescaled) await waitForLeader(jsm, config.name);
}

async function upsertConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
) {
  try {
    await jsm.consumers.info(stream, config.durable_name);
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(stream, config);
    return;
  }
  await jsm.consumers.update(stream, config.durable_name, config);
}

/**
 * A stream whose replica count changed has no leader for a moment while its new peers catch up:
 * wait (at most 10 s) so the first publish after a start does not meet "no responders".
 */
export async function waitForLeader(jsm: JetStreamManager, stream: string, timeoutMs = 10_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (info && (info.cluster?.leader || !info.cluster)) return;
    await sleep(100);
  }
}

/** NATS_REPLICAS above 1 against a single server (or a smaller cluster): say so in our words. */
async function withReplicaHelp<T>(replicas: number | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if ((replicas ?? 1) > 1 && /replicas|peers|cluster|insufficient resources/i.test(message))
      throw new Error(
        `NATS_REPLICAS=${replicas} needs a NATS cluster of at least ${replicas} servers with JetStream (the server said: ${message}); set NATS_REPLICAS=1 for a single server`,
      );
    throw err;
  }
}

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** Removes every stream of a prefix (tests clean up after themselves with this). */
export async function deleteStreams(nc: NatsConnection, names: BusNames) {
  const jsm = await jetstreamManager(nc);
  for (const s of [...Object.values(names.streams), `KV_${names.haltedBucket}`, `KV_${names.sentBucket}`]) {
    await jsm.streams.delete(s).catch(() => {});
  }
}
