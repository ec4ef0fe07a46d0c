#!/usr/bin/env bun
/**
 * A downstream system following releases as they are published.
 *
 *   NATS_URL=nats://127.0.0.1:4222 NATS_PREFIX=rc bun examples/subscriber.ts
 *
 * A durable pull consumer on the RC_EVENTS stream, filtered to `<prefix>.evt.release.*.published`:
 * stop it, restart it, and it carries on from where it was. Each notification is acked after it
 * was handled, and its id is remembered (SEEN_FILE), so a crash between the two never prints one twice.
 * Options (environment): SUBSCRIBER_NAME (durable name), SEEN_FILE, START=new|all (first run only).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

const prefix = process.env.NATS_PREFIX ?? 'rc';
const stream = `${prefix.toUpperCase()}_EVENTS`;
const durable = process.env.SUBSCRIBER_NAME ?? `${prefix}_example_subscriber`;
const seenFile = process.env.SEEN_FILE ?? './data/subscriber-seen.json';
const KEEP = 10_000;

const seen: string[] = existsSync(seenFile) ? (JSON.parse(readFileSync(seenFile, 'utf8')) as string[]) : [];
const seenSet = new Set(seen);
function remember(id: string) {
  seen.push(id);
  seenSet.add(id);
  if (seen.length > KEEP) seenSet.delete(seen.shift()!);
  mkdirSync(dirname(seenFile), { recursive: true });
  writeFileSync(`${seenFile}.tmp`, JSON.stringify(seen));
  renameSync(`${seenFile}.tmp`, seenFile);
}

const nc = await connect({
  servers: (process.env.NATS_URL ?? 'nats://127.0.0.1:4222').split(','),
  maxReconnectAttempts: -1,
});
const jsm = await jetstreamManager(nc);
try {
  await jsm.consumers.info(stream, durable);
} catch {
  await jsm.consumers.add(stream, {
    durable_name: durable,
    filter_subject: `${prefix}.evt.release.*.published`,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: process.env.START === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
  });
}
const consumer = await jetstream(nc).consumers.get(stream, durable);
console.log(`following ${prefix}.evt.release.*.published as ${durable}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => void nc.drain().then(() => process.exit(0)));

for await (const m of await consumer.consume()) {
  const n = m.json<{
    id: string;
    subject: string;
    data: { version: string; studies: string[]; name: string };
  }>();
  if (!seenSet.has(n.id)) {
    console.log(
      `published ${n.subject} version ${n.data.version} "${n.data.name}" studies ${n.data.studies.join(',')}`,
    );
    remember(n.id);
  }
  m.ack();
}
