#!/usr/bin/env bun
/**
 * `npm test`: every test file, in a few `bun test` processes at once. Most tests wait (on polls,
 * deadlines, restarts of child processes) rather than compute, so on two cores three processes
 * take about a third of the time one does. Each process is its own test run (test/preload.ts:
 * its own run id, its own end-of-run check that nothing was left behind).
 *
 * Files are spread by how long they took last time (test/artifacts/durations.json, written at the
 * end; in a fresh clone test/durations.json, a CI run's times), else by a rough guess from their
 * name. Each process's output is printed whole when it ends, then one summary in bun's own words
 * (` N pass`, ` N fail`), which .ci/run reads.
 *
 * `npm test -- <files or filters>` runs just those, in one process, as `bun test` would.
 * RC_TEST_SHARDS sets the number of processes (default 3).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dir, '..');
const BUN = process.execPath;
const TIMEOUT = ['--timeout', '60000'];
const DURATIONS = join(ROOT, 'test/artifacts/durations.json');
/** per-file times of a CI run, committed so that a fresh clone spreads its files evenly too */
const SEED_DURATIONS = join(ROOT, 'test/durations.json');

const args = process.argv.slice(2);
if (args.length > 0) {
  const proc = Bun.spawn([BUN, 'test', ...TIMEOUT, ...args], {
    cwd: ROOT,
    stdio: ['inherit', 'inherit', 'inherit'],
  });
  process.exit(await proc.exited);
}

const files = [
  ...new Bun.Glob('{src,test,mock-task-service}/**/*.test.{ts,tsx}').scanSync({ cwd: ROOT }),
].sort();
const shards = Math.max(1, Number(process.env.RC_TEST_SHARDS ?? 3));
const known = readDurations();
const groups = spread(files, shards, (f) => known[f] ?? guess(f));
const started = performance.now();

console.log(`npm test: ${files.length} files in ${groups.length} processes at once`);
const results = await Promise.all(groups.map((group, i) => runGroup(i, group)));
const totals = { pass: 0, fail: 0, skip: 0 };
const durations: Record<string, number> = { ...known };
// One report, written in order: a process's output written with process.stdout.write could reach
// the pipe after the totals printed with console.log, and whoever reads the last " N pass" line
// (.ci/run) then read one process's count instead of the total.
const report: string[] = [];
for (const r of results) {
  report.push(
    `\n== process ${r.index + 1}/${groups.length} (${r.files.length} files, ${r.seconds} s)\n`,
    r.output,
  );
  for (const key of ['pass', 'fail', 'skip'] as const) totals[key] += r.counts[key];
  Object.assign(durations, r.durations);
}
writeDurations(durations);
const failed = results.filter((r) => r.code !== 0);
report.push(
  `\nnpm test: ${Math.round((performance.now() - started) / 1000)} s in ${groups.length} processes\n`,
);
for (const r of failed) report.push(`process ${r.index + 1} exited with ${r.code}\n`);
// bun's own summary words, for whoever reads them (.ci/run does)
report.push(` ${totals.pass} pass\n`);
if (totals.skip > 0) report.push(` ${totals.skip} skip\n`);
report.push(` ${totals.fail} fail\n`);
await Bun.write(Bun.stdout, report.join(''));
process.exit(failed.length > 0 || totals.fail > 0 ? 1 : 0);

interface GroupResult {
  index: number;
  files: string[];
  code: number;
  seconds: number;
  output: string;
  counts: { pass: number; fail: number; skip: number };
  durations: Record<string, number>;
}

async function runGroup(index: number, group: string[]): Promise<GroupResult> {
  const t0 = performance.now();
  const proc = Bun.spawn([BUN, 'test', ...TIMEOUT, ...group.map((f) => `./${f}`)], {
    cwd: ROOT,
    stdout: 'pipe',
    stderr: 'pipe',
    env: process.env,
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  // bun writes test results to stderr and console output to stdout: keep both, results last
  const output = `${out}${err}`;
  const count = (word: string) =>
    Number(/^\s*(\d+) (?:pass|fail|skip)$/m.exec(lastMatch(err, word))?.[1] ?? 0);
  return {
    index,
    files: group,
    code,
    seconds: Math.round((performance.now() - t0) / 1000),
    output,
    counts: { pass: count('pass'), fail: count('fail'), skip: count('skip') },
    durations: fileDurations(err),
  };
}

/** The last summary line of bun's output for one word (` 12 pass`). */
function lastMatch(text: string, word: string): string {
  const lines = text.split('\n').filter((l) => new RegExp(`^\\s*\\d+ ${word}$`).test(l));
  return lines.at(-1) ?? '';
}

/** Milliseconds each file's tests took, from bun's per-test `[12.34ms]` marks under each file header. */
function fileDurations(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  let file: string | undefined;
  for (const line of text.split('\n')) {
    const header = /^(\S+\.test\.tsx?):$/.exec(line.trim());
    if (header) {
      file = header[1]!.replace(/^\.\//, '');
      continue;
    }
    const mark = /^\((?:pass|fail)\).*\[(\d+(?:\.\d+)?)(ms|s)\]\s*$/.exec(line);
    if (mark && file) out[file] = (out[file] ?? 0) + Number(mark[1]) * (mark[2] === 's' ? 1000 : 1);
  }
  return out;
}

/** Longest first, each to the least loaded process. */
function spread(all: string[], n: number, weight: (f: string) => number): string[][] {
  const groups = Array.from({ length: Math.min(n, all.length) }, () => ({ files: [] as string[], load: 0 }));
  for (const f of [...all].sort((a, b) => weight(b) - weight(a))) {
    const g = groups.reduce((min, x) => (x.load < min.load ? x : min));
    g.files.push(f);
    g.load += weight(f);
  }
  return groups.map((g) => g.files.sort()).filter((g) => g.length > 0);
}

/** A first guess of a file's time (ms) when no earlier run measured it. */
function guess(file: string): number {
  if (/faults-|abuse-fuzz/.test(file)) return 35_000;
  if (/crash|restarts|graceful|fly|embedded|ui-|deno/.test(file)) return 12_000;
  if (file.startsWith('test/')) return 4_000;
  return 500;
}

/** This machine's last run over the committed measurements of a CI run (test/durations.json). */
function readDurations(): Record<string, number> {
  const read = (path: string) => {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;
    } catch {
      return {};
    }
  };
  return { ...read(SEED_DURATIONS), ...read(DURATIONS) };
}

function writeDurations(d: Record<string, number>) {
  mkdirSync(join(ROOT, 'test/artifacts'), { recursive: true });
  writeFileSync(DURATIONS, `${JSON.stringify(d, null, 2)}\n`);
}
