import type { Ctx } from './context';
import { CliError, EXIT } from './errors';
import { progressBar } from './output';
import type { Release, Task } from './releases';
import { followSse, sleep } from './sse';

const RELEASE_RANK: Record<string, number> = {
  waiting: 0,
  initializing: 1,
  running: 2,
  staged: 3,
  publishing: 4,
  canceling: 5,
  published: 9,
  canceled: 9,
  failed: 9,
};
const TASK_RANK: Record<string, number> = {
  waiting: 0,
  initialized: 1,
  running: 2,
  staged: 3,
  publishing: 4,
  published: 9,
  rejected: 9,
  failed: 9,
  canceled: 9,
};
const rank = (table: Record<string, number>, state: string) => table[state] ?? -1;

export function exitCodeFor(state: string): number {
  if (state === 'failed') return EXIT.failed;
  if (state === 'canceled') return EXIT.canceled;
  return EXIT.ok;
}

export interface WatchOptions {
  untilPublished: boolean;
  /** progress refresh (GET /releases/{id}) besides the event stream */
  intervalMs: number;
}

type TaskView = Pick<Task, 'kf_id' | 'state' | 'progress' | 'service_name'>;

/** What the watch shows: the release and its tasks, drawn in place on a TTY, a line per change otherwise. */
class WatchView {
  state: string;
  version: string;
  readonly tasks = new Map<string, TaskView>();
  private drawn = 0;

  constructor(
    private readonly ctx: Ctx,
    private readonly release: Release,
  ) {
    this.state = release.state;
    this.version = release.version;
    for (const t of release.tasks) this.tasks.set(t.kf_id, pickTask(t));
    if (ctx.json) {
      this.emitRelease();
      for (const t of this.tasks.values()) this.emitTask(t);
    } else if (!ctx.out.isTTY) {
      ctx.out.line(
        `release ${release.kf_id} "${release.name}" ${this.state} (version ${this.version}, ${this.tasks.size} tasks)`,
      );
      for (const t of this.tasks.values()) this.emitTask(t);
    } else this.redraw();
  }

  private get tty() {
    return !this.ctx.json && this.ctx.out.isTTY;
  }

  /** a release as GET /releases/{id} or a release notification shows it */
  applyRelease(r: Partial<Release>): void {
    let changed = false;
    if (
      typeof r.state === 'string' &&
      r.state !== this.state &&
      rank(RELEASE_RANK, r.state) >= rank(RELEASE_RANK, this.state)
    ) {
      this.state = r.state;
      if (typeof r.version === 'string') this.version = r.version;
      changed = true;
      if (!this.tty) this.emitRelease();
    } else if (typeof r.version === 'string' && r.version !== this.version && r.state === this.state) {
      this.version = r.version;
    }
    for (const t of r.tasks ?? []) changed = this.applyTask(t, false) || changed;
    if (changed && this.tty) this.redraw();
  }

  /** a task as the API shows it; never moves a task back to an earlier state (stale answers) */
  applyTask(t: Partial<Task> & { kf_id: string }, draw = true): boolean {
    if (typeof t.state !== 'string') return false;
    const current = this.tasks.get(t.kf_id);
    let next: TaskView;
    if (!current) next = pickTask(t as Task);
    else {
      if (rank(TASK_RANK, t.state) < rank(TASK_RANK, current.state)) return false;
      const progress = typeof t.progress === 'number' ? t.progress : current.progress;
      if (t.state === current.state && progress === current.progress) return false;
      next = { ...current, state: t.state, progress, service_name: t.service_name || current.service_name };
    }
    this.tasks.set(t.kf_id, next);
    if (this.tty) {
      if (draw) this.redraw();
    } else this.emitTask(next);
    return true;
  }

  private emitRelease(): void {
    const { out } = this.ctx;
    if (this.ctx.json)
      out.jsonLine({ type: 'release', kf_id: this.release.kf_id, state: this.state, version: this.version });
    else out.line(`release ${this.release.kf_id} ${out.state(this.state)} (version ${this.version})`);
  }

  private emitTask(t: TaskView): void {
    const { out } = this.ctx;
    if (this.ctx.json)
      out.jsonLine({
        type: 'task',
        kf_id: t.kf_id,
        release: this.release.kf_id,
        service_name: t.service_name,
        state: t.state,
        progress: t.progress,
      });
    else
      out.line(
        `task ${t.kf_id} ${t.service_name} ${out.state(t.state)} ${progressBar(t.progress, 20, false)}`,
      );
  }

  private lines(): string[] {
    const { out } = this.ctx;
    const width = Math.max(...[...this.tasks.values()].map((t) => t.service_name.length), 4);
    const head = `${out.p.bold(this.release.kf_id)} ${this.release.name}  ${out.state(this.state)}  ${out.p.dim(`version ${this.version}`)}`;
    const rows = [...this.tasks.values()].map(
      (t) =>
        `  ${t.service_name.padEnd(width)}  ${t.kf_id}  ${progressBar(t.progress, 24, true)}  ${out.state(t.state)}`,
    );
    return [head, ...(rows.length ? rows : ['  (no tasks)'])];
  }

  /** something else was written to the terminal: draw the next block below it */
  interrupted(): void {
    this.drawn = 0;
  }

  /** redraws every line in place (cursor up over what was drawn before) */
  redraw(): void {
    const cols = process.stdout.columns || 120;
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    const lines = this.lines();
    for (const line of lines) s += `\x1b[2K\r${clip(line, cols - 1)}\n`;
    this.drawn = lines.length;
    this.ctx.out.w.write(s);
  }

  finish(code: number): void {
    const { out } = this.ctx;
    if (this.ctx.json) {
      out.jsonLine({
        type: 'result',
        kf_id: this.release.kf_id,
        state: this.state,
        version: this.version,
        exit_code: code,
      });
      return;
    }
    if (this.tty) this.redraw();
    out.line(`release ${this.release.kf_id} is ${out.state(this.state)} (version ${this.version})`);
  }
}

function pickTask(t: Task): TaskView {
  return { kf_id: t.kf_id, state: t.state, progress: t.progress ?? null, service_name: t.service_name ?? '' };
}

/** Cuts a line (that may hold color codes) to `cols` visible characters so the redraw stays aligned. */
function clip(line: string, cols: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      if (end > 0) {
        out += line.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= cols) continue;
    out += line[i];
    visible++;
  }
  return out;
}

/**
 * Follows a release until it is done: staged (unless `untilPublished`), published, failed or
 * canceled. Transitions come from GET /events/stream?release= (reconnecting with Last-Event-ID);
 * progress, which changes without a transition, from a GET of the release every `intervalMs`,
 * which also covers whatever the stream could not deliver. Returns the exit code.
 */
export async function watchRelease(ctx: Ctx, id: string, opts: WatchOptions): Promise<number> {
  const { client } = ctx;
  const path = `/releases/${encodeURIComponent(id)}`;
  const first = (await client.get<Release>(path)).body;
  const view = new WatchView(ctx, first);
  const isDone = (state: string) =>
    state === 'published' ||
    state === 'failed' ||
    state === 'canceled' ||
    (state === 'staged' && !opts.untilPublished);
  if (isDone(view.state)) {
    const code = exitCodeFor(view.state);
    view.finish(code);
    return code;
  }

  const ac = new AbortController();
  let settle!: (err?: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  const check = () => {
    if (isDone(view.state)) settle();
  };
  const warn = (message: string) => {
    ctx.note(message);
    view.interrupted();
  };

  const stream = (async () => {
    try {
      for await (const ev of followSse({
        client,
        path: '/events/stream',
        query: { release: first.kf_id },
        signal: ac.signal,
        onReconnect: (i) =>
          warn(
            `event stream dropped (${i.reason}); reconnecting after event ${i.lastEventId ?? '-'} in ${i.delayMs} ms`,
          ),
      })) {
        if (ev.event === 'ready') continue;
        let n: { type?: unknown; data?: Record<string, unknown> };
        try {
          n = JSON.parse(ev.data);
        } catch {
          continue;
        }
        if (typeof n.type !== 'string' || !n.data) continue;
        if (n.type.startsWith('release.')) view.applyRelease(n.data as Partial<Release>);
        else if (n.type.startsWith('task.') && typeof n.data.kf_id === 'string')
          view.applyTask(n.data as Partial<Task> & { kf_id: string });
        check();
      }
    } catch (err) {
      if (!ac.signal.aborted) warn(`event stream not available (${(err as Error).message}); polling only`);
    }
  })();

  const poll = (async () => {
    while (!ac.signal.aborted) {
      try {
        const r = await client.request<Release>('GET', path, { signal: ac.signal });
        view.applyRelease(r.body);
        check();
      } catch (err) {
        if (ac.signal.aborted) return;
        if (err instanceof CliError && !err.details.retryable) return settle(err);
        warn(`refresh failed: ${(err as Error).message}`);
      }
      await sleep(opts.intervalMs, ac.signal);
    }
  })();

  try {
    await finished;
  } finally {
    ac.abort();
    await Promise.allSettled([stream, poll]);
  }
  const code = exitCodeFor(view.state);
  view.finish(code);
  return code;
}
