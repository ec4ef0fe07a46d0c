import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { BusNames } from './subjects';

/**
 * start and publish commands whose HTTP request a worker may have sent, kept in a NATS KV bucket.
 * A worker marks a command here right before it sends the request; when the command comes back
 * (the worker died before it reported), a mark means the service may have the request, so it is
 * never sent again (its outcome is unknown and found by polling), and no mark means it certainly
 * never left, so it is sent now (docs/lifecycle.md, "Calls that get no answer").
 */
export class SentMarks {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, names: BusNames, ttlMs = 24 * 3600_000): Promise<SentMarks> {
    const kv = await new Kvm(nc).create(names.sentBucket, { ttl: ttlMs, history: 1 });
    return new SentMarks(kv);
  }

  async mark(commandId: string): Promise<void> {
    await this.kv.put(keyOf(commandId), '1');
  }

  async marked(commandId: string): Promise<boolean> {
    const entry = await this.kv.get(keyOf(commandId));
    return entry !== null && entry.operation === 'PUT';
  }
}

/** KV keys allow letters, digits and `-_=./`: a command id (`…:start:TA_…`) is encoded to fit. */
function keyOf(commandId: string): string {
  return commandId.replace(/[^A-Za-z0-9_=.-]/g, (ch) => `=${ch.charCodeAt(0).toString(16)}`);
}
