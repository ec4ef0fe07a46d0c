import { afterAll, expect, test } from 'bun:test';
import { postTask } from '../src/infra/task-service/client';

/**
 * Attack: a task service that answers with a very large body (a buggy service dumping its log,
 * or a hostile one). Every call reads the whole answer into memory with `response.text()` and
 * parses it (src/worker/task-service-client.ts), bounded only by the call's deadline: a body of
 * 1 GB took 12.6 s on loopback on the shared 2-core machine (inside the 15 s REQUEST_TIMEOUT_MS)
 * and the reading process peaked at 1.6 GB RSS. The worker makes up to WORKER_CONCURRENCY (256)
 * such calls at once, and the gateway makes the same kind of call for GET {url}/status when a
 * service is registered; with ROLE=all one service can take the whole coordinator down.
 * FAILS today: a 64 MiB answer to get_status is accepted as a valid answer. An answer only needs
 * {state, progress}; a cap (say 1 MiB) read as a stream would bound what a service can cost.
 */

const MIB = 1 << 20;
const SIZE_MIB = 64;
const chunk = new TextEncoder().encode('x'.repeat(MIB));
const server = Bun.serve({
  port: 0,
  hostname: '127.0.0.1',
  fetch() {
    let sent = 0;
    const stream = new ReadableStream({
      pull(c) {
        if (sent === 0) c.enqueue(new TextEncoder().encode('{"state":"running","log":"'));
        if (sent < SIZE_MIB) {
          c.enqueue(chunk);
          sent++;
        } else {
          c.enqueue(new TextEncoder().encode('"}'));
          c.close();
        }
      },
    });
    return new Response(stream, { headers: { 'content-type': 'application/json' } });
  },
});
afterAll(() => server.stop(true));

test(`a ${SIZE_MIB} MiB answer from a task service is not read whole and taken as an answer`, async () => {
  const outcome = await postTask(
    `http://127.0.0.1:${server.port}`,
    { action: 'get_status', task_id: 'TA_00000000', release_id: 'RE_00000000', studies: [] },
    { timeoutMs: 15_000 },
  );
  console.log(`${SIZE_MIB} MiB answer: ok=${outcome.ok} in ${Math.round(outcome.latencyMs)} ms`);
  expect(outcome.ok).toBe(false);
});
