import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { openBucket } from './buckets';
import type { BusNames } from './subjects';

/**
 * Releases that entered canceling, kept in a NATS KV bucket. Workers look here before sending
 * start or publish, so a command that was still queued when the release halted is never sent.
 * (In-flight calls are aborted separately, through the abort subject.)
 */
export class HaltedReleases {
  private readonly local = new Set<string>();

  private constructor(private readonly kv: KV) {}

  static async open(
    nc: NatsConnection,
    names: BusNames,
    opts: { replicas: number; ttlMs?: number },
  ): Promise<HaltedReleases> {
    const kv = await openBucket(nc, names.haltedBucket, opts);
    return new HaltedReleases(kv);
  }

  async mark(releaseId: string): Promise<void> {
    this.local.add(releaseId);
    await this.kv.put(releaseId, '1');
  }

  /** seen on the abort subject: cheap to check before any call */
  noteAbort(releaseId: string) {
    this.local.add(releaseId);
    if (this.local.size > 100_000) this.local.clear();
  }

  /** only what this process saw on the abort subject (no round trip) */
  knownHalted(releaseId: string): boolean {
    return this.local.has(releaseId);
  }

  async isHalted(releaseId: string): Promise<boolean> {
    if (this.local.has(releaseId)) return true;
    const entry = await this.kv.get(releaseId);
    return entry !== null && entry.operation === 'PUT';
  }
}
