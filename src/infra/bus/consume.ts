import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '../logger';
import { sleep } from '../time';

/**
 * Pulls from a durable consumer for as long as `running()` holds, re-attaching after errors
 * (stream recreated, server restarted). Each message goes to `onMessage` synchronously;
 * batching and acking are up to the caller.
 */
export async function pullForever(opts: {
  js: JetStreamClient;
  stream: string;
  durable: string;
  maxMessages: number;
  /**
   * Life of each pull request. Short, because a process killed with pending pull requests keeps
   * receiving (and holding) messages until they expire.
   */
  expiresMs?: number;
  log: Logger;
  running: () => boolean;
  onMessage: (m: JsMsg) => void;
  onAttach?: (messages: ConsumerMessages) => void;
  /**
   * Recreates streams and consumers (idempotent). Called when the consumer is missing, e.g. after
   * the NATS server lost its store, so the process heals instead of waiting for someone else.
   */
  ensure?: () => Promise<void>;
}): Promise<void> {
  let backoff = 100;
  let detached = false;
  while (opts.running()) {
    try {
      if (detached && opts.ensure) await opts.ensure();
      const consumer = await opts.js.consumers.get(opts.stream, opts.durable);
      const messages = await consumer.consume({
        max_messages: opts.maxMessages,
        expires: opts.expiresMs ?? 5_000,
        abort_on_missing_resource: true,
      });
      opts.onAttach?.(messages);
      if (detached) opts.log.info({ stream: opts.stream }, 'consumer re-attached');
      detached = false;
      backoff = 100;
      for await (const m of messages) {
        opts.onMessage(m);
        if (!opts.running()) break;
      }
      if (!opts.running()) return;
      // the iterator ended on its own: the consumer or its stream went away
      throw new Error('consumer closed');
    } catch (err) {
      if (!opts.running()) return;
      if (!detached)
        opts.log.warn({ err: String(err), stream: opts.stream }, 'consumer detached; re-attaching');
      detached = true;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5_000);
    }
  }
}
