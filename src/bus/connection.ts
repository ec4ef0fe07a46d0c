import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger';
import { sleep } from '../shared/time';

const DEFAULT_URL = 'nats://127.0.0.1:4222';

export class NatsUnavailable extends Error {}

export interface BusConnection {
  nc: NatsConnection;
  /** the child nats-server we started, if NATS_URL was unset and nothing answered */
  embedded?: ChildProcess;
  close(): Promise<void>;
}

/**
 * Connects to NATS_URL. With NATS_URL unset and nothing on 127.0.0.1:4222, starts
 * `nats-server -js` from PATH as a child process with its store under DATA_DIR/nats.
 */
export async function connectBus(opts: {
  url?: string;
  dataDir: string;
  log: Logger;
  name: string;
  /** where to look (and start a server) when url is unset; tests use a free port */
  defaultUrl?: string;
  /** PATH searched for nats-server; Debian installs it in /usr/sbin, often not on a user's PATH */
  searchPath?: string;
}): Promise<BusConnection> {
  const fallback = opts.defaultUrl ?? DEFAULT_URL;
  const servers = opts.url ?? fallback;
  const options = {
    servers: servers.split(','),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 5_000,
    // Each request (every JetStream publish waits for its ack) would otherwise capture a stack trace
    // in advance: ~5 % of the coordinator's CPU in the benchmark's profile. Errors still say what failed.
    noAsyncTraces: true,
  };
  try {
    const nc = await connect(options);
    watchStatus(nc, opts.log);
    return { nc, close: () => nc.drain() };
  } catch (err) {
    if (opts.url)
      throw new NatsUnavailable(`cannot connect to NATS at ${opts.url}: ${(err as Error).message}`);
  }
  const embedded = startEmbeddedNats(
    opts.dataDir,
    Number(new URL(fallback).port || 4222),
    opts.searchPath ?? `${process.env.PATH ?? ''}:/usr/sbin:/usr/local/sbin`,
    opts.log,
  );
  const nc = await waitForConnection(options, embedded);
  watchStatus(nc, opts.log);
  return {
    nc,
    embedded,
    async close() {
      await nc.drain().catch(() => {});
      await stopChild(embedded);
    },
  };
}

function startEmbeddedNats(dataDir: string, port: number, searchPath: string, log: Logger): ChildProcess {
  const binary = which('nats-server', searchPath);
  if (!binary) {
    throw new NatsUnavailable(
      `no NATS at 127.0.0.1:${port} and no nats-server on PATH: install it (Debian: apt-get install nats-server) or set NATS_URL`,
    );
  }
  const store = resolve(join(dataDir, 'nats'));
  mkdirSync(store, { recursive: true });
  log.info({ binary, store, port }, 'no NATS answering; starting embedded nats-server -js');
  return spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store], { stdio: 'ignore' });
}

async function waitForConnection(
  options: Parameters<typeof connect>[0],
  child: ChildProcess,
): Promise<NatsConnection> {
  const deadline = Date.now() + 10_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new NatsUnavailable(`embedded nats-server exited with code ${child.exitCode}`);
    try {
      return await connect({ ...options, timeout: 1_000 });
    } catch (err) {
      last = err;
      await sleep(100);
    }
  }
  child.kill();
  throw new NatsUnavailable(`embedded nats-server did not answer within 10 s: ${(last as Error)?.message}`);
}

async function watchStatus(nc: NatsConnection, log: Logger) {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect') log.warn({ server: s.server }, 'NATS disconnected');
    else if (s.type === 'reconnect') log.info({ server: s.server }, 'NATS reconnected');
    else if (s.type === 'error') log.warn({ err: String(s.error) }, 'NATS error');
  }
}

/** PATH lookup without runtime-specific APIs (the bus also runs under Deno and Node). */
function which(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(':')) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5_000)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
