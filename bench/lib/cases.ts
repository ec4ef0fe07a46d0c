import { join } from 'node:path';
import { spawn } from 'bun';
import { TASK_RANK, TASK_STATES } from '../../src/domain/lifecycle/states';
import {
  BUN,
  createDatabase,
  diffStats,
  floorRelease,
  followRelease,
  median,
  percentile,
  ROOT,
  round,
  runRelease,
  type Stack,
  sleep,
  spawnMock,
  until,
} from './infra';

export interface Row {
  case: string;
  figure: string;
  value: number;
  unit: string;
  /** what the figure is compared with: a floor measured in this run, or the goal */
  floor?: number;
  floorLabel?: string;
  ratio?: number;
  goal?: string;
  status: 'pass' | 'short' | 'info';
}

export interface Sizes {
  overheadNs: number[];
  reps: number;
  /** the N of the per-step figures and of the split pass: 50 (10 in --quick) */
  headlineN: number;
  throughputReleases: number;
  throughputServices: number;
  /** services of the scale cases: 1,000 (RSS goal 300 MB) and, in a full run, 10,000 (goal 1 GB) */
  scaleServices: number[];
  scaleStageMs: number;
  latencyTrials: number;
  latencyServices: number;
  peerNs: number[];
  peerReps: number;
  noticingRounds: number;
}

/** What one GET /releases/{id} costs the coordinator process (subtracted from per-step figures). */
export async function calibrateGet(stack: Stack, releaseId: string, n: number) {
  const a = await stack.coordinator.stats();
  for (let i = 0; i < n; i++) await stack.api('GET', `/releases/${releaseId}`);
  const b = await stack.coordinator.stats();
  const d = diffStats(a, b);
  return { statementsPerGet: d.statements / n, cpuMsPerGet: d.cpuMs / n };
}

// ---------------------------------------------------------------- 1. overhead vs floor

export async function overhead(stack: Stack, reps: number) {
  const n = stack.services;
  await runRelease(stack); // warm-up (JIT, connections, prepared statements)
  await floorRelease(stack.mock.url, n, `RF_warm_${n}`);
  const s0 = await stack.coordinator.stats();
  const t0 = await stack.transitions();
  const m0 = await stack.busMessages();
  const coord: number[] = [];
  let gets = 0;
  let lastId = '';
  for (let i = 0; i < reps; i++) {
    const r = await runRelease(stack);
    coord.push(r.ms);
    gets += r.gets;
    lastId = r.id;
  }
  const s1 = await stack.coordinator.stats();
  const transitions = (await stack.transitions()) - t0;
  const messages = messagesPerTransition(m0, await stack.busMessages(), transitions);
  const floor: number[] = [];
  for (let i = 0; i < reps; i++)
    floor.push(await floorRelease(stack.mock.url, n, `RF_${n}_${i}_${Date.now()}`));
  const cal = await calibrateGet(stack, lastId, 30);
  const d = diffStats(s0, s1);
  return {
    n,
    coordinatorMs: coord.map((x) => round(x, 1)),
    floorMs: floor.map((x) => round(x, 1)),
    coordinatorMedianMs: round(median(coord), 1),
    floorMedianMs: round(median(floor), 1),
    ratio: round(median(coord) / median(floor)),
    perStep: { ...perStep(d, transitions, gets, cal), messagesPerTransition: messages },
  };
}

/** JetStream messages stored per task transition, per stream and in all (a design figure: CPU-noise free) */
function messagesPerTransition(a: Record<string, number>, b: Record<string, number>, transitions: number) {
  const out: Record<string, number> = {};
  let total = 0;
  for (const k of Object.keys(b)) {
    const n = (b[k] ?? 0) - (a[k] ?? 0);
    total += n;
    out[k] = round(n / Math.max(1, transitions), 2);
  }
  out.total = round(total / Math.max(1, transitions), 2);
  return out;
}

function perStep(
  d: ReturnType<typeof diffStats>,
  transitions: number,
  gets: number,
  cal: { statementsPerGet: number; cpuMsPerGet: number },
) {
  const statements = d.statements - gets * cal.statementsPerGet;
  const cpuMs = d.cpuMs - gets * cal.cpuMsPerGet;
  const top = Object.entries(d.byKind)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 14)
    .map(([k, v]) => [k, round(v / Math.max(1, transitions), 3)] as const);
  return {
    transitions,
    benchGets: gets,
    getCost: { statements: round(cal.statementsPerGet, 1), cpuMs: round(cal.cpuMsPerGet, 3) },
    statementsTotal: d.statements,
    cpuMsTotal: round(d.cpuMs, 1),
    statementsPerTransition: round(statements / Math.max(1, transitions), 2),
    cpuMsPerTransition: round(cpuMs / Math.max(1, transitions), 3),
    /** all statements of the window (bench GETs included), per transition, by kind */
    byKindPerTransition: Object.fromEntries(top),
  };
}

// ---------------------------------------------------------------- 2. throughput

export async function throughput(stack: Stack, releases: number, maxSeconds: number) {
  const { api } = stack;
  const n = stack.services;
  const s0 = await stack.coordinator.stats();
  const t0 = await stack.transitions();
  const m0 = await stack.busMessages();
  const started = performance.now();
  const deadline = Date.now() + maxSeconds * 1000;
  const ids = new Set<string>();
  const creates = Array.from({ length: releases }, async () => {
    const r = await api('POST', '/releases', { name: 'bench throughput', studies: [stack.study] });
    if (r.status !== 201) throw new Error(`release: ${r.status} ${JSON.stringify(r.body)}`);
    ids.add(r.body.kf_id);
  });
  const createdAll = Promise.all(creates);
  const publishing = new Set<string>();
  let gets = 0;
  let published = 0;
  let createdDone = false;
  void createdAll.then(() => {
    createdDone = true;
  });
  while (Date.now() < deadline) {
    gets++;
    const staged = await api('GET', '/releases?state=staged&limit=100');
    const fresh = (staged.body?.results ?? [])
      .map((r: { kf_id: string }) => r.kf_id)
      .filter((id: string) => ids.has(id) && !publishing.has(id));
    for (const id of fresh) publishing.add(id);
    await Promise.all(
      fresh.map(async (id: string) => {
        const p = await api('POST', `/releases/${id}/publish`);
        if (p.status !== 200) throw new Error(`publish ${id}: ${p.status}`);
      }),
    );
    gets++;
    published = (await api('GET', '/releases?state=published&limit=1')).body?.count ?? 0;
    if (createdDone && published >= releases) break;
    await sleep(50);
  }
  await createdAll;
  const ms = performance.now() - started;
  if (published < releases)
    throw new Error(`throughput: only ${published}/${releases} published in ${maxSeconds}s`);
  const s1 = await stack.coordinator.stats();
  const transitions = (await stack.transitions()) - t0;
  const messages = messagesPerTransition(m0, await stack.busMessages(), transitions);
  // the floor: the same calls for every release at once, fetch from this process
  const f0 = performance.now();
  await Promise.all(
    Array.from({ length: releases }, (_, i) => floorRelease(stack.mock.url, n, `RT_${i}_${Date.now()}`)),
  );
  const floorMs = performance.now() - f0;
  const d = diffStats(s0, s1);
  return {
    releases,
    services: n,
    ms: round(ms, 0),
    transitions,
    transitionsPerTask: round(transitions / (releases * n), 2),
    transitionsPerSecond: round(transitions / (ms / 1000), 0),
    floorMs: round(floorMs, 0),
    floorTransitionsPerSecond: round(transitions / (floorMs / 1000), 0),
    coordinatorCpuShare: round(d.cpuMs / ms, 2),
    perStep: {
      ...perStep(d, transitions, 0, { statementsPerGet: 0, cpuMsPerGet: 0 }),
      messagesPerTransition: messages,
    },
    benchListGets: gets,
  };
}

// ---------------------------------------------------------------- 3. scale

export async function scale(stack: Stack, intervalMs: number, jitter: number) {
  const { api } = stack;
  const n = stack.services;
  const idle = stack.coordinator.memory();
  let peak = idle.rssMb;
  const sampler = setInterval(() => {
    peak = Math.max(peak, stack.coordinator.memory().rssMb);
  }, 50);
  try {
    // progress comes from the notification feed: GET polling a 1,000-task release every few ms
    // would make the process under measurement serialise it again and again
    // release notifications only: 10,000 task notifications in a burst can outrun a core subscriber
    const feed = await followRelease(stack, { tasks: false });
    const t0 = performance.now();
    let id = '';
    try {
      const created = await api('POST', '/releases', { name: 'bench scale', studies: [stack.study] });
      // 202: creating thousands of tasks took longer than the gateway's reply wait; the release is stored
      if (created.status !== 201 && created.status !== 202) throw new Error(`release: ${created.status}`);
      id = created.body.kf_id as string;
      // every task started, read from Postgres (not counted on the feed: a subscriber that falls
      // behind a burst of 10,000 notifications may miss some, and GET polling would load the
      // process under measurement); the wait grows with the release
      await tasksStarted(stack, id, n, 120_000 + n * 20);
    } finally {
      if (!id) await feed.close();
    }
    const runningAt = Date.now();
    const tRunning = performance.now();
    let polls = 0;
    let pollsAfter = 0;
    let stagedAt = 0;
    let tStaged = 0;
    try {
      await feed.release(id, 'staged', 180_000 + n * 20);
      stagedAt = Date.now();
      tStaged = performance.now();
      polls = await stack.mock.count({ action: 'get_status', since: runningAt });
      pollsAfter = await stack.mock.count({ action: 'get_status', since: stagedAt });
      const p = await api('POST', `/releases/${id}/publish`);
      // 202: the publish of thousands of tasks is stored and applied after the gateway's reply wait
      if (p.status !== 200 && p.status !== 202) throw new Error(`publish: ${p.status}`);
      await feed.release(id, 'published', 180_000 + n * 20);
    } finally {
      await feed.close();
    }
    const shown = await api('GET', `/releases/${id}`);
    if (shown.body.state !== 'published') throw new Error(`scale: GET shows ${shown.body.state}`);
    const ms = performance.now() - t0;
    const window = (tStaged - tRunning) / 1000;
    const pollsPerSecond = (polls - pollsAfter) / window;
    const bound = (n / (intervalMs / 1000)) * (1 + jitter);
    const mem = stack.coordinator.memory();
    return {
      services: n,
      completed: true,
      ms: round(ms, 0),
      startToRunningMs: round(tRunning - t0, 0),
      stagedWindowS: round(window, 2),
      idleRssMb: round(idle.rssMb, 1),
      peakRssMb: round(Math.max(peak, mem.peakMb), 1),
      polls: polls - pollsAfter,
      pollsPerSecond: round(pollsPerSecond, 0),
      pollBoundPerSecond: round(bound, 0),
    };
  } finally {
    clearInterval(sampler);
  }
}

// ---------------------------------------------------------------- 4. reaction latency

/**
 * The bench plays the task services' callbacks: once every task of a release is running (the mock's
 * stage time is long and it never calls back), PATCH staged for all tasks but one, then time from
 * the last task's PATCH to the first GET /releases/{id} that shows `staged` (GETs back to back).
 */
export async function latency(stack: Stack, trials: number) {
  const { api } = stack;
  const samples: number[] = [];
  const getRoundTrips: number[] = [];
  for (let i = 0; i < trials; i++) {
    const created = await api('POST', '/releases', { name: 'bench latency', studies: [stack.study] });
    if (created.status !== 201) throw new Error(`release: ${created.status}`);
    const id = created.body.kf_id as string;
    const tasks = await until(
      async () => {
        const r = await api('GET', `/releases/${id}`);
        const ts = r.body.tasks as Array<{ kf_id: string; state: string }>;
        return r.body.state === 'running' && ts.every((t) => t.state === 'running') && ts;
      },
      `release ${id} running`,
      20_000,
      2,
    );
    await Promise.all(
      tasks.slice(0, -1).map((t) => api('PATCH', `/tasks/${t.kf_id}`, { state: 'staged', progress: 100 })),
    );
    const last = tasks[tasks.length - 1]!;
    const t0 = performance.now();
    const patch = api('PATCH', `/tasks/${last.kf_id}`, { state: 'staged', progress: 100 });
    for (let k = 0; ; k++) {
      const g0 = performance.now();
      const r = await api('GET', `/releases/${id}`);
      const g1 = performance.now();
      getRoundTrips.push(g1 - g0);
      if (r.body.state === 'staged') {
        samples.push(g1 - t0);
        break;
      }
      if (k > 20_000 || g1 - t0 > 10_000) throw new Error(`release ${id} never staged`);
    }
    const pr = await patch;
    if (pr.status !== 200) throw new Error(`callback: ${pr.status} ${JSON.stringify(pr.body)}`);
  }
  return {
    trials,
    services: stack.services,
    p50Ms: round(percentile(samples, 50), 1),
    p90Ms: round(percentile(samples, 90), 1),
    p99Ms: round(percentile(samples, 99), 1),
    maxMs: round(Math.max(...samples), 1),
    getRoundTripP50Ms: round(percentile(getRoundTrips, 50), 2),
  };
}

// ---------------------------------------------------------------- 5. the DBOS peer

export async function peer(opts: {
  services: number;
  mockServices: number;
  sequential: number;
  concurrent: number;
  maxSeconds: number;
}) {
  const db = await createDatabase(`dbos_${opts.services}`);
  const mock = await spawnMock({ services: opts.mockServices, stageMs: 1, publishMs: 1, callback: 'never' });
  try {
    const proc = spawn(
      [
        BUN,
        join(ROOT, 'bench/peers/dbos-release.ts'),
        '--db',
        db.url,
        '--mock',
        mock.url,
        '--services',
        String(opts.services),
        '--sequential',
        String(opts.sequential),
        '--concurrent',
        String(opts.concurrent),
        '--max-seconds',
        String(opts.maxSeconds),
      ],
      { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' },
    );
    const killer = setTimeout(() => proc.kill('SIGKILL'), (opts.maxSeconds + 30) * 1000);
    const [out, err] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    clearTimeout(killer);
    const line = out.trim().split('\n').pop() ?? '';
    let parsed: any;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`DBOS peer printed no result: ${out.slice(-500)} ${err.slice(-500)}`);
    }
    if (!parsed.ok) throw new Error(`DBOS peer failed: ${parsed.error}`);
    return parsed as {
      sequentialMs: number[];
      concurrentMs?: number;
      cpuMs: number;
      calls: number;
      maxRssKb: number;
    };
  } finally {
    await mock.stop();
    await db.drop();
  }
}

export { median };

// ---------------------------------------------------------------- 7. noticing (services that never call back)

/**
 * Services that never call back and finish `stageMs` after start, with the production poll
 * interval: how long after the last one finished the release is staged. The adaptive cadence
 * (first poll ~1 s after the start answer, then doubling) is what makes this seconds, not a poll
 * interval. "Finished" is when each start arrived at its service plus stageMs (the mock's clock).
 */
export async function noticing(stack: Stack, rounds: number, stageMs: number) {
  const lags: number[] = [];
  const feed = await followRelease(stack, { tasks: false });
  try {
    for (let i = 0; i < rounds; i++) {
      const since = Date.now();
      const res = await stack.api('POST', '/releases', { name: `noticing ${i}`, studies: [stack.study] });
      if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
      const id = res.body.kf_id as string;
      await feed.release(id, 'staged', stageMs + 120_000);
      const stagedAt = Date.now();
      const starts = (await stack.mock.control('GET', `/calls?action=start&since=${since}&limit=100000`)) as {
        calls: Array<{ releaseId?: string; at: number }>;
      };
      const finishedAt =
        Math.max(...starts.calls.filter((c) => c.releaseId === id).map((c) => c.at)) + stageMs;
      lags.push(stagedAt - finishedAt);
      await stack.api('DELETE', `/releases/${id}`);
    }
  } finally {
    await feed.close();
  }
  return {
    rounds,
    services: stack.services,
    stageMs,
    lagsMs: lags.map((x) => round(x, 0)),
    medianLagMs: round(median(lags), 0),
    maxLagMs: round(Math.max(...lags), 0),
  };
}

/** running or further along the lifecycle's forward path (up to published) */
const STARTED_TASK_STATES = TASK_STATES.filter(
  (s) => TASK_RANK[s] >= TASK_RANK.running && TASK_RANK[s] <= TASK_RANK.published,
);

/** Waits until every task of the release has been started (running or further), reading Postgres. */
async function tasksStarted(stack: Stack, releaseId: string, n: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await stack.sql<{ n: number }[]>`
      select count(*)::int as n from tasks
      where release_id = ${releaseId} and state in ${stack.sql(STARTED_TASK_STATES)}`;
    if ((row?.n ?? 0) >= n) return;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${n} tasks running (${row?.n ?? 0} are)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
