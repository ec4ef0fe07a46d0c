import type { JetStreamClient } from '@nats-io/jetstream';
import type { ResultBatch, TaskResult } from './messages';

/** most results in one message */
export const RESULTS_PER_MESSAGE = 256;
/** and at most this much JSON (NATS refuses messages over its max_payload, 1 MiB by default) */
export const RESULT_BYTES_PER_MESSAGE = 512 * 1024;

/**
 * Task results of one worker, reported in batches: what finished within one turn of the event loop
 * travels as ONE message (each result keeps its own id, so the coordinator still applies each
 * exactly once). `send` resolves once the message holding the result is stored by the server.
 */
export class ResultBatcher {
  private pending: Array<{ result: TaskResult; json: string; done: (err?: unknown) => void }> = [];
  private scheduled = false;
  private sequence = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly subject: string,
    /** unique per process: batch ids are `<prefix>:<n>` */
    private readonly idPrefix: string,
  ) {}

  send(result: TaskResult): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({
        result,
        json: JSON.stringify(result),
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
    const id = `${this.idPrefix}:${++this.sequence}`;
    // the results are already JSON: the envelope is put around them without serialising them again
    const body = `{"id":${JSON.stringify(id)},"kind":"batch","results":[${items.map((x) => x.json).join(',')}]}`;
    try {
      await this.js.publish(this.subject, body, { msgID: id });
      for (const x of items) x.done();
    } catch (err) {
      for (const x of items) x.done(err);
    }
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
