import { describe, expect, test } from 'bun:test';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { ResultBatch, TaskResult } from './messages';
import { isResultBatch, RESULTS_PER_MESSAGE, ResultBatcher } from './result-batcher';

function fakeJs(fail = false) {
  const published: Array<{ subject: string; body: ResultBatch; msgID?: string }> = [];
  const js = {
    publish: async (subject: string, body: string, opts?: { msgID?: string }) => {
      if (fail) throw new Error('no stream');
      published.push({ subject, body: JSON.parse(body), msgID: opts?.msgID });
      return {};
    },
  } as unknown as JetStreamClient;
  return { js, published };
}

const result = (n: number, error?: string): TaskResult => ({
  id: `cmd-${n}:result`,
  kind: 'task',
  commandId: `cmd-${n}`,
  action: 'get_status',
  taskId: `TA_${n}`,
  releaseId: 'RE_1',
  ok: true,
  latencyMs: 1,
  error,
});

describe('ResultBatcher', () => {
  test('results sent in one tick travel as one message, each with its own id', async () => {
    const { js, published } = fakeJs();
    const b = new ResultBatcher(js, 'rc.result.batch', 'w1');
    await Promise.all([b.send(result(1)), b.send(result(2)), b.send(result(3))]);
    expect(published).toHaveLength(1);
    expect(published[0]!.subject).toBe('rc.result.batch');
    expect(published[0]!.msgID).toBe(published[0]!.body.id);
    expect(isResultBatch(published[0]!.body)).toBe(true);
    expect(published[0]!.body.results.map((r) => r.id)).toEqual([
      'cmd-1:result',
      'cmd-2:result',
      'cmd-3:result',
    ]);
    // the next tick: a new message with a new id
    await b.send(result(4));
    expect(published).toHaveLength(2);
    expect(published[1]!.body.id).not.toBe(published[0]!.body.id);
  });

  test('a tick with more results than fit in one message is split by count and by size', async () => {
    const { js, published } = fakeJs();
    const b = new ResultBatcher(js, 's', 'w1');
    await Promise.all(Array.from({ length: RESULTS_PER_MESSAGE + 1 }, (_, i) => b.send(result(i))));
    expect(published.map((p) => p.body.results.length)).toEqual([RESULTS_PER_MESSAGE, 1]);
    published.length = 0;
    const big = 'x'.repeat(200 * 1024);
    await Promise.all([1, 2, 3].map((i) => b.send(result(i, big))));
    expect(published.map((p) => p.body.results.length)).toEqual([2, 1]);
  });

  test('a publish that fails rejects every result it carried', async () => {
    const { js } = fakeJs(true);
    const b = new ResultBatcher(js, 's', 'w1');
    const sent = await Promise.allSettled([b.send(result(1)), b.send(result(2))]);
    expect(sent.map((s) => s.status)).toEqual(['rejected', 'rejected']);
  });
});
