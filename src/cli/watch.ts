import { type GenericBar, MultiBar } from 'cli-progress';
import type { Ctx } from './context';
import { CliError, EXIT } from './errors';
import { type Output, progressBar } from './output';
import { type Halt, haltLine, type Release, type Task } from './releases';
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

/**
 * Lines kept in place on a terminal by cli-progress: one "bar" per line, whose text we render
 * ourselves. It redraws at most 10 times a second, turns line wrapping off while it draws (long
 * lines are cut by the terminal, not wrapped into the next bar) and prints notes above the block.
 */
class TerminalLines {
  private readonly multi: MultiBar;
  private readonly lines = new Map<string, GenericBar>();

  constructor(out: Output) {
    const stream = {
      write: (s: string) => {
        out.w.write(s);
        return true;
      },
      isTTY: true,
      get columns() {
        return process.stdout.columns;
      },
    } as unknown as NodeJS.WritableStream;
    this.multi = new MultiBar({
      stream,
      format: (_options, _params, payload: { text: string }) => payload.text,
      hideCursor: true,
      linewrap: false,
      clearOnComplete: false,
      fps: 10,
    });
  }

  draw(lines: Array<{ key: string; text: string }>): void {
    for (const { key, text } of lines) {
      const line = this.lines.get(key);
      if (line) line.update({ text });
      else this.lines.set(key, this.multi.create(1, 0, { text }));
    }
  }

  /** a note above the lines (they are drawn again below it) */
  note(message: string): void {
    this.multi.log(`${message}\n`);
  }

  /** draws the last state (and notes not shown yet) and gives the terminal back (cursor, line wrapping) */
  stop(): void {
    this.multi.update(); // stop() alone draws the lines but drops notes still waiting for the next frame
    this.multi.stop();
  }
}

/** What the watch shows: the release and its tasks, drawn in place on a TTY, a line per change otherwise. */
export class WatchView {
  state: string;
  version: string;
  /** why the release halted, once it did */
  halt: Halt | null;
  readonly tasks = new Map<string, TaskView>();
  private readonly terminal?: TerminalLines;

  constructor(
    private readonly ctx: Ctx,
    private readonly release: Release,
  ) {
    this.state = release.state;
    this.version = release.version;
    this.halt = release.halt ?? null;
    for (const t of release.tasks) this.tasks.set(t.kf_id, pickTask(t));
    if (ctx.json) {
      this.emitRelease();
      for (const t of this.tasks.values()) this.emitTask(t);
    } else if (!ctx.out.isTTY) {
      ctx.out.line(
        `release ${release.kf_id} "${release.name}" ${this.state} (version ${this.version}, ${this.tasks.size} tasks)`,
      );
      for (const t of this.tasks.values()) this.emitTask(t);
    } else {
      this.terminal = new TerminalLines(ctx.out);
      this.redraw();
    }
  }

  private get tty() {
    return this.terminal !== undefined;
  }

  /** a release as GET /releases/{id} or a release notification shows it */
  applyRelease(r: Partial<Release>): void {
    let changed = false;
    if (r.halt) this.halt = r.halt;
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

  private lines(): Array<{ key: string; text: string }> {
    const { out } = this.ctx;
    const width = Math.max(...[...this.tasks.values()].map((t) => t.service_name.length), 4);
    const head = `${out.p.bold(this.release.kf_id)} ${this.release.name}  ${out.state(this.state)}  ${out.p.dim(`version ${this.version}`)}`;
    const rows = [...this.tasks.values()].map((t) => ({
      key: t.kf_id,
      text: `  ${t.service_name.padEnd(width)}  ${t.kf_id}  ${progressBar(t.progress, 24, true)}  ${out.state(t.state)}`,
    }));
    return [
      { key: 'release', text: head },
      ...(rows.length ? rows : [{ key: 'none', text: '  (no tasks)' }]),
    ];
  }

  /** a warning: above the live lines on a terminal, else on stderr */
  note(message: string): void {
    if (this.terminal) this.terminal.note(message);
    else this.ctx.note(message);
  }

  redraw(): void {
    this.terminal?.draw(this.lines());
  }

  /** gives the terminal back (after Ctrl-C) */
  stop(): void {
    this.terminal?.stop();
  }

  finish(code: number): void {
    const { out } = this.ctx;
    if (this.ctx.json) {
      out.jsonLine({
        type: 'result',
        kf_id: this.release.kf_id,
        state: this.state,
        version: this.version,
        halt: this.halt,
        exit_code: code,
      });
      return;
    }
    if (this.terminal) {
      this.redraw();
      this.terminal.stop();
    }
    out.line(`release ${this.release.kf_id} is ${out.state(this.state)} (version ${this.version})`);
    if (this.halt) out.line(`  why: ${haltLine(this.halt)}`);
  }
}

function pickTask(t: Task): TaskView {
  return { kf_id: t.kf_id, state: t.state, progress: t.progress ?? null, service_name: t.service_name ?? '' };
}

function isDone(state: string, untilPublished: boolean): boolean {
  return (
    state === 'published' ||
    state === 'failed' ||
    state === 'canceled' ||
    (state === 'staged' && !untilPublished)
  );
}

/** Shows the end of the watch; returns the exit code for the release's state. */
function finish(view: WatchView): number {
  const code = exitCodeFor(view.state);
  view.finish(code);
  return code;
}

/** What the event stream and the poll share: the view they update, and how they end the watch. */
interface Watcher {
  view: WatchView;
  /** aborted when the watch ends */
  signal: AbortSignal;
  /** ends the watch if the release is done */
  check(): void;
  /** ends the watch with an error */
  fail(err: unknown): void;
}

/**
 * Follows a release until it is done: staged (unless `untilPublished`), published, failed or
 * canceled. Transitions come from GET /events/stream?release= (reconnecting with Last-Event-ID);
 * progress, which changes without a transition, from a GET of the release every `intervalMs`,
 * which also covers whatever the stream could not deliver. Returns the exit code.
 */
export async function watchRelease(ctx: Ctx, id: string, opts: WatchOptions): Promise<number> {
  const path = `/releases/${encodeURIComponent(id)}`;
  const first = (await ctx.client.get<Release>(path)).body;
  const view = new WatchView(ctx, first);
  if (isDone(view.state, opts.untilPublished)) return finish(view);

  const ac = new AbortController();
  let settle!: (err?: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  const watcher: Watcher = {
    view,
    signal: ac.signal,
    check: () => {
      if (isDone(view.state, opts.untilPublished)) settle();
    },
    fail: (err) => settle(err),
  };
  // Ctrl-C: stop drawing and give the terminal back (cursor, line wrapping) before leaving
  const signals = catchSignals(() => settle());
  const stream = followEvents(ctx, first.kf_id, watcher);
  const poll = pollRelease(ctx, path, opts.intervalMs, watcher);
  try {
    await finished;
  } finally {
    signals.off();
    ac.abort();
    await Promise.allSettled([stream, poll]);
  }
  if (signals.received) {
    view.stop();
    // what a shell reports for a command ended by that signal, as before there was a handler
    return signals.received === 'SIGINT' ? EXIT.sigint : EXIT.sigterm;
  }
  return finish(view);
}

/** SIGINT and SIGTERM while watching: `onSignal` runs, and `received` says which came. */
function catchSignals(onSignal: () => void): { readonly received: NodeJS.Signals | undefined; off(): void } {
  let received: NodeJS.Signals | undefined;
  const handler = (signal: NodeJS.Signals) => {
    received = signal;
    onSignal();
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    get received() {
      return received;
    },
    off() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/** Applies the release's notifications from the event stream (reconnecting) until the watch ends. */
async function followEvents(ctx: Ctx, releaseId: string, w: Watcher): Promise<void> {
  try {
    for await (const ev of followSse({
      client: ctx.client,
      path: '/events/stream',
      query: { release: releaseId },
      signal: w.signal,
      onReconnect: (i) =>
        w.view.note(
          `event stream dropped (${i.reason}); reconnecting after event ${i.lastEventId ?? '-'} in ${i.delayMs} ms`,
        ),
    })) {
      if (ev.event === 'ready') continue;
      if (applyNotification(w.view, ev.data)) w.check();
    }
  } catch (err) {
    if (!w.signal.aborted)
      w.view.note(`event stream not available (${(err as Error).message}); polling only`);
  }
}

/** Applies one notification (JSON) of the event stream; false if it is not one. */
function applyNotification(view: WatchView, data: string): boolean {
  let n: { type?: unknown; data?: Record<string, unknown> };
  try {
    n = JSON.parse(data);
  } catch {
    return false;
  }
  if (typeof n.type !== 'string' || !n.data) return false;
  if (n.type.startsWith('release.')) view.applyRelease(n.data as Partial<Release>);
  else if (n.type.startsWith('task.') && typeof n.data.kf_id === 'string')
    view.applyTask(n.data as Partial<Task> & { kf_id: string });
  return true;
}

/** GETs the release every `intervalMs` until the watch ends; an error that will not pass ends the watch. */
async function pollRelease(ctx: Ctx, path: string, intervalMs: number, w: Watcher): Promise<void> {
  while (!w.signal.aborted) {
    try {
      const r = await ctx.client.request<Release>('GET', path, { signal: w.signal });
      w.view.applyRelease(r.body);
      w.check();
    } catch (err) {
      if (w.signal.aborted) return;
      if (err instanceof CliError && !err.details.retryable) return w.fail(err);
      w.view.note(`refresh failed: ${(err as Error).message}`);
    }
    await sleep(intervalMs, w.signal);
  }
}
