import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { Logger } from '../logger';
import { PostgresGuard } from './guard';
import * as schema from './schema';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Database {
  db: Db;
  kind: 'postgres' | 'pglite';
  /** runs drizzle migrations once, serialised across processes */
  migrate(): Promise<void>;
  /** reachability for /status (Postgres: a connection of its own, within a second) */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

// portable across Bun, Deno and Node (import.meta.dir is Bun-only)
const MIGRATIONS = fileURLToPath(new URL('../../../drizzle', import.meta.url));
const MIGRATION_LOCK = 72_610_001;

export async function openDatabase(opts: {
  url?: string;
  dataDir: string;
  poolSize?: number;
  /** where the Postgres guard says that Postgres went away and came back */
  log?: Logger;
}): Promise<Database> {
  return opts.url
    ? openPostgres(opts.url, opts.poolSize ?? 10, opts.log)
    : openPglite(join(opts.dataDir, 'pg'));
}

async function openPostgres(url: string, max: number, log?: Logger): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  const { migrate } = await import('drizzle-orm/postgres-js/migrator');
  const options = {
    onnotice: () => {},
    connect_timeout: 10,
    connection: { application_name: 'release-coordinator' },
  };
  const guard = new PostgresGuard(
    () => {
      const pool = postgres(url, {
        ...options,
        // at least 2: migrate() holds one connection for its lock while migrating on another
        max: Math.max(2, max),
        idle_timeout: 60,
      });
      // drizzle sets its type parsers on the client it is given; a replacement pool needs them too
      drizzle(pool);
      return pool;
    },
    () => postgres(url, { ...options, max: 1, fetch_types: false }),
    log,
  );
  const db = drizzle(guard.client, { schema }) as unknown as Db;
  return {
    db,
    kind: 'postgres',
    async migrate() {
      const client = guard.current;
      const lockConn = await client.reserve();
      try {
        await lockConn`select pg_advisory_lock(${MIGRATION_LOCK})`;
        await migrate(drizzle(client, { schema }), { migrationsFolder: MIGRATIONS });
      } finally {
        await lockConn`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {});
        lockConn.release();
      }
    },
    ping: () => guard.ping(),
    close: () => guard.close(),
  };
}

async function openPglite(dir: string): Promise<Database> {
  mkdirSync(dir, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  const client = new PGlite(dir);
  await client.waitReady;
  const db = drizzle(client, { schema });
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    migrate: () => migrate(db, { migrationsFolder: MIGRATIONS }),
    async ping() {
      return !client.closed;
    },
    close: () => client.close(),
  };
}
