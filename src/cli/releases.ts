import { type Command, Option } from 'commander';
import { formatDuration, PHASE_LABELS, PHASES, type Phase, taskPhases } from '../domain/lifecycle/phases';
import { type Ctx, ctxOf, nonNegativeInt, type Page, positiveInt } from './context';
import { keyValues, progressBar, shortTime, table } from './output';
import { watchRelease } from './watch';

export interface Task {
  kf_id: string;
  state: string;
  progress: number | null;
  release: string | null;
  task_service: string | null;
  created_at: string | null;
  service_name: string;
  states_at?: Record<string, string>;
}

/** Why a release halted (docs/lifecycle.md, "Why a release halted"). */
export interface Halt {
  reason: 'failed' | 'canceled';
  task: string | null;
  task_service: string | null;
  service_name: string | null;
  message: string;
  canceled_by: string | null;
  at: string | null;
}

export interface Release {
  kf_id: string;
  name: string;
  description: string;
  notes: unknown[];
  state: string;
  studies: string[];
  tasks: Task[];
  version: string;
  created_at: string | null;
  tags: string[];
  author: string;
  is_major: boolean;
  halt?: Halt | null;
  published_by?: string | null;
  published_at?: string | null;
  states_at?: Record<string, string>;
}

/** One line saying why a release halted: what, which service and task, who, when, and the message. */
export function haltLine(h: Halt): string {
  const what = h.reason === 'canceled' && h.canceled_by ? `canceled by ${h.canceled_by}` : h.reason;
  const where = h.service_name
    ? ` at ${h.service_name}${h.task ? ` (task ${h.task.split('/').pop()})` : ''}`
    : '';
  const when = h.at ? `, ${shortTime(h.at)}` : '';
  // a person's cancel says all in `what`; anything else carries the service's answer or the error
  return h.message === what ? `${what}${where}${when}` : `${what}${where}${when}: ${h.message}`;
}

export const RELEASE_STATES = [
  'waiting',
  'initializing',
  'running',
  'staged',
  'publishing',
  'published',
  'canceling',
  'canceled',
  'failed',
] as const;

const path = (id: string) => `/releases/${encodeURIComponent(id)}`;
const collect = (value: string, previous: string[] = []) => [...previous, value];

export function printRelease(ctx: Ctx, r: Release): void {
  const { out } = ctx;
  out.line(
    keyValues(
      [
        ['id', r.kf_id],
        ['name', r.name],
        ['state', out.state(r.state)],
        ['version', r.version + (r.is_major ? ' (major)' : '')],
        ['studies', r.studies.join(', ')],
        ['tags', r.tags.join(', ')],
        ['author', r.author],
        ['created', shortTime(r.created_at)],
        ...(r.published_at
          ? [['published', `${shortTime(r.published_at)} by ${r.published_by ?? '?'}`] as [string, string]]
          : []),
        ...(r.halt ? [['why', out.p.red(haltLine(r.halt))] as [string, string]] : []),
        ['description', r.description],
      ],
      out.p,
    ),
  );
  out.line();
  if (r.tasks.length === 0) {
    out.line('No tasks (no enabled task service).');
    return;
  }
  const durations = phaseRows(r);
  out.line(
    table(
      r.tasks,
      [
        { header: 'TASK', value: (t) => t.kf_id },
        { header: 'SERVICE', value: (t) => t.service_name },
        { header: 'STATE', value: (t) => t.state, paint: (v) => out.state(v) },
        { header: 'PROGRESS', value: (t) => progressBar(t.progress, 20, out.isTTY) },
        ...PHASES.map((phase) => ({
          header: PHASE_LABELS[phase].toUpperCase(),
          value: (t: Task) => durations.get(t.kf_id)?.[phase] ?? '',
        })),
        { header: 'TOTAL', value: (t: Task) => durations.get(t.kf_id)?.total ?? '' },
      ],
      out.p,
    ),
  );
}

/** Each task's time per phase (from its states_at), as text; ongoing phases count up to now. */
function phaseRows(r: Release): Map<string, Partial<Record<Phase | 'total', string>>> {
  const until = r.halt?.at ? Date.parse(r.halt.at) : Date.now();
  const rows = new Map<string, Partial<Record<Phase | 'total', string>>>();
  for (const t of r.tasks) {
    if (!t.states_at || Object.keys(t.states_at).length === 0) continue;
    const phases = taskPhases(
      { state: t.state, statesAt: t.states_at, createdAt: new Date(t.created_at ?? Date.now()) },
      Math.max(until, ...Object.values(t.states_at).map((v) => Date.parse(v))),
    );
    const row: Partial<Record<Phase | 'total', string>> = { total: formatDuration(phases.total) };
    for (const phase of PHASES) {
      const ms = phases.durations[phase];
      if (ms !== undefined) row[phase] = formatDuration(ms);
    }
    rows.set(t.kf_id, row);
  }
  return rows;
}

export function registerReleases(program: Command): void {
  const releases = program
    .command('releases')
    .alias('release')
    .description('releases: create, list, show, watch, publish, cancel');
  addCreate(releases);
  addList(releases);
  addShow(releases);
  addWatch(releases);
  addPublish(releases);
  addCancel(releases);
}

/** rc releases create: start a release. */
function addCreate(releases: Command): void {
  releases
    .command('create')
    .description('start a release of one or more studies (it begins at once)')
    .requiredOption('--name <name>', 'name of the release')
    .requiredOption('--study <SD_id>', 'a study to release (repeat for more)', collect)
    .option('--description <text>', 'what is in it')
    .option('--major', 'publishing bumps the major version')
    .option('--tag <tag>', 'a tag (repeat for more)', collect)
    .option('--author <name>', 'author (default: the user of the token)')
    .option('--idempotency-key <key>', 'makes retries safe: the same key returns the same release')
    .option('-q, --quiet', "print only the new release's id (release=$(rc releases create … -q))")
    .action(async (opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const body: Record<string, unknown> = { name: opts.name, studies: opts.study };
      if (opts.description !== undefined) body.description = opts.description;
      if (opts.major) body.is_major = true;
      if (opts.tag) body.tags = opts.tag;
      if (opts.author !== undefined) body.author = opts.author;
      const headers = opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : undefined;
      const res = await ctx.client.post<Release & { detail?: string }>('/releases', body, headers);
      if (ctx.json) return ctx.out.printJson(res.body);
      if (opts.quiet) return ctx.out.line(res.body.kf_id);
      const { out } = ctx;
      if (res.status === 202) {
        out.line(
          `Accepted release ${out.p.bold(res.body.kf_id)}: ${res.body.detail ?? 'the coordinator will start it'}`,
        );
      } else {
        out.line(
          `Created release ${out.p.bold(res.body.kf_id)} "${res.body.name}" (state ${out.state(res.body.state)}, version ${res.body.version}, ${res.body.tasks.length} tasks)`,
        );
      }
      out.line(out.p.dim(`Follow it: rc releases watch ${res.body.kf_id}`));
    });
}

/** rc releases list: newest first, one page. */
function addList(releases: Command): void {
  releases
    .command('list')
    .alias('ls')
    .description('list releases, newest first')
    .addOption(new Option('--state <state>', 'only releases in this state').choices(RELEASE_STATES))
    .option('--limit <n>', 'at most this many', positiveInt('--limit'), 20)
    .option('--offset <n>', 'skip this many', nonNegativeInt('--offset'), 0)
    .action(async (opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.get<Page<Release>>('/releases', {
        state: opts.state,
        limit: opts.limit,
        offset: opts.offset,
      });
      const page = res.body;
      if (ctx.json) return ctx.out.printJson(page);
      const { out } = ctx;
      if (page.results.length === 0)
        return out.line(opts.state ? `No releases in state ${opts.state}.` : 'No releases.');
      out.line(
        table(
          page.results,
          [
            { header: 'ID', value: (r) => r.kf_id },
            { header: 'NAME', value: (r) => r.name },
            { header: 'STATE', value: (r) => r.state, paint: (v) => out.state(v) },
            { header: 'VERSION', value: (r) => r.version },
            { header: 'TASKS', value: (r) => String(r.tasks.length) },
            { header: 'CREATED', value: (r) => shortTime(r.created_at) },
          ],
          out.p,
        ),
      );
      if (page.count > page.results.length)
        out.line(out.p.dim(`${opts.offset + 1}-${opts.offset + page.results.length} of ${page.count}`));
    });
}

/** rc releases show <id>: a release and its tasks. */
function addShow(releases: Command): void {
  releases
    .command('show')
    .description('one release and its tasks')
    .argument('<id>', 'release id, e.g. RE_3G2409A2')
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.get<Release>(path(id));
      if (ctx.json) return ctx.out.printJson(res.body);
      printRelease(ctx, res.body);
    });
}

/** rc releases watch <id>: follow a release live until it settles. */
function addWatch(releases: Command): void {
  releases
    .command('watch')
    .description(
      'follow a release live, one progress bar per task, until it is staged, published, failed or canceled;\n' +
        'exit 0 staged/published, 3 failed, 4 canceled (--json: one JSON object per change)',
    )
    .argument('<id>', 'release id')
    .option('--until-published', 'do not stop at staged: wait until it is published (or fails / is canceled)')
    .option(
      '--interval <ms>',
      'how often progress is refreshed besides the event stream',
      positiveInt('--interval'),
      1000,
    )
    .action(async (id: string, opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      process.exitCode = await watchRelease(ctx, id, {
        untilPublished: Boolean(opts.untilPublished),
        intervalMs: opts.interval,
      });
    });
}

/** rc releases publish <id> */
function addPublish(releases: Command): void {
  releases
    .command('publish')
    .description('publish a staged release (409 when it is not staged)')
    .argument('<id>', 'release id')
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.post<{ message: string; detail?: string }>(`${path(id)}/publish`);
      if (ctx.json) return ctx.out.printJson({ kf_id: id, status: res.status, ...res.body });
      ctx.out.line(
        `Release ${ctx.out.p.bold(id)} ${res.body.message}${res.status === 202 ? ' (accepted; the coordinator will apply it)' : ''}`,
      );
    });
}

/** rc releases cancel <id> */
function addCancel(releases: Command): void {
  releases
    .command('cancel')
    .description('cancel a release (every task is canceled; releases are never deleted)')
    .argument('<id>', 'release id')
    .action(async (id: string, _opts, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const res = await ctx.client.delete<Release & { detail?: string }>(path(id));
      if (ctx.json) return ctx.out.printJson(res.body);
      ctx.out.line(
        `Release ${ctx.out.p.bold(res.body.kf_id)} ${ctx.out.state(res.body.state)}${res.status === 202 ? ' (accepted; the coordinator will apply it)' : ''}`,
      );
    });
}
