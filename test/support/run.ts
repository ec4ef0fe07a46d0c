import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import postgres from 'postgres';

/**
 * One id per `bun test` run (test/preload.ts sets RC_TEST_RUN), part of every NATS prefix and
 * database name the tests make, so the check at the end of the run finds what this run left
 * behind, and runs at the same time on one machine (several checkouts, CI) never see each
 * other's. It starts with `r`, which no hex digit is, so it cannot appear inside another name's
 * random part.
 */
process.env.RC_TEST_RUN ??= newRunId();
export const RUN_ID = process.env.RC_TEST_RUN;

export function newRunId(): string {
  return `r${crypto.randomUUID().replace(/-/g, '').slice(0, 5)}`;
}

const random = () => crypto.randomUUID().replace(/-/g, '').slice(0, 8);

/** A NATS prefix of this run: `kind` says who made it (t: test system, p: cluster, ...). */
export function testPrefix(kind: string): string {
  return `${kind}${RUN_ID}${random()}`;
}

/** Every test database of this run starts with this. */
export const DATABASE_PREFIX = `rc_test_${RUN_ID}_`;

export function testDatabaseName(label: string): string {
  return `${DATABASE_PREFIX}${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${random()}`;
}

/**
 * What this run left on the servers: streams (a KV bucket is a stream `KV_<bucket>`, and a
 * stream's consumers go with it), consumers of this run on any other stream, and databases.
 * Each is removed once found, so a failed check does not leave it for the next run.
 */
export async function removeLeftovers(natsUrl: string, databaseUrl: string): Promise<string[]> {
  const mark = RUN_ID.toUpperCase();
  const ours = (name: string) => name.toUpperCase().includes(mark);
  const found: string[] = [];
  const nc = await connect({ servers: natsUrl.split(','), timeout: 5_000 });
  try {
    const jsm = await jetstreamManager(nc);
    for await (const stream of jsm.streams.list()) {
      const name = stream.config.name;
      if (ours(name)) {
        found.push(`NATS stream ${name}`);
        await jsm.streams.delete(name).catch(() => {});
        continue;
      }
      try {
        for await (const consumer of jsm.consumers.list(name)) {
          if (!ours(consumer.name)) continue;
          found.push(`NATS consumer ${consumer.name} on ${name}`);
          await jsm.consumers.delete(name, consumer.name).catch(() => {});
        }
      } catch {
        // removed meanwhile (another run's)
      }
    }
  } finally {
    await nc.close();
  }
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`
      select datname from pg_database where starts_with(datname, ${DATABASE_PREFIX}) order by datname`;
    for (const r of rows) {
      found.push(`database ${r.datname}`);
      await sql.unsafe(`drop database if exists "${r.datname}" with (force)`);
    }
  } finally {
    await sql.end();
  }
  return found;
}
