/**
 * Bounded load test of the mock (loopback only).
 *   bun mock-task-service/bench.ts [--requests 20000] [--concurrency 64] [--services 1000] [--max-seconds 60]
 * Spawns the CLI as a separate process (so its CPU and RSS can be read from /proc), drives task
 * lifecycles (initialize, start, get_status x3, GET /status) across the services, and prints
 * req/s, the mock's CPU use and RSS.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    services: { type: 'string', default: '1000' },
    'max-seconds': { type: 'string', default: '60' },
  },
});
const total = Number(values.requests);
const concurrency = Number(values.concurrency);
const serviceCount = Number(values.services);
const maxMs = Number(values['max-seconds']) * 1000;

const cli = new URL('./src/cli.ts', import.meta.url).pathname;
const proc = Bun.spawn(
  [process.execPath, cli, '--port', '0', '--services', String(serviceCount), '--stage-ms', '200'],
  {
    stdout: 'pipe',
    stderr: 'inherit',
  },
);

/** Reads stdout until the "# control" line; returns the service URLs. */
async function readUrls(): Promise<string[]> {
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + 15_000;
  while (!text.includes('# control')) {
    if (Date.now() > deadline) throw new Error('mock did not start within 15 s');
    const { value, done } = await reader.read();
    if (done) throw new Error(`mock exited early: ${text}`);
    text += decoder.decode(value);
  }
  reader.releaseLock();
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(' ')[1]!)
    .slice(1); // named services only
}

function procStats(pid: number): { rssMb: number; cpuSec: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { rssMb: rssKb / 1024, cpuSec: ticks / 100 };
}

try {
  const urls = await readUrls();
  const idle = procStats(proc.pid);
  let sent = 0;
  let failed = 0;
  const started = performance.now();
  const deadline = Date.now() + maxMs;
  const post = async (base: string, action: string, task: string) => {
    const res = await fetch(`${base}/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer bench', 'user-agent': 'bench' },
      body: JSON.stringify({ action, task_id: task, release_id: 'RE_BENCH', studies: ['SD_1'] }),
    });
    if (res.status !== 200) failed++;
    await res.arrayBuffer();
  };
  const worker = async (w: number) => {
    let n = 0;
    while (sent < total && Date.now() < deadline) {
      const base = urls[(w * 7919 + n) % urls.length]!;
      const task = `TA_${w}_${n++}`;
      const steps: Array<() => Promise<void>> = [
        () => post(base, 'initialize', task),
        () => post(base, 'start', task),
        () => post(base, 'get_status', task),
        () => post(base, 'get_status', task),
        () => post(base, 'get_status', task),
        async () => {
          const res = await fetch(`${base}/status`);
          if (res.status !== 200) failed++;
          await res.arrayBuffer();
        },
      ];
      for (const step of steps) {
        if (sent >= total) break;
        sent++;
        await step();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = (performance.now() - started) / 1000;
  const after = procStats(proc.pid);
  const cpu = after.cpuSec - idle.cpuSec;
  console.log(`services            ${urls.length}`);
  console.log(`requests            ${sent} (non-200: ${failed}), concurrency ${concurrency}`);
  console.log(`wall time           ${seconds.toFixed(2)} s`);
  console.log(`throughput          ${Math.round(sent / seconds)} req/s`);
  console.log(`mock CPU            ${cpu.toFixed(2)} s (${Math.round((cpu / seconds) * 100)}% of one core)`);
  console.log(`per mock CPU-second ${Math.round(sent / Math.max(cpu, 0.01))} req`);
  console.log(
    `mock RSS            ${idle.rssMb.toFixed(1)} MB idle, ${after.rssMb.toFixed(1)} MB after load`,
  );
} finally {
  proc.kill('SIGTERM');
  await proc.exited;
}
