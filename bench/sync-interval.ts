#!/usr/bin/env bun
/**
 * What writing every JetStream message to disk before acknowledging it costs (docs/architecture.md,
 * "JetStream and the disk"). For each NATS set-up, default flushing and every write synchronous:
 *
 * - raw: 1,000 publishes of 512 bytes to a file stream, one at a time (ack latency) and 64 at a
 *   time (acks/s);
 * - releases: the coordinator (all roles, one process) against instant mock services: one release
 *   over 10 services from POST to published (median of 5 after a warm-up), and 50 such releases at
 *   once (task transitions/s, bench case 2's workload at a quarter of its size).
 *
 *   bun bench/sync-interval.ts [--only single|cluster] [--releases 50]
 *
 * Prints a table and writes bench/results/<date>-sync.json. Figures are never asserted.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { throughput } from './lib/cases';
import { median, percentile, ROOT, round, runRelease, startStack } from './lib/infra';
import { type NatsServers, startNats } from './lib/nats';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    releases: { type: 'string', default: '50' },
  },
});
const releases = Number(values.releases);
if (!Number.isInteger(releases) || releases < 1 || releases > 500) {
  console.error('sync-interval: --releases must be an integer from 1 to 500');
  process.exit(2);
}

interface Mode {
  name: string;
  nodes: 1 | 3;
  syncEveryWrite: boolean;
}
const modes: Mode[] = [
  { name: 'single server, default flushing', nodes: 1, syncEveryWrite: false },
  { name: 'single server, every write synced', nodes: 1, syncEveryWrite: true },
  { name: '3-node cluster R3, default flushing', nodes: 3, syncEveryWrite: false },
  { name: '3-node cluster R3, every write synced', nodes: 3, syncEveryWrite: true },
].filter((m) => !values.only || (values.only === 'single') === (m.nodes === 1)) as Mode[];

async function raw(nats: NatsServers) {
  const nc = await connect({ servers: nats.url.split(',') });
  try {
    const jsm = await jetstreamManager(nc);
    const name = `SYNCBENCH${crypto.randomUUID().replace(/-/g, '').slice(0, 6)}`;
    await jsm.streams.add({
      name,
      subjects: [`${name}.>`],
      storage: StorageType.File,
      num_replicas: nats.nodes,
    });
    const js = jetstream(nc);
    const payload = new Uint8Array(512).fill(120);
    for (let i = 0; i < 50; i++) await js.publish(`${name}.warm`, payload); // leader elected, files open
    const one: number[] = [];
    for (let i = 0; i < 1_000; i++) {
      const t0 = performance.now();
      await js.publish(`${name}.one`, payload);
      one.push(performance.now() - t0);
    }
    const t0 = performance.now();
    let sent = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (sent < 1_000) {
          sent++;
          await js.publish(`${name}.many`, payload);
        }
      }),
    );
    const windowMs = performance.now() - t0;
    await jsm.streams.delete(name);
    return {
      ackP50Ms: round(median(one), 2),
      ackP99Ms: round(percentile(one, 99), 2),
      sequentialPerSecond: round(1_000 / (one.reduce((a, b) => a + b, 0) / 1_000), 0),
      window64PerSecond: round(1_000 / (windowMs / 1_000), 0),
    };
  } finally {
    await nc.close();
  }
}

async function coordinator(nats: NatsServers) {
  const stack = await startStack({
    label: `sync${nats.nodes}`,
    services: 10,
    stageMs: 1,
    publishMs: 1,
    callback: 'after',
    env: { NATS_URL: nats.url, NATS_REPLICAS: String(nats.nodes) },
  });
  try {
    await runRelease(stack); // warm-up
    const one: number[] = [];
    for (let i = 0; i < 5; i++) one.push((await runRelease(stack)).ms);
    const t = await throughput(stack, releases, 120);
    return {
      releaseN10MedianMs: round(median(one), 1),
      throughputReleases: releases,
      throughputMs: t.ms,
      transitionsPerSecond: t.transitionsPerSecond,
    };
  } finally {
    await stack.stop();
  }
}

const results: Array<Record<string, unknown>> = [];
for (const mode of modes) {
  const nats = await startNats(mode);
  try {
    const r = { mode: mode.name, ...(await raw(nats)), ...(await coordinator(nats)) };
    results.push(r);
    console.log(JSON.stringify(r));
  } finally {
    await nats.close();
  }
}

console.log();
console.log(
  '| NATS | ack p50 / p99 (one at a time) | acks/s, 64 at a time | release × 10 services, POST → published | 50 × 10 at once: transitions/s |',
);
console.log('| --- | --- | --- | --- | --- |');
for (const r of results) {
  console.log(
    `| ${r.mode} | ${r.ackP50Ms} / ${r.ackP99Ms} ms | ${r.window64PerSecond} | ${r.releaseN10MedianMs} ms | ${r.transitionsPerSecond} |`,
  );
}
const dir = join(ROOT, 'bench/results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().slice(0, 10)}-sync.json`);
writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), releases, results }, null, 2)}\n`);
console.log(`\nwritten: ${file}`);
