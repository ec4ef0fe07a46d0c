/**
 * Preloaded into the coordinator child (`bun --preload bench/lib/stats-preload.ts src/main.ts`).
 * Wraps the `postgres` driver so every statement the process sends is counted (postgres.js calls
 * `options.debug` once per executed query), grouped by a short normalised label. On SIGUSR2 the
 * counters, CPU time and memory are written as JSON to $BENCH_STATS_FILE. Nothing in src/ changes.
 */
import { readFileSync, writeFileSync } from 'node:fs';

type Counters = { total: number; byKind: Record<string, number>; seq: number };
const g = globalThis as unknown as { __benchStatements: Counters };
g.__benchStatements = { total: 0, byKind: {}, seq: 0 };

const labels = new Map<string, string>();
/** "update tasks", "select releases", "insert events", "begin", ... (cached per statement text) */
export function label(sql: string): string {
  let l = labels.get(sql);
  if (l === undefined) {
    l = computeLabel(sql);
    if (labels.size < 5_000) labels.set(sql, l);
  }
  return l;
}

function computeLabel(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim().toLowerCase();
  const verb = s.split(' ', 1)[0] ?? '?';
  let m: RegExpMatchArray | null = null;
  if (verb === 'with') m = s.match(/\)\s*(update|insert into|delete from|select .*? from)\s+"?([a-z_]+)"?/);
  else if (verb === 'select') m = s.match(/^(select) .*? from "?([a-z_]+)"?/);
  else if (verb === 'update') m = s.match(/^(update) "?([a-z_]+)"?/);
  else if (verb === 'insert') m = s.match(/^(insert into) "?([a-z_]+)"?/);
  else if (verb === 'delete') m = s.match(/^(delete from) "?([a-z_]+)"?/);
  if (!m) return s.slice(0, 40);
  const v = m[1]!.startsWith('select') ? 'select' : m[1]!.split(' ')[0]!;
  const lock = / for update skip locked/.test(s)
    ? ' (skip locked)'
    : / for update/.test(s)
      ? ' (for update)'
      : '';
  return `${verb === 'with' ? 'with…' : ''}${v} ${m[2]}${lock}`;
}

Bun.plugin({
  name: 'bench-count-statements',
  setup(build) {
    build.onLoad({ filter: /node_modules\/postgres\/src\/index\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8').replace(
        /^export default Postgres\s*$/m,
        `export default function BenchPostgres(a, b) {
  const count = (_id, sql) => {
    const c = globalThis.__benchStatements;
    c.total++;
    const k = globalThis.__benchLabel(sql);
    c.byKind[k] = (c.byKind[k] || 0) + 1;
  };
  if (typeof a === 'string') return Postgres(a, { ...(b || {}), debug: count });
  return Postgres({ ...(a || {}), debug: count });
}
Object.assign(BenchPostgres, Postgres);`,
      );
      return { contents: src, loader: 'js' };
    });
  },
});
(globalThis as unknown as { __benchLabel: typeof label }).__benchLabel = label;

const file = process.env.BENCH_STATS_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    const c = g.__benchStatements;
    c.seq++;
    const cpu = process.cpuUsage();
    writeFileSync(
      file,
      JSON.stringify({
        seq: c.seq,
        statements: c.total,
        byKind: c.byKind,
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        rss: process.memoryUsage().rss,
        maxRssKb: process.resourceUsage().maxRSS,
      }),
    );
  });
}
