#!/usr/bin/env bun
/**
 * Where does a release's time go? Runs releases over N instant mock services (the overhead case's
 * stack, coordinator at LOG_LEVEL=debug) and prints, for each, a timeline in milliseconds since the
 * POST: every state change the coordinator committed (the events table) and every batch it applied,
 * with its size and phases (read, decide, write, commit, publish). A commit line is stamped with
 * its transaction's start (`now()` in Postgres), a batch line with the moment it finished.
 *
 *   npm run bench:timeline -- --services 50 --releases 2 [--topology split]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runRelease, startStack } from './lib/infra';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '10' },
    releases: { type: 'string', default: '2' },
    topology: { type: 'string', default: 'all' },
  },
});
const services = Number(values.services);
const releases = Number(values.releases);
if (!Number.isInteger(services) || services < 1 || services > 2_000) {
  console.error('timeline: --services must be an integer from 1 to 2000');
  process.exit(2);
}
if (!Number.isInteger(releases) || releases < 1 || releases > 20) {
  console.error('timeline: --releases must be an integer from 1 to 20');
  process.exit(2);
}
if (values.topology !== 'all' && values.topology !== 'split') {
  console.error('timeline: --topology must be "all" or "split"');
  process.exit(2);
}

const stack = await startStack({
  label: 'timeline',
  services,
  stageMs: 1,
  publishMs: 1,
  callback: 'after',
  topology: values.topology,
  env: { POLL_INTERVAL_MS: '1000', POLL_JITTER: '0.1', LOG_LEVEL: 'debug' },
});
try {
  // warm-up: JIT, connections, prepared statements
  for (let i = 0; i < 3; i++) await runRelease(stack);
  for (let i = 0; i < releases; i++) {
    const t0 = Date.now();
    const r = await runRelease(stack);
    const lines: Array<[number, string]> = [];
    const events = await stack.sql`select extract(epoch from created_at) * 1000 as t, message from events
      where release_id = ${r.id} order by created_at, seq`;
    // a 50-task fan-out commits 50 alike events at one instant: show the first of each instant
    const instants = new Set<string>();
    for (const e of events) {
      const at = Number(e.t) - t0;
      const key = `${at.toFixed(1)} ${String(e.message).replace(/TA_\w+/, 'TA_…')}`;
      if (instants.has(key)) continue;
      instants.add(key);
      lines.push([at, `commit   ${e.message}`]);
    }
    for (const log of [stack.coordinator.logFile, stack.app?.logFile]) {
      if (!log) continue;
      for (const line of readFileSync(log, 'utf8').split('\n')) {
        if (!line.includes('"batch applied"')) continue;
        const j = JSON.parse(line) as { time: number; size: number; ms: number; phases: object };
        if (j.time < t0) continue;
        lines.push([j.time - t0, `batch    ${j.size} messages in ${j.ms} ms ${JSON.stringify(j.phases)}`]);
      }
    }
    console.log(`\n${r.id}: ${services} services, POST → published in ${r.ms.toFixed(1)} ms`);
    for (const [at, text] of lines.sort((a, b) => a[0] - b[0]))
      console.log(`  +${at.toFixed(1).padStart(7)} ms  ${text}`);
  }
} finally {
  await stack.stop();
}
