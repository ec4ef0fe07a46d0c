import { JetStreamApiCodes, type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { openBucket } from './buckets';
import { isApiError } from './streams';
import type { BusNames } from './subjects';

/** a worker is about to send (or sent) the request */
const SENT = 'sent';
/** the coordinator found the command lost before any worker sent it, and sends it anew */
const LOST = 'lost';

/** What a worker may do with a start/publish it holds (see SentMarks.claimForSending). */
export type SendClaim = 'send' | 'maybe-sent' | 'superseded';
/** What the coordinator knows of a start/publish whose answer was lost (see SentMarks.claimLost). */
export type LostClaim = 'never-sent' | 'maybe-sent';

/**
 * start and publish commands whose HTTP request a worker may have sent, kept in a NATS KV bucket,
 * one key per command, written once (compare-and-set on "absent"), so exactly one of these wins:
 *
 * - a worker, right before it sends the request, claims the command as `sent`. Finding it already
 *   `sent` (the command came back after its worker died, or a copy was published twice) means the
 *   service may have it: it is never sent again and its outcome is unknown, found by polling.
 *   Finding it `lost` means the coordinator has given it up and sent a new one: it is dropped.
 * - the coordinator, when the command and its answer are both gone from NATS (purged, or lost with
 *   a store), claims it as `lost`. Winning (or finding it `lost` already) proves no worker ever
 *   sent it and none ever will: it is sent again under a new id. Finding it `sent` leaves the
 *   outcome unknown (docs/lifecycle.md, "Calls that get no answer").
 *
 * The marks are only as durable as the bucket: the coordinator records the bucket's `epoch` (its
 * creation time) with each command, and a command sent under another bucket (the store was lost
 * and the bucket created again) is never claimed as never sent.
 */
export class SentMarks {
  private constructor(
    private readonly kv: KV,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
  ) {}

  static async open(
    nc: NatsConnection,
    names: BusNames,
    opts: { replicas: number; ttlMs?: number },
  ): Promise<SentMarks> {
    const kv = await openBucket(nc, names.sentBucket, opts);
    return new SentMarks(kv, await jetstreamManager(nc), `KV_${names.sentBucket}`);
  }

  /** A worker, right before the request of a start/publish goes out. */
  async claimForSending(commandId: string): Promise<SendClaim> {
    const held = await this.claim(commandId, SENT);
    if (held === undefined) return 'send';
    return held === LOST ? 'superseded' : 'maybe-sent';
  }

  /** The coordinator, for a start/publish whose command and answer are both gone from NATS. */
  async claimLost(commandId: string): Promise<LostClaim> {
    const held = await this.claim(commandId, LOST);
    return held === undefined || held === LOST ? 'never-sent' : 'maybe-sent';
  }

  /** The creation time of the bucket: it changes only when the bucket (with every mark) was lost. */
  async epoch(): Promise<string> {
    return (await this.jsm.streams.info(this.stream)).created;
  }

  /** Writes `value` if the key is absent; else returns what it holds (undefined: we wrote it). */
  private async claim(commandId: string, value: string): Promise<string | undefined> {
    const key = keyOf(commandId);
    try {
      await this.kv.create(key, value);
      return undefined;
    } catch (err) {
      if (
        !isApiError(err, JetStreamApiCodes.StreamWrongLastSequence) &&
        !isApiError(err, JetStreamApiCodes.StreamWrongLastSequenceUnknown)
      )
        throw err;
    }
    const entry = await this.kv.get(key);
    // a mark written by an earlier version is "1": sent
    return entry?.operation === 'PUT' ? entry.string() : SENT;
  }
}

/** KV keys allow letters, digits and `-_=./`: a command id (`…:start:TA_…`) is encoded to fit. */
function keyOf(commandId: string): string {
  return commandId.replace(/[^A-Za-z0-9_=.-]/g, (ch) => `=${ch.charCodeAt(0).toString(16)}`);
}
