import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '../logger';
import { sleep } from '../shared/time';

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
}): Promise<void> {
  let backoff = 100;
  while (opts.running()) {
    try {
      const consumer = await opts.js.consumers.get(opts.stream, opts.durable);
      const messages = await consumer.consume({
        max_messages: opts.maxMessages,
        expires: opts.expiresMs ?? 5_000,
      });
      opts.onAttach?.(messages);
      backoff = 100;
      for await (const m of messages) {
        opts.onMessage(m);
        if (!opts.running()) break;
      }
    } catch (err) {
      if (!opts.running()) return;
      opts.log.warn({ err: String(err), stream: opts.stream }, 'consumer detached; re-attaching');
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5_000);
    }
  }
}
