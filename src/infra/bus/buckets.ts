import { jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { waitForLeader } from './streams';

/** how long a bucket keeps an entry unless told otherwise: a day, longer than a release runs */
const DEFAULT_TTL_MS = 24 * 3600_000;

export interface BucketOptions {
  /** entries are forgotten after this long (default a day) */
  ttlMs?: number;
  /** copies on a NATS cluster (NATS_REPLICAS) */
  replicas: number;
}

/**
 * Opens a KV bucket (history 1), creating it with `replicas` copies when missing. An existing
 * bucket with another replica count is updated: nats.js creates a bucket with its options but
 * leaves an existing one as it is.
 */
export async function openBucket(nc: NatsConnection, name: string, opts: BucketOptions): Promise<KV> {
  const kv = await new Kvm(nc).create(name, {
    ttl: opts.ttlMs ?? DEFAULT_TTL_MS,
    history: 1,
    replicas: opts.replicas,
  });
  const jsm = await jetstreamManager(nc);
  const stream = `KV_${name}`;
  const info = await jsm.streams.info(stream);
  if (info.config.num_replicas !== opts.replicas) {
    await jsm.streams.update(stream, { num_replicas: opts.replicas });
    await waitForLeader(jsm, stream);
  }
  return kv;
}
