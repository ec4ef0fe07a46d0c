import { createServer } from 'node:net';
import postgres from 'postgres';

/**
 * What tests and benchmarks both need to stand up a stack on this machine: a free port, a fresh
 * database, a bounded wait. Tests name their databases after the run (test/support/database.ts),
 * benchmarks after the case (bench/lib/infra.ts); both drop them when done.
 */

export const BASE_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A TCP port nothing listens on right now (loopback). */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** Creates the database `name` next to DATABASE_URL's; `drop` removes it, sessions and all. */
export async function createDatabase(name: string): Promise<ScratchDatabase> {
  const admin = postgres(BASE_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(BASE_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const a = postgres(BASE_DATABASE_URL, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}
