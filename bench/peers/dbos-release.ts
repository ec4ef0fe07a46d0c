#!/usr/bin/env bun
/**
 * Peer for the benchmark: the release workload as a DBOS Transact workflow. One durable step per
 * HTTP call (initialize, start, get_status until staged, publish, get_status until published), every
 * call of a phase run as parallel steps, checkpointed in Postgres by DBOS (its system database is the
 * bench's own database, given as --db). Runs as a child process of bench/run.ts and prints one JSON
 * line with its timings on stdout.
 *
 *   bun bench/peers/dbos-release.ts --db URL --mock URL --services N [--sequential K] [--concurrent R]
 *
 * --sequential K: K releases one after another (each timed: overhead case).
 * --concurrent R: R releases at once (total wall time: throughput case).
 */
import { parseArgs } from 'node:util';
import { DBOS } from '@dbos-inc/dbos-sdk';

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    mock: { type: 'string' },
    services: { type: 'string', default: '10' },
    sequential: { type: 'string', default: '0' },
    concurrent: { type: 'string', default: '0' },
    'max-seconds': { type: 'string', default: '120' },
  },
});
const mock = values.mock!;
const services = Number(values.services);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
const serviceUrls = Array.from({ length: services }, (_, i) => `${mock}/s/svc-${i}`);

type Answer = { state?: string; progress?: number };
let calls = 0;

async function call(url: string, action: string, taskId: string, releaseId: string): Promise<Answer> {
  calls++;
  const res = await fetch(`${url}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ action, task_id: taskId, release_id: releaseId, studies: ['SD_BENCH001'] }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json()) as Answer;
  if (res.status !== 200) throw new Error(`${action} ${taskId}: HTTP ${res.status}`);
  return { state: body.state, progress: body.progress };
}

/** Every call of one phase as parallel durable steps. */
function phase(releaseId: string, action: string): Promise<Answer[]> {
  return Promise.all(
    serviceUrls.map((url, i) =>
      DBOS.runStep(() => call(url, action, `${releaseId}_T${i}`, releaseId), { name: action }),
    ),
  );
}

/** get_status (a durable step each) until every task is in `state`; bounded. */
async function pollUntil(releaseId: string, state: string): Promise<void> {
  for (let round = 0; round < 1_000; round++) {
    const answers = await phase(releaseId, 'get_status');
    if (answers.every((a) => a.state === state)) return;
    if (answers.some((a) => a.state === 'failed' || a.state === 'canceled'))
      throw new Error(`release ${releaseId}: a task failed`);
    await DBOS.sleep(5);
  }
  throw new Error(`release ${releaseId}: tasks never reached ${state}`);
}

async function releaseWorkflow(releaseId: string): Promise<number> {
  await phase(releaseId, 'initialize');
  await phase(releaseId, 'start');
  await pollUntil(releaseId, 'staged');
  await phase(releaseId, 'publish');
  await pollUntil(releaseId, 'published');
  return services;
}
const release = DBOS.registerWorkflow(releaseWorkflow, { name: 'release' });

DBOS.setConfig({ name: 'rc-bench-peer', systemDatabaseUrl: values.db!, logLevel: 'error' });
await DBOS.launch();
const out: Record<string, unknown> = { runtime: `bun ${Bun.version}`, dbos: '@dbos-inc/dbos-sdk' };
try {
  const run = `${Date.now().toString(36)}`;
  const sequential: number[] = [];
  for (let i = 0; i < Number(values.sequential) && Date.now() < deadline; i++) {
    const t0 = performance.now();
    await release(`RE_${run}_S${i}`);
    sequential.push(performance.now() - t0);
  }
  out.sequentialMs = sequential;
  const concurrent = Number(values.concurrent);
  if (concurrent > 0) {
    const t0 = performance.now();
    const handles = [];
    for (let i = 0; i < concurrent; i++)
      handles.push(await DBOS.startWorkflow(release, { workflowID: `RE_${run}_C${i}` })(`RE_${run}_C${i}`));
    await Promise.all(handles.map((h) => h.getResult()));
    out.concurrentMs = performance.now() - t0;
    out.concurrentReleases = concurrent;
  }
  out.calls = calls;
  const cpu = process.cpuUsage();
  out.cpuMs = (cpu.user + cpu.system) / 1000;
  out.maxRssKb = process.resourceUsage().maxRSS;
  out.ok = true;
} catch (err) {
  out.ok = false;
  out.error = String(err);
} finally {
  await DBOS.shutdown();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(out.ok ? 0 : 1);
