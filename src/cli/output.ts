/** Human and machine output: aligned tables, colors only on a TTY (NO_COLOR respected), JSON. */

export interface Writer {
  write(s: string): void;
  isTTY: boolean;
}

const stdoutWriter: Writer = {
  write: (s) => void process.stdout.write(s),
  get isTTY() {
    return Boolean(process.stdout.isTTY);
  },
};

export function colorEnabled(w: Writer = stdoutWriter, env = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return w.isTTY && env.TERM !== 'dumb';
}

export type Paint = (s: string) => string;
export interface Palette {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
}

const sgr =
  (on: number, off: number): Paint =>
  (s) =>
    `\x1b[${on}m${s}\x1b[${off}m`;
const plain: Paint = (s) => s;

export function palette(enabled: boolean): Palette {
  if (!enabled) return { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return {
    bold: sgr(1, 22),
    dim: sgr(2, 22),
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    cyan: sgr(36, 39),
  };
}

export class Output {
  readonly color: boolean;
  readonly p: Palette;
  constructor(
    readonly json: boolean,
    readonly w: Writer = stdoutWriter,
  ) {
    this.color = !json && colorEnabled(w);
    this.p = palette(this.color);
  }
  get isTTY(): boolean {
    return this.w.isTTY;
  }
  line(s = ''): void {
    this.w.write(`${s}\n`);
  }
  /** pretty JSON for one answer */
  printJson(value: unknown): void {
    this.w.write(`${JSON.stringify(value, null, 2)}\n`);
  }
  /** one JSON object per line, for streams (watch, events --follow) */
  jsonLine(value: unknown): void {
    this.w.write(`${JSON.stringify(value)}\n`);
  }
  state(state: string): string {
    return paintState(this.p, state);
  }
}

export function paintState(p: Palette, state: string): string {
  switch (state) {
    case 'published':
    case 'staged':
    case 'ok':
      return p.green(state);
    case 'failed':
    case 'rejected':
    case 'down':
      return p.red(state);
    case 'canceled':
    case 'canceling':
      return p.yellow(state);
    default:
      return p.cyan(state);
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;
export const visibleWidth = (s: string) => Array.from(s.replace(ANSI, '')).length;
const pad = (s: string, width: number) => s + ' '.repeat(Math.max(0, width - visibleWidth(s)));

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** applied after the width is measured (colors) */
  paint?: (text: string, row: T) => string;
}

/** An aligned table: a header line and one line per row, columns two spaces apart. */
export function table<T>(rows: T[], columns: Column<T>[], p: Palette): string {
  const cells = rows.map((r) => columns.map((c) => c.value(r)));
  const widths = columns.map((c, i) =>
    Math.max(visibleWidth(c.header), ...cells.map((row) => visibleWidth(row[i]!))),
  );
  const last = columns.length - 1;
  const fmt = (vals: string[], paintFn?: (v: string, i: number) => string) =>
    vals
      .map((v, i) => {
        const painted = paintFn ? paintFn(v, i) : v;
        return i === last ? painted : painted + ' '.repeat(Math.max(0, widths[i]! - visibleWidth(v)));
      })
      .join('  ')
      .trimEnd();
  const lines = [fmt(columns.map((c) => c.header)).replace(/^(.*)$/, (h) => p.bold(h))];
  rows.forEach((row, r) => {
    lines.push(fmt(cells[r]!, (v, i) => columns[i]!.paint?.(v, row) ?? v));
  });
  return lines.join('\n');
}

/** `[#####---------------]  25%` (block characters on a TTY). */
export function progressBar(progress: number | null | undefined, width: number, fancy: boolean): string {
  const known = typeof progress === 'number' && Number.isFinite(progress);
  const pct = known ? Math.max(0, Math.min(100, Math.round(progress))) : 0;
  const filled = Math.round((pct / 100) * width);
  const [full, empty] = fancy ? ['█', '░'] : ['#', '-'];
  const bar = full.repeat(filled) + empty.repeat(width - filled);
  return `[${bar}] ${known ? `${String(pct).padStart(3)}%` : '   ?'}`;
}

export function keyValues(pairs: Array<[string, string]>, p: Palette): string {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${p.dim(pad(`${k}:`, width))} ${v}`).join('\n');
}

/** "2026-03-01 12:00:00Z" from an ISO time (kept short in tables). */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
