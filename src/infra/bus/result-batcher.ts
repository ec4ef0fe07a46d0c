import type { JetStreamClient } from '@nats-io/jetstream';
import type { ResultBatch, TaskResult } from './messages';

/** most results in one message */
export const RESULTS_PER_MESSAGE = 256;
/** and at most this much JSON (NATS refuses messages over its max_payload, 1 MiB by default) */
export const RESULT_BYTES_PER_MESSAGE = 512 * 1024;

/**
 * Messages that many callers send within one turn of the event loop travel as ONE message (a
 * `{"id", "kind": "batch", "<field>": [...]}` envelope, cut to what NATS takes: at most
 * RESULTS_PER_MESSAGE items and RESULT_BYTES_PER_MESSAGE of JSON). Each item keeps its own id, so
 * the coordinator still applies each exactly once. `send` resolves once the message holding the
 * item is stored by the server.
 */
export class TurnBatcher<T> {
  private pending: Array<{ json: string; done: (err?: unknown) => void }> = [];
  private scheduled = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly subject: string,
    /** the envelope's list field: `results` (ResultBatch) or `intents` (IntentBatch) */
    private readonly field: string,
    /** a unique id per message (also its Nats-Msg-Id) */
    private readonly newId: () => string,
    private readonly publishTimeoutMs?: number,
  ) {}

  send(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({
        json: JSON.stringify(item),
        done: (err) => (err === undefined ? resolve() : reject(err)),
      });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush() {
    this.scheduled = false;
    const items = this.pending;
    this.pending = [];
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < items.length; i++) {
      const size = items[i]!.json.length + 1;
      if (i > start && (i - start >= RESULTS_PER_MESSAGE || bytes + size > RESULT_BYTES_PER_MESSAGE)) {
        void this.publish(items.slice(start, i));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    if (start < items.length) void this.publish(items.slice(start));
  }

  private async publish(items: typeof this.pending) {
    const id = this.newId();
    // the items are already JSON: the envelope is put around them without serialising them again
    const body = `{"id":${JSON.stringify(id)},"kind":"batch",${JSON.stringify(this.field)}:[${items.map((x) => x.json).join(',')}]}`;
    try {
      await this.js.publish(this.subject, body, {
        msgID: id,
        ...(this.publishTimeoutMs ? { timeout: this.publishTimeoutMs } : {}),
      });
      for (const x of items) x.done();
    } catch (err) {
      for (const x of items) x.done(err);
    }
  }
}

/** Task results of one worker, what finished within one turn as one message (ids `<prefix>:<n>`). */
export class ResultBatcher extends TurnBatcher<TaskResult> {
  constructor(js: JetStreamClient, subject: string, idPrefix: string) {
    let sequence = 0;
    super(js, subject, 'results', () => `${idPrefix}:${++sequence}`);
  }
}

export function isResultBatch(m: unknown): m is ResultBatch {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as ResultBatch).kind === 'batch' &&
    Array.isArray((m as ResultBatch).results)
  );
}
