import type { FC } from 'hono/jsx';
import {
  type Axis,
  axisTicks,
  formatDuration,
  longestWork,
  PHASE_HINTS,
  PHASE_LABELS,
  PHASES,
  type Phase,
  percentOf,
  type TaskPhases,
  taskPhases,
} from '../../domain/lifecycle/phases';
import type { ReleaseRecord, TaskRecord } from '../../domain/representations';
import { StateBadge, Time } from './parts';

/**
 * Why a release halted and where its time went (issue #18): the halt banner, the phase chart (one
 * bar per task on a shared time axis, plain SVG so it reads without JavaScript) and its text
 * equivalent, a table of durations.
 */

const taskAnchor = (taskId: string) => `task-${taskId}`;
const serviceHref = (serviceId: string) => `/ui/services#${serviceId}`;

/** The halt banner, or an empty slot (the live refresh fills it when the release halts). */
export const HaltArea: FC<{ release: ReleaseRecord }> = ({ release: r }) => {
  if (!r.haltReason) return <div id="halt-area" />;
  const reason = r.haltReason === 'fail' ? 'failed' : 'canceled';
  const title =
    r.state === 'canceling'
      ? `Release halting (${reason}): canceling its tasks`
      : reason === 'failed'
        ? 'Release failed'
        : 'Release canceled';
  return (
    <div id="halt-area">
      <section class={`banner banner-${reason}`} aria-labelledby="halt-title" data-reason={reason}>
        <h2 id="halt-title" class="banner-title">
          {title}
        </h2>
        <dl class="halt-facts">
          {r.haltServiceId ? (
            <div>
              <dt>Service</dt>
              <dd>
                <a href={serviceHref(r.haltServiceId)} class="halt-service">
                  {r.haltServiceName ?? r.haltServiceId}
                </a>
              </dd>
            </div>
          ) : null}
          {r.haltTaskId ? (
            <div>
              <dt>Task</dt>
              <dd>
                <a href={`#${taskAnchor(r.haltTaskId)}`} class="id halt-task">
                  {r.haltTaskId}
                </a>
              </dd>
            </div>
          ) : null}
          {r.haltedBy ? (
            <div>
              <dt>Canceled by</dt>
              <dd class="halt-by">{r.haltedBy}</dd>
            </div>
          ) : null}
          <div>
            <dt>When</dt>
            <dd>
              <Time at={r.haltedAt ?? r.stateChangedAt} />
            </dd>
          </div>
        </dl>
        {r.haltMessage ? (
          <p class="halt-message">
            <span class="visually-hidden">Message: </span>
            <code>{r.haltMessage}</code>
          </p>
        ) : null}
        <p class="halt-next">
          {r.state === 'canceling'
            ? 'Every task that may hold work is being canceled at its service.'
            : 'Every other task was canceled. “Run again” starts a new release with the same studies.'}
        </p>
      </section>
    </div>
  );
};

const PATTERN_SIZE = 6;

/** Fills of the phases: Okabe–Ito colours (distinct with every colour-vision deficiency) plus a texture each. */
const PatternDefs: FC = () => (
  <svg class="chart-defs" width="0" height="0" aria-hidden="true" focusable="false">
    <defs>
      <pattern id="rc-ph-initialize" width={PATTERN_SIZE} height={PATTERN_SIZE} patternUnits="userSpaceOnUse">
        <rect width={PATTERN_SIZE} height={PATTERN_SIZE} class="fill-initialize" />
        <circle cx="3" cy="3" r="1.2" class="ink" />
      </pattern>
      <pattern id="rc-ph-running" width={PATTERN_SIZE} height={PATTERN_SIZE} patternUnits="userSpaceOnUse">
        <rect width={PATTERN_SIZE} height={PATTERN_SIZE} class="fill-running" />
      </pattern>
      <pattern
        id="rc-ph-staged"
        width={PATTERN_SIZE}
        height={PATTERN_SIZE}
        patternUnits="userSpaceOnUse"
        patternTransform="rotate(45)"
      >
        <rect width={PATTERN_SIZE} height={PATTERN_SIZE} class="fill-staged" />
        <rect width="2" height={PATTERN_SIZE} class="ink" />
      </pattern>
      <pattern id="rc-ph-publishing" width={PATTERN_SIZE} height={PATTERN_SIZE} patternUnits="userSpaceOnUse">
        <rect width={PATTERN_SIZE} height={PATTERN_SIZE} class="fill-publishing" />
        <path d="M0 3H6M3 0V6" class="ink-line" />
      </pattern>
    </defs>
  </svg>
);

const Swatch: FC<{ fill: string; cls?: string }> = ({ fill, cls }) => (
  <svg class={`swatch ${cls ?? ''}`} width="28" height="14" aria-hidden="true" focusable="false">
    <rect width="28" height="14" rx="2" fill={fill} />
  </svg>
);

const MarkSwatch: FC<{ cls: string }> = ({ cls }) => (
  <svg class="swatch" width="28" height="14" aria-hidden="true" focusable="false">
    <line x1="14" x2="14" y1="0" y2="14" class={cls} />
  </svg>
);

/** "running 4.2 s, staged 1 min (so far)" */
function phaseSummary(p: TaskPhases): string {
  const parts = PHASES.filter((ph) => p.durations[ph] !== undefined).map((ph) => {
    const ongoing = p.spans.some((s) => s.phase === ph && s.ongoing);
    return `${PHASE_LABELS[ph].toLowerCase()} ${formatDuration(p.durations[ph]!)}${ongoing ? ' (so far)' : ''}`;
  });
  return parts.length ? parts.join(', ') : 'no time recorded yet';
}

interface Marker {
  at: number;
  cls: string;
  label: string;
}

const END_MARK = new Set(['failed', 'canceled', 'rejected']);

const Bar: FC<{ task: TaskRecord; phases: TaskPhases; axis: Axis; markers: Marker[]; ticks: number[] }> = ({
  task,
  phases,
  axis,
  markers,
  ticks,
}) => {
  const name = task.serviceName;
  const end = percentOf(axis, phases.end);
  return (
    <div class="chart-row" data-task={task.kfId} data-service={name} data-state={task.state}>
      <div class="chart-label">
        <a href={`#${taskAnchor(task.kfId)}`} class="chart-service">
          {name}
        </a>{' '}
        <span class={`chart-state chart-state-${task.state}`}>{task.state}</span>
      </div>
      <svg
        class="chart-bar"
        role="img"
        aria-label={`${name}, ${task.state}: ${phaseSummary(phases)}`}
        focusable="false"
      >
        {ticks.map((p) => (
          <line x1={`${p}%`} x2={`${p}%`} y1="0" y2="100%" class="grid" />
        ))}
        {phases.spans.map((s) => {
          const x = percentOf(axis, s.from);
          const width = Math.max(0.4, percentOf(axis, s.to) - x);
          return (
            <rect
              x={`${x}%`}
              width={`${width}%`}
              y="18%"
              height="64%"
              fill={`url(#rc-ph-${s.phase})`}
              class={`ph ph-${s.phase}${s.ongoing ? ' ongoing' : ''}`}
              data-phase={s.phase}
            >
              <title>{`${name}: ${PHASE_LABELS[s.phase].toLowerCase()} ${formatDuration(s.to - s.from)}${s.ongoing ? ' (so far)' : ''}`}</title>
            </rect>
          );
        })}
        {END_MARK.has(task.state) ? (
          <line x1={`${end}%`} x2={`${end}%`} y1="6%" y2="94%" class={`end-mark end-${task.state}`}>
            <title>{`${name} ${task.state}`}</title>
          </line>
        ) : null}
        {markers.map((m) => (
          <line
            x1={`${percentOf(axis, m.at)}%`}
            x2={`${percentOf(axis, m.at)}%`}
            y1="0"
            y2="100%"
            class={`marker ${m.cls}`}
          >
            <title>{m.label}</title>
          </line>
        ))}
      </svg>
    </div>
  );
};

/** The markers across every bar: when publishing was asked for, when the release halted. */
function markersOf(r: ReleaseRecord): Marker[] {
  const out: Marker[] = [];
  if (r.publishRequestedAt)
    out.push({
      at: r.publishRequestedAt.getTime(),
      cls: 'mark-publish',
      label: `publish requested${r.publishedBy ? ` by ${r.publishedBy}` : ''}`,
    });
  if (r.haltReason && r.haltedAt)
    out.push({
      at: r.haltedAt.getTime(),
      cls: 'mark-halt',
      label: `release halted (${r.haltReason === 'fail' ? 'failed' : 'canceled'})`,
    });
  return out;
}

const DurationCell: FC<{ phases: TaskPhases; phase: Phase }> = ({ phases, phase }) => {
  const ms = phases.durations[phase];
  if (ms === undefined)
    return (
      <td class="dur" data-phase={phase}>
        <span class="muted">—</span>
      </td>
    );
  const ongoing = phases.spans.some((s) => s.phase === phase && s.ongoing);
  return (
    <td class="dur" data-phase={phase} data-ms={String(ms)}>
      {formatDuration(ms)}
      {ongoing ? <span class="so-far"> (so far)</span> : null}
    </td>
  );
};

type PhaseRow = { task: TaskRecord; phases: TaskPhases };

/** The chart's time span in words, and the longest piece of work (none after a halt). */
const PhasesHint: FC<{ axis: Axis; longest: ReturnType<typeof longestWork> }> = ({ axis, longest }) => (
  <p class="hint">
    One bar per task, from the release's creation (<Time at={new Date(axis.start)} />) to{' '}
    {axis.ongoing ? 'now' : 'its end'} ({formatDuration(axis.end - axis.start)}
    {axis.ongoing ? ' so far' : ''}).
    {longest ? (
      <>
        {' '}
        Longest work: <strong id="longest-work">{longest.name}</strong>,{' '}
        {PHASE_LABELS[longest.phase].toLowerCase()} {formatDuration(longest.ms)}.
      </>
    ) : null}
  </p>
);

/** One swatch per phase, and the publish and halt markers when the chart shows them. */
const PhaseLegend: FC<{ markers: Marker[] }> = ({ markers }) => (
  <ul class="legend" aria-label="Legend">
    {PHASES.map((p) => (
      <li>
        <Swatch fill={`url(#rc-ph-${p})`} /> {PHASE_LABELS[p]} <span class="muted">({PHASE_HINTS[p]})</span>
      </li>
    ))}
    {markers.some((m) => m.cls === 'mark-publish') ? (
      <li>
        <MarkSwatch cls="marker mark-publish" /> publish requested
      </li>
    ) : null}
    {markers.some((m) => m.cls === 'mark-halt') ? (
      <li>
        <MarkSwatch cls="marker mark-halt" /> halted
      </li>
    ) : null}
  </ul>
);

/** The time axis under the bars: one label per tick. */
const AxisRow: FC<{ ticks: ReturnType<typeof axisTicks> }> = ({ ticks }) => (
  <div class="chart-row chart-axis" aria-hidden="true">
    <div class="chart-label muted">time since created</div>
    <svg class="axis-svg" aria-hidden="true" focusable="false">
      {ticks.map((t, i) => (
        <text
          x={`${t.percent}%`}
          y="75%"
          text-anchor={i === 0 ? 'start' : i === ticks.length - 1 ? 'end' : 'middle'}
        >
          {t.label}
        </text>
      ))}
    </svg>
  </div>
);

/** The chart: patterns, legend, one bar per task and the axis. */
const PhaseChart: FC<{ rows: PhaseRow[]; axis: Axis; markers: Marker[] }> = ({ rows, axis, markers }) => {
  const ticks = axisTicks(axis);
  return (
    <figure class="phase-chart" id="phase-chart" aria-labelledby="phase-chart-caption">
      <PatternDefs />
      <figcaption id="phase-chart-caption" class="visually-hidden">
        Phases of each task on a shared time axis; the table below gives the same durations.
      </figcaption>
      <PhaseLegend markers={markers} />
      <div class="chart-rows">
        {rows.map((r) => (
          <Bar
            task={r.task}
            phases={r.phases}
            axis={axis}
            markers={markers}
            ticks={ticks.map((t) => t.percent)}
          />
        ))}
        <AxisRow ticks={ticks} />
      </div>
    </figure>
  );
};

/** The chart's text equivalent: time in each phase, per task. */
const DurationsTable: FC<{ rows: PhaseRow[] }> = ({ rows }) => (
  <div class="table-wrap">
    <table class="durations" id="durations">
      <caption>Time in each phase, per task</caption>
      <thead>
        <tr>
          <th scope="col">Service</th>
          <th scope="col">State</th>
          {PHASES.map((p) => (
            <th scope="col" title={PHASE_HINTS[p]}>
              {PHASE_LABELS[p]}
            </th>
          ))}
          <th scope="col">Total</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ task, phases }) => (
          <tr data-task={task.kfId}>
            <th scope="row">{task.serviceName}</th>
            <td>
              <StateBadge state={task.state} />
            </td>
            {PHASES.map((p) => (
              <DurationCell phases={phases} phase={p} />
            ))}
            <td class="dur total" data-ms={String(phases.total)}>
              {formatDuration(phases.total)}
              {phases.ongoing ? <span class="so-far"> (so far)</span> : null}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);

/** Where the time went: the chart, its legend and the durations table. Refreshed as a whole. */
export const PhasesCard: FC<{ release: ReleaseRecord; tasks: TaskRecord[]; axis: Axis }> = ({
  release,
  tasks,
  axis,
}) => {
  const rows: PhaseRow[] = tasks.map((t) => ({ task: t, phases: taskPhases(t, axis.end) }));
  const markers = markersOf(release);
  // after a halt the banner says what went wrong; the tasks' times were cut short by it
  const longest = release.haltReason
    ? undefined
    : longestWork(rows.map((r) => ({ name: r.task.serviceName, phases: r.phases })));
  return (
    <section aria-labelledby="phases-title" class="card" id="phases-card">
      <h2 id="phases-title">Where the time went</h2>
      {tasks.length === 0 ? (
        <p class="empty">No tasks, so there is nothing to chart.</p>
      ) : (
        <>
          <PhasesHint axis={axis} longest={longest} />
          <PhaseChart rows={rows} axis={axis} markers={markers} />
          <DurationsTable rows={rows} />
        </>
      )}
    </section>
  );
};
