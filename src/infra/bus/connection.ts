import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger';
import { sleep } from '../time';

const DEFAULT_URL = 'nats://127.0.0.1:4222';

export class NatsUnavailable extends Error {}

export interface BusConnection {
  nc: NatsConnection;
  /** the supervisor of the nats-server we started, if NATS_URL was unset and nothing answered */
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
  const options = {
    servers: serverList(opts.url ?? fallback),
    name: opts.name,
    // never give up: a cluster node (or the one server) that goes away is retried, and the others
    // of the list (plus those the cluster announces) are tried in turn, each wait 0.5–1.5 s so a
    // fleet of processes does not reconnect in step
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 1_000,
    // a server that stops answering without closing the connection (a machine lost, a partition)
    // is given up after two missed pings, 20 to 30 s, instead of nats.js's default of 4 minutes
    pingInterval: 10_000,
    maxPingOut: 2,
    timeout: 5_000,
    // Each request (every JetStream publish waits for its ack) would otherwise capture a stack trace
    // in advance: ~5 % of the coordinator's CPU (docs/performance.md). Errors still say what failed.
    noAsyncTraces: true,
  };
  try {
    const nc = await connect(options);
    watchStatus(nc, opts.log);
    opts.log.info({ server: nc.getServer(), servers: options.servers.map(redactUrl) }, 'NATS connected');
    return { nc, close: () => nc.drain() };
  } catch (err) {
    if (opts.url)
      throw new NatsUnavailable(
        `Cannot connect to NATS at ${redactServers(opts.url)} (NATS_URL): ${(err as Error).message}. Start that server or correct NATS_URL; without NATS_URL the coordinator uses 127.0.0.1:4222 and starts nats-server there when nothing answers.`,
      );
  }
  const port = Number(new URL(fallback).port || 4222);
  const embedded = startEmbeddedNats(
    opts.dataDir,
    port,
    opts.searchPath ?? `${process.env.PATH ?? ''}:/usr/sbin:/usr/local/sbin:/opt/homebrew/bin`,
    opts.log,
  );
  const nc = await waitForConnection(options, embedded, port);
  watchStatus(nc, opts.log);
  return {
    nc,
    embedded: embedded.child,
    async close() {
      await nc.drain().catch(() => {});
      await stopChild(embedded.child);
    },
  };
}

/**
 * Starts `nats-server -js` under a tiny `sh` supervisor that holds the read end of a pipe whose
 * write end only this process has (the supervisor's stdin). However this process ends (Ctrl-C, a
 * start-up error, the terminal closed, npm killed, `kill -9`), the kernel closes that pipe, the
 * supervisor's `read` returns at end of file, and it stops the server, so an embedded server never
 * outlives its coordinator and never keeps holding the port. Exit hooks and signal handlers cannot
 * promise that (`kill -9` runs no code), and PR_SET_PDEATHSIG is Linux-only and out of reach of
 * Bun, Deno and Node. The supervisor runs in its own process group (detached), so a Ctrl-C in the
 * terminal reaches only us and we stop the server after draining our connection.
 */
const SUPERVISOR = `
exec 3<&0
"$@" </dev/null 3<&- &
server=$!
(read -r _ <&3; kill -TERM "$server" 2>/dev/null) &
watcher=$!
exec 3<&-
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`;

export interface EmbeddedNats {
  child: ChildProcess;
  /** the server's last words on stderr (why it did not start) */
  output(): string;
}

function startEmbeddedNats(dataDir: string, port: number, searchPath: string, log: Logger): EmbeddedNats {
  const binary = which('nats-server', searchPath);
  if (!binary) throw new NatsUnavailable(missingServerHelp(port));
  const store = resolve(join(dataDir, 'nats'));
  mkdirSync(store, { recursive: true });
  log.info({ binary, store, port }, 'no NATS answering; starting embedded nats-server -js');
  const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', store];
  const child = spawn('sh', ['-c', SUPERVISOR, 'nats-server-supervisor', binary, ...args], {
    detached: true,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  // the server logs a few lines at start and little after; the tail says why it stopped
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-4_000);
  });
  child.stdin?.on('error', () => {}); // the supervisor is gone: nothing left to tell
  return { child, output: () => tail.trim() };
}

/** What to do when nothing answers and there is no nats-server to start. */
export function missingServerHelp(port: number): string {
  return (
    `No NATS server answers at 127.0.0.1:${port} and there is no nats-server to start one. ` +
    'Install it: on Debian/Ubuntu `sudo apt-get install nats-server` (it goes to /usr/sbin/nats-server, ' +
    'which is found even when /usr/sbin is not on your PATH); on macOS `brew install nats-server`. ' +
    'Or point NATS_URL at a running server, e.g. NATS_URL=nats://nats.example.org:4222 npm start.'
  );
}

async function waitForConnection(
  options: Parameters<typeof connect>[0],
  embedded: EmbeddedNats,
  port: number,
): Promise<NatsConnection> {
  const deadline = Date.now() + 10_000;
  let last: unknown;
  while (Date.now() < deadline) {
    const code = embedded.child.exitCode;
    if (code !== null) {
      const said = embedded.output();
      throw new NatsUnavailable(
        `The embedded nats-server stopped at start (exit code ${code}), perhaps because another program holds port ${port}` +
          ` or the store under DATA_DIR is not writable.${said ? ` It said: ${said.split('\n').slice(-3).join(' / ')}` : ''}` +
          ' Free the port, or set NATS_URL to a NATS server you run yourself.',
      );
    }
    try {
      return await connect({ ...options, timeout: 1_000 });
    } catch (err) {
      last = err;
      await sleep(100);
    }
  }
  await stopChild(embedded.child);
  throw new NatsUnavailable(
    `The embedded nats-server did not answer on 127.0.0.1:${port} within 10 s (${(last as Error)?.message}). Set NATS_URL to a NATS server you run yourself.`,
  );
}

/** NATS_URL's servers: one, or several separated by commas (a cluster). */
export function serverList(url: string): string[] {
  return url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A server URL fit for a log line: user, password or token removed. */
export function redactUrl(server: string): string {
  return server.replace(/^([a-z]+:\/\/)?[^@/]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

/** NATS_URL fit for a log line or an error message. */
export function redactServers(url: string): string {
  return serverList(url).map(redactUrl).join(',');
}

/**
 * One structured line per change of the connection: which server was lost, which one took over
 * and after how long. The reconnect attempts in between are at debug level (one per wait).
 */
async function watchStatus(nc: NatsConnection, log: Logger) {
  let lostAt: number | undefined;
  let attempts = 0;
  for await (const s of nc.status()) {
    switch (s.type) {
      case 'disconnect':
        lostAt ??= performance.now();
        attempts = 0;
        log.warn({ server: redactUrl(s.server) }, 'NATS disconnected; reconnecting');
        break;
      case 'reconnecting':
        attempts++;
        log.debug({ attempt: attempts }, 'NATS reconnecting');
        break;
      case 'reconnect':
        log.info(
          {
            server: redactUrl(s.server),
            afterMs: lostAt === undefined ? undefined : Math.round(performance.now() - lostAt),
            attempts,
          },
          'NATS reconnected',
        );
        lostAt = undefined;
        break;
      case 'staleConnection':
        log.warn('NATS server stopped answering pings; reconnecting');
        break;
      case 'ldm':
        log.info({ server: redactUrl(s.server) }, 'NATS server entering lame duck mode; moving to another');
        break;
      case 'update':
        if (s.added?.length || s.deleted?.length)
          log.info(
            { added: s.added?.map(redactUrl), removed: s.deleted?.map(redactUrl) },
            'NATS cluster servers changed',
          );
        break;
      case 'error':
        log.warn({ err: String(s.error) }, 'NATS error');
        break;
    }
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

/** Closes the supervisor's pipe (it stops the server and exits); kills the whole group if that takes too long. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  await Promise.race([exited, sleep(5_000)]);
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
