#!/usr/bin/env bun
/**
 * Benchmark suite (issue #8). `npm run bench` (full, several minutes) or `npm run bench -- --quick`
 * (small sizes, < 1 min, CI). Prints a table and writes bench/results/<date>[-quick].json.
 * See bench/README.md for what each case measures.
 *
 * Options: --quick, --only overhead,throughput,scale,latency,peer,noticing,split (comma list),
 * --profile (an extra throughput pass with the coordinator under `bun --cpu-prof`; summary in the
 * JSON), --topology all|split (split: gateway+workers and the coordinator in two processes, as on
 * Fly). With the default topology, the overhead at N=50 and the throughput case run again split
 * (case 8, beside the all-in-one rows; `--only split` runs just that pass).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { latency, noticing, overhead, peer, type Row, type Sizes, scale, throughput } from './lib/cases';
import {
  type CoordinatorProcess,
  ROOT,
  round,
  type Stack,
  type StackOptions,
  startStack,
  WORK_DIR,
} from './lib/infra';
import { summarizeProfile } from './lib/profile';
import {
  MAIN_LABELS,
  msGoalRow,
  overheadRows,
  type RowLabels,
  SPLIT_LABELS,
  splitComparison,
  type TopologyFigures,
  throughputRows,
} from './lib/rows';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    out: { type: 'string' },
    topology: { type: 'string', default: 'all' },
  },
});
if (values.topology !== 'all' && values.topology !== 'split') {
  console.error(
    `bench: --topology must be "all" (one process, every role) or "split" (gateway+workers | coordinator)`,
  );
  process.exit(2);
}
const topology = values.topology as 'all' | 'split';
const quick = values.quick!;
const CASES = ['overhead', 'throughput', 'scale', 'latency', 'peer', 'noticing', 'split'];
const only = new Set(values.only?.split(',').filter(Boolean) ?? CASES);
const unknownCases = [...only].filter((c) => !CASES.includes(c));
if (unknownCases.length > 0) {
  console.error(`bench: --only takes a comma list of ${CASES.join(', ')} (not ${unknownCases.join(', ')})`);
  process.exit(2);
}
const startedAt = Date.now();
/** hard bound on the whole run; every case has its own bounds too */
const RUN_LIMIT_MS = quick ? 120_000 : 20 * 60_000;
const hardStop = setTimeout(() => {
  console.error(`bench: exceeded ${RUN_LIMIT_MS / 1000}s, aborting`);
  process.exit(3);
}, RUN_LIMIT_MS);
hardStop.unref();

const sizes: Sizes = quick
  ? {
      overheadNs: [1, 10],
      reps: 2,
      headlineN: 10,
      throughputReleases: 20,
      throughputServices: 10,
      scaleServices: [100],
      scaleStageMs: 1_500,
      latencyTrials: 20,
      latencyServices: 10,
      peerNs: [10],
      peerReps: 2,
      noticingRounds: 2,
    }
  : {
      overheadNs: [1, 10, 50, 200],
      reps: 7,
      headlineN: 50,
      throughputReleases: 200,
      throughputServices: 10,
      scaleServices: [1_000, 10_000],
      scaleStageMs: 2_500,
      latencyTrials: 200,
      latencyServices: 10,
      peerNs: [10, 50],
      peerReps: 5,
      noticingRounds: 5,
    };
const POLL_INTERVAL_MS = 1_000;
const POLL_JITTER = 0.1;
/** BENCH_COORDINATOR_ENV: a JSON object of extra coordinator settings, for experiments */
const extraEnv = (() => {
  try {
    return JSON.parse(process.env.BENCH_COORDINATOR_ENV || '{}') as Record<string, string>;
  } catch {
    console.error('bench: BENCH_COORDINATOR_ENV must be a JSON object, e.g. {"COORDINATOR_GATHER_MS":"0"}');
    process.exit(2);
  }
})();
const coordinatorEnv = {
  ...extraEnv,
  POLL_INTERVAL_MS: String(POLL_INTERVAL_MS),
  POLL_JITTER: String(POLL_JITTER),
};

const rows: Row[] = [];
const details: Record<string, unknown> = {};
const errors: string[] = [];
const log = (s: string) =>
  process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(1)}s] ${s}\n`);

/** A stack of the run's topology (unless `o.topology` says otherwise) for the time of `fn`. */
async function withStack<T>(
  o: Omit<StackOptions, 'env'> & { env?: Record<string, string> },
  fn: (s: Stack) => Promise<T>,
) {
  log(`starting stack ${o.label} (${o.services} services, topology ${o.topology ?? topology})`);
  const stack = await startStack({ topology, ...o, env: { ...coordinatorEnv, ...o.env } });
  try {
    return await fn(stack);
  } finally {
    await stack.stop();
  }
}

async function step(name: string, fn: () => Promise<void>) {
  try {
    await fn();
  } catch (err) {
    const msg = `${name}: ${(err as Error).stack ?? err}`;
    errors.push(msg.split('\n').slice(0, 3).join(' | '));
    log(`FAILED ${msg}`);
  }
}

const coordMs: Record<string, number> = {};
const instant = { stageMs: 1, publishMs: 1, callback: 'after' as const };

/** The overhead case on `stack`: its rows (with the per-step rows at the headline N). */
async function overheadCase(stack: Stack, labels: RowLabels) {
  const n = stack.services;
  log(`${labels.prefix}overhead N=${n}`);
  const o = await overhead(stack, n >= 200 ? Math.max(2, Math.ceil(sizes.reps / 2)) : sizes.reps);
  rows.push(...overheadRows(labels, o, n === sizes.headlineN));
  return o;
}

/** The throughput case on `stack` (throughputServices services): its rows. */
async function throughputCase(stack: Stack, labels: RowLabels) {
  log(`${labels.prefix}throughput ${sizes.throughputReleases} × ${stack.services}`);
  const t = await throughput(stack, sizes.throughputReleases, quick ? 40 : 120);
  rows.push(...throughputRows(labels, t));
  return t;
}

async function latencyCase(stack: Stack) {
  log(`latency ${sizes.latencyTrials} trials`);
  // tasks stay running (no callbacks from the mock): the bench sends the staged callbacks
  await stack.mock.control('POST', '/behaviour', {
    behaviour: { stageMs: 600_000, callback: 'never' },
  });
  const l = await latency(stack, sizes.latencyTrials);
  details.latency = l;
  rows.push(
    msGoalRow(
      '4 latency',
      `last staged callback → staged via GET, p50 (${l.trials} trials, ${l.services} tasks)`,
      l.p50Ms,
      20,
    ),
    {
      case: '4 latency',
      figure: 'same, p99 (floor: one GET /releases/{id} round trip, p50)',
      value: l.p99Ms,
      unit: 'ms',
      floor: l.getRoundTripP50Ms,
      floorLabel: 'GET p50 ms',
      ratio: round(l.p99Ms / l.getRoundTripP50Ms, 1),
      goal: '(info)',
      status: 'info',
    },
  );
}

/** A process's RSS now and peak (VmHWM), MB. */
function memoryOf(p: CoordinatorProcess | undefined) {
  const m = p?.memory();
  return m && { rssMb: round(m.rssMb, 1), peakMb: round(m.peakMb, 1) };
}

/** What the all-in-one cases measured at the headline N, for the split pass to compare with. */
const allInOne: TopologyFigures = {};

// ---- 1. overhead (+ throughput and latency on the N=10 stack)
for (const n of only.has('overhead') || only.has('throughput') || only.has('latency')
  ? sizes.overheadNs
  : []) {
  await step(`stack N=${n}`, () =>
    withStack({ label: `n${n}`, services: n, ...instant }, async (stack) => {
      if (only.has('overhead')) {
        await step(`overhead N=${n}`, async () => {
          const o = await overheadCase(stack, MAIN_LABELS);
          details[`overhead_n${n}`] = o;
          coordMs[`n${n}`] = o.coordinatorMedianMs;
          if (n === sizes.headlineN) allInOne.overhead = o;
        });
      }
      if (n === sizes.throughputServices && only.has('throughput')) {
        await step('throughput', async () => {
          const t = await throughputCase(stack, MAIN_LABELS);
          details.throughput = t;
          coordMs.throughput = t.ms;
          allInOne.throughput = t;
        });
      }
      if (n === sizes.latencyServices && only.has('latency')) {
        await step('latency', () => latencyCase(stack));
      }
    }),
  );
}

// ---- 8. split: the overhead at the headline N and the throughput case again, with the gateway and
// workers in one process and the coordinator in another (as on Fly), reported beside all-in-one.
// With --topology split every case already ran split: no second pass.
const splitOverhead = only.has('overhead') || only.has('split');
const splitThroughput = only.has('throughput') || only.has('split');
if (topology === 'split' && only.has('split')) {
  log('split pass skipped: with --topology split every case already runs split');
}
if (topology === 'all' && (splitOverhead || splitThroughput)) {
  const split: TopologyFigures & Record<string, unknown> = {};
  details.split = split;
  const ns = new Set<number>();
  if (splitOverhead) ns.add(sizes.headlineN);
  if (splitThroughput) ns.add(sizes.throughputServices);
  for (const n of ns) {
    await step(`split stack N=${n}`, () =>
      withStack({ label: `split-n${n}`, services: n, ...instant, topology: 'split' }, async (stack) => {
        if (splitOverhead && n === sizes.headlineN) {
          await step(`split overhead N=${n}`, async () => {
            split.overhead = await overheadCase(stack, SPLIT_LABELS);
          });
        }
        if (splitThroughput && n === sizes.throughputServices) {
          await step('split throughput', async () => {
            split.throughput = await throughputCase(stack, SPLIT_LABELS);
          });
        }
        // each process's own memory (MB, now and peak): the coordinator's no longer holds the gateway's
        split[`memory_n${n}`] = {
          coordinator: memoryOf(stack.coordinator),
          gatewayWorker: memoryOf(stack.app),
        };
      }),
    );
  }
  const compared = splitComparison(allInOne, split);
  if (compared) {
    rows.push(compared.row);
    split.comparison = compared.figures;
  }
}

// ---- 7. noticing: services that never call back, production poll interval
if (only.has('noticing')) {
  const stageMs = 1_000;
  await step('noticing', () =>
    withStack(
      {
        label: 'noticing',
        services: 10,
        stageMs,
        publishMs: 1,
        callback: 'never',
        // the defaults an operator runs with: the adaptive cadence, not a short interval, must notice
        env: { POLL_INTERVAL_MS: '30000', SCHEDULER_TICK_MS: '1000' },
      },
      async (stack) => {
        log(`noticing ${sizes.noticingRounds} rounds`);
        const n = await noticing(stack, sizes.noticingRounds, stageMs);
        details.noticing = n;
        rows.push(
          msGoalRow(
            '7 noticing',
            `no callbacks, done ${stageMs} ms after start, POLL_INTERVAL_MS 30000: last done → staged, worst of ${n.rounds}`,
            n.maxLagMs,
            3_000,
          ),
        );
      },
    ),
  );
}

// ---- 3. scale: one release over many services (1,000: RSS < 300 MB; 10,000 in a full run: < 1 GB)
if (only.has('scale')) {
  for (const services of sizes.scaleServices) {
    const rssGoalMb = services > 1_000 ? 1_000 : 300;
    const label = services > 1_000 ? 'scale-10k' : 'scale';
    await step(label, () =>
      withStack(
        { label, services, stageMs: sizes.scaleStageMs, publishMs: 1, callback: 'after' },
        async (stack) => {
          log(`scale ${services} services`);
          const s = await scale(stack, POLL_INTERVAL_MS, POLL_JITTER);
          details[label] = s;
          rows.push(
            {
              case: '3 scale',
              figure: `1 release × ${s.services} services completes (stage ${sizes.scaleStageMs} ms)`,
              value: s.ms,
              unit: 'ms',
              goal: 'completes',
              status: s.completed ? 'pass' : 'short',
            },
            {
              case: '3 scale',
              figure: `${s.services} services: coordinator peak RSS (floor: idle RSS before the release)`,
              value: s.peakRssMb,
              unit: 'MB',
              floor: s.idleRssMb,
              floorLabel: 'idle MB',
              ratio: round(s.peakRssMb / rssGoalMb),
              goal: `< ${rssGoalMb} MB`,
              status: s.peakRssMb < rssGoalMb ? 'pass' : 'short',
            },
            {
              case: '3 scale',
              figure: `${s.services} services: polls/s while running (bound: tasks / ${POLL_INTERVAL_MS} ms × (1+jitter))`,
              value: s.pollsPerSecond,
              unit: '/s',
              floor: s.pollBoundPerSecond,
              floorLabel: 'bound /s',
              ratio: round(s.pollsPerSecond / s.pollBoundPerSecond),
              goal: '≤ bound',
              status: s.pollsPerSecond <= s.pollBoundPerSecond ? 'pass' : 'short',
            },
          );
        },
      ),
    );
  }
}

// ---- 5. the DBOS peer (run while no coordinator is up)
if (only.has('peer')) {
  for (const n of sizes.peerNs) {
    await step(`peer N=${n}`, async () => {
      const withThroughput = n === sizes.throughputServices;
      log(`DBOS peer N=${n}${withThroughput ? ` + ${sizes.throughputReleases} at once` : ''}`);
      const p = await peer({
        services: n,
        mockServices: n,
        sequential: sizes.peerReps + 1,
        concurrent: withThroughput ? sizes.throughputReleases : 0,
        maxSeconds: quick ? 40 : 180,
      });
      const seq = p.sequentialMs.slice(1); // first one is the warm-up
      const med = [...seq].sort((a, b) => a - b)[Math.ceil(seq.length / 2) - 1]!;
      details[`peer_n${n}`] = {
        sequentialMs: p.sequentialMs.map((x) => round(x, 1)),
        concurrentMs: p.concurrentMs && round(p.concurrentMs, 0),
        cpuMs: round(p.cpuMs, 0),
        calls: p.calls,
      };
      const c = coordMs[`n${n}`];
      rows.push({
        case: '5 peer',
        figure: `N=${n}: DBOS workflow (median) vs coordinator release`,
        value: round(med, 1),
        unit: 'ms',
        floor: c,
        floorLabel: 'coordinator ms',
        ratio: c ? round(med / c) : undefined,
        goal: 'peer/coordinator > 1',
        status: c ? (med > c ? 'pass' : 'short') : 'info',
      });
      if (withThroughput && p.concurrentMs) {
        const ct = coordMs.throughput;
        rows.push({
          case: '5 peer',
          figure: `throughput ${sizes.throughputReleases} × ${n}: DBOS wall time vs coordinator`,
          value: round(p.concurrentMs, 0),
          unit: 'ms',
          floor: ct,
          floorLabel: 'coordinator ms',
          ratio: ct ? round(p.concurrentMs / ct) : undefined,
          goal: 'peer/coordinator > 1',
          status: ct ? (p.concurrentMs > ct ? 'pass' : 'short') : 'info',
        });
      }
    });
  }
}

// ---- profile (optional): the throughput case again with the coordinator under --cpu-prof
if (values.profile) {
  await step('profile', async () => {
    const dir = join(WORK_DIR, 'profile');
    mkdirSync(dir, { recursive: true });
    await withStack(
      {
        label: 'profile',
        services: sizes.throughputServices,
        ...instant,
        bunFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-md'],
      },
      async (stack) => {
        log('profile: throughput pass under --cpu-prof');
        await throughput(stack, sizes.throughputReleases, quick ? 40 : 120);
      },
    );
    details.profile = summarizeProfile(dir);
    log(`profile written to ${dir}`);
  });
}

// ---- report
const wallS = round((Date.now() - startedAt) / 1000, 1);
const fmt = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '' : String(x));
const table = [
  ['case', 'figure', 'value', 'floor / goal', 'ratio', 'goal', 'status'],
  ...rows.map((r) => [
    r.case,
    r.figure,
    `${fmt(r.value)} ${r.unit}`,
    r.floor === undefined ? '' : `${fmt(r.floor)} (${r.floorLabel})`,
    r.ratio === undefined ? '' : `${r.ratio}×`,
    r.goal ?? '',
    r.status,
  ]),
];
const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(line(table[0]!));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of table.slice(1)) console.log(line(row));
console.log(
  `\n${quick ? 'quick' : 'full'} run: ${wallS}s; ${rows.filter((r) => r.status === 'pass').length} pass, ${rows.filter((r) => r.status === 'short').length} short, ${errors.length} errors`,
);
for (const e of errors) console.log(`error: ${e}`);

const date = new Date().toISOString().slice(0, 10);
const out = values.out ?? join(ROOT, 'bench/results', `${date}${quick ? '-quick' : ''}.json`);
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      wallSeconds: wallS,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, bun: Bun.version },
      settings: {
        topology,
        ...sizes,
        pollIntervalMs: POLL_INTERVAL_MS,
        pollJitter: POLL_JITTER,
        schedulerTickMs: 100,
        mock: 'stageMs 1, publishMs 1, callback after (unless a case says otherwise)',
      },
      rows,
      details,
      errors,
    },
    null,
    1,
  )}\n`,
);
console.log(`results: ${out}`);
process.exit(errors.length > 0 ? 1 : 0);
