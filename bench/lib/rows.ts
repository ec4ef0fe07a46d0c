/**
 * Table rows built in more than one place: those of the overhead and throughput cases, the same for
 * every topology (the run's own rows, cases 1, 2 and 6, and the split pass, case 8, differ only in
 * their labels), the split ÷ all-in-one comparison, and a time against a goal.
 */
import type { overhead, Row, throughput } from './cases';
import { round } from './infra';

export type OverheadResult = Awaited<ReturnType<typeof overhead>>;
export type ThroughputResult = Awaited<ReturnType<typeof throughput>>;

/** How one topology's rows are labelled. */
export interface RowLabels {
  overhead: string;
  throughput: string;
  perStep: string;
  /** put before every figure */
  prefix: string;
  /** the process whose CPU the per-step rows report */
  process: string;
}

/** The run's topology (all roles in one process, or `--topology split` throughout): cases 1, 2, 6. */
export const MAIN_LABELS: RowLabels = {
  overhead: '1 overhead',
  throughput: '2 throughput',
  perStep: '6 per-step',
  prefix: '',
  process: 'coordinator',
};

/** The split pass of a default run (gateway+workers | coordinator): case 8, beside all-in-one. */
export const SPLIT_LABELS: RowLabels = {
  overhead: '8 split',
  throughput: '8 split',
  perStep: '8 split',
  prefix: 'split topology: ',
  process: 'coordinator process',
};

type PerStep = OverheadResult['perStep'] | ThroughputResult['perStep'];

/** CPU, statements and JetStream messages per task transition of one measured window. */
function perStepRows(l: RowLabels, window: string, p: PerStep, getsSubtracted: boolean): Row[] {
  const subtracted = getsSubtracted ? ' (bench GETs subtracted)' : '';
  const row = (figure: string, value: number, unit: string): Row => ({
    case: l.perStep,
    figure: `${l.prefix}${window}: ${figure}`,
    value,
    unit,
    status: 'info',
  });
  return [
    row(`${l.process} CPU per task transition${subtracted}`, p.cpuMsPerTransition, 'ms'),
    row(`Postgres statements per task transition${subtracted}`, p.statementsPerTransition, 'stmts'),
    row('JetStream messages per task transition (all streams)', p.messagesPerTransition.total ?? 0, 'msgs'),
  ];
}

/** Release to published against the fetch floor (the goal is at N=50), and the per-step rows if asked. */
export function overheadRows(l: RowLabels, o: OverheadResult, withPerStep: boolean): Row[] {
  const goal = o.n === 50;
  const rows: Row[] = [
    {
      case: l.overhead,
      figure: `${l.prefix}N=${o.n} release to published (median of ${o.coordinatorMs.length})`,
      value: o.coordinatorMedianMs,
      unit: 'ms',
      floor: o.floorMedianMs,
      floorLabel: 'fetch floor ms',
      ratio: o.ratio,
      goal: goal ? '≤ 2.0× floor' : '(info; goal at N=50)',
      status: goal ? (o.ratio <= 2 ? 'pass' : 'short') : 'info',
    },
  ];
  if (withPerStep) rows.push(...perStepRows(l, `N=${o.n} sequential`, o.perStep, true));
  return rows;
}

/** Transitions/s against the goal, wall time against the fetch floor, and the per-step rows. */
export function throughputRows(l: RowLabels, t: ThroughputResult): Row[] {
  return [
    {
      case: l.throughput,
      figure: `${l.prefix}${t.releases} releases × ${t.services} services at once: task transitions/s`,
      value: t.transitionsPerSecond,
      unit: '/s',
      floor: 2000,
      floorLabel: 'goal /s',
      ratio: round(t.transitionsPerSecond / 2000),
      goal: '≥ 2,000/s',
      status: t.transitionsPerSecond >= 2000 ? 'pass' : 'short',
    },
    {
      case: l.throughput,
      figure: `${l.prefix}same workload, wall time vs fetch floor (${t.transitions} transitions)`,
      value: t.ms,
      unit: 'ms',
      floor: t.floorMs,
      floorLabel: 'fetch floor ms',
      ratio: round(t.ms / t.floorMs),
      goal: '(info)',
      status: 'info',
    },
    ...perStepRows(l, 'throughput', t.perStep, false),
  ];
}

/** A time against a goal it must not exceed (the floor column shows the goal). */
export function msGoalRow(caseName: string, figure: string, ms: number, goalMs: number): Row {
  return {
    case: caseName,
    figure,
    value: ms,
    unit: 'ms',
    floor: goalMs,
    floorLabel: 'goal ms',
    ratio: round(ms / goalMs),
    goal: `≤ ${goalMs.toLocaleString('en-US')} ms`,
    status: ms <= goalMs ? 'pass' : 'short',
  };
}

/** What one topology measured, for the comparison: the overhead at the split pass's N, throughput. */
export interface TopologyFigures {
  overhead?: OverheadResult;
  throughput?: ThroughputResult;
}

/**
 * Split ÷ all-in-one of the same run: the median release time at N (value) and the throughput in
 * transitions/s (ratio column). Undefined when no figure was measured on both.
 */
export function splitComparison(all: TopologyFigures, split: TopologyFigures) {
  const n = split.overhead?.n;
  const releaseTime =
    all.overhead && split.overhead
      ? round(split.overhead.coordinatorMedianMs / all.overhead.coordinatorMedianMs)
      : undefined;
  const transitionsPerSecond =
    all.throughput && split.throughput
      ? round(split.throughput.transitionsPerSecond / all.throughput.transitionsPerSecond)
      : undefined;
  if (releaseTime === undefined && transitionsPerSecond === undefined) return undefined;
  const time = `N=${n} median release time`;
  const rate = 'throughput, transitions/s';
  let compared = `${time} (value); ${rate} (ratio)`;
  if (releaseTime === undefined) compared = rate;
  else if (transitionsPerSecond === undefined) compared = time;
  const row: Row = {
    case: '8 split',
    figure: `split ÷ all-in-one, same run: ${compared}`,
    value: releaseTime ?? transitionsPerSecond!,
    unit: '×',
    ratio: releaseTime === undefined ? undefined : transitionsPerSecond,
    goal: '(info)',
    status: 'info',
  };
  return { row, figures: { n, releaseTime, transitionsPerSecond } };
}
