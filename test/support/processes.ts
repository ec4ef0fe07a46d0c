import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { type Subprocess, spawn } from 'bun';
import { deleteStreams } from '../../src/infra/bus/streams';
import { busNames } from '../../src/infra/bus/subjects';
import { createTestDatabase } from './database';
import { freePort } from './harness';
import { testPrefix } from './run';
import { NATS_URL } from './system';
import { localSigningKey } from './tokens';
import { until } from './until';

const ROOT = resolve(import.meta.dir, '../..');
const BUN = join(ROOT, 'node_modules/.bin/bun');
export const ARTIFACTS = join(ROOT, 'test/artifacts');
// logs of child processes go here; the folder is git-ignored, so a fresh clone lacks it
mkdirSync(ARTIFACTS, { recursive: true });

/** Collects a child's stdout and stderr as they come, so a test can wait for a line with a deadline. */
export function collectOutput(proc: {
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
}) {
  const out = { stdout: '', stderr: '' };
  const pump = async (stream: ReadableStream<Uint8Array>, key: 'stdout' | 'stderr') => {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      out[key] += decoder.decode(value, { stream: true });
    }
  };
  /** resolves when both streams have ended */
  const ended = Promise.all([pump(proc.stdout, 'stdout'), pump(proc.stderr, 'stderr')]);
  return { out, ended };
}

export type Role = 'gateway' | 'coordinator' | 'worker' | 'all' | 'gateway,worker';

/**
 * The coordinator's roles as real child processes (`bun src/main.ts`, via test/support/main-with-faults.ts) on one database and one
 * NATS prefix, so tests can kill -9 and restart them. Output goes to test/artifacts/<label>-<role>.log.
 */
export class Cluster {
  readonly procs = new Map<string, Subprocess>();
  private readonly starts = new Map<string, number>();
  /** the log file of the latest start of each process name */
  readonly logs = new Map<string, string>();
  private constructor(
    readonly label: string,
    readonly env: Record<string, string>,
    readonly gatewayUrl: string,
    private readonly dropDatabase: () => Promise<void>,
    /** an ADMIN token the cluster accepts */
    readonly adminToken: string,
  ) {}

  static async create(label: string, env: Record<string, string> = {}): Promise<Cluster> {
    const db = await createTestDatabase(label);
    const port = await freePort();
    const prefix = testPrefix('p');
    mkdirSync(ARTIFACTS, { recursive: true });
    const key = await localSigningKey();
    const full = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      DATABASE_URL: db.url,
      NATS_URL,
      NATS_PREFIX: prefix,
      PORT: String(port),
      HOST: '127.0.0.1',
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ALLOW_PRIVATE_SERVICE_URLS: 'true',
      SHUTDOWN_GRACE_MS: '2000',
      SIGNING_KEY: key.signingKey,
      POLL_INTERVAL_MS: '50',
      SCHEDULER_TICK_MS: '25',
      REQUEST_TIMEOUT_MS: '3000',
      // the outage tolerance (3 × 1 s): how long polls and cancels ride out a service that is away
      HEALTH_INTERVAL_MS: '1000',
      COMMAND_ACK_WAIT_MS: '1500',
      COORDINATOR_ACK_WAIT_MS: '1500',
      ...env,
    };
    const adminToken = await key.mint({ username: 'test-admin', roles: ['ADMIN'] });
    return new Cluster(label, full, `http://127.0.0.1:${port}`, db.drop, adminToken);
  }

  /** Starts one role as `name` (default: the role) and waits until it is up. */
  async start(role: Role, name: string = role, env: Record<string, string> = {}): Promise<Subprocess> {
    const servesGateway = role === 'all' || role.split(',').includes('gateway');
    const n = (this.starts.get(name) ?? 0) + 1;
    this.starts.set(name, n);
    const logFile = join(ARTIFACTS, `${this.label}-${name}${n > 1 ? `-${n}` : ''}.log`);
    this.logs.set(name, logFile);
    // the product's entry point, with the fault points tests arm through the environment
    const proc = spawn([BUN, 'test/support/main-with-faults.ts'], {
      cwd: ROOT,
      // only the gateway takes the cluster's port; other roles serve /status and /metrics on a free one
      env: {
        ...this.env,
        ROLE: role,
        ...(servesGateway ? {} : { PORT: '0' }),
        ...env,
      },
      stdout: Bun.file(logFile),
      stderr: Bun.file(`${logFile}.err`),
    });
    this.procs.set(name, proc);
    if (servesGateway) {
      // a second gateway is given a PORT of its own
      const url = env.PORT ? `http://127.0.0.1:${env.PORT}` : this.gatewayUrl;
      await until(async () => (await fetch(`${url}/status`).catch(() => undefined))?.status === 200, {
        timeoutMs: 20_000,
        message: `${name} to answer /status`,
      });
    } else {
      await until(
        async () =>
          (
            await Bun.file(logFile)
              .text()
              .catch(() => '')
          ).includes('release coordinator ready'),
        {
          timeoutMs: 20_000,
          message: `${name} to be ready (see ${logFile})`,
        },
      );
    }
    return proc;
  }

  /** kill -9, and wait until the process is gone. */
  async kill(name: string) {
    const proc = this.procs.get(name);
    if (!proc) return;
    proc.kill('SIGKILL');
    await proc.exited;
    this.procs.delete(name);
  }

  async stop() {
    for (const [name, proc] of this.procs) {
      proc.kill('SIGTERM');
      await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
      this.procs.delete(name);
    }
    // the streams are on the server(s) the processes used (a private server or cluster, if given)
    const nc = await connect({ servers: (this.env.NATS_URL ?? NATS_URL).split(','), timeout: 5_000 }).catch(
      () => undefined,
    );
    if (nc) {
      await deleteStreams(nc, busNames(this.env.NATS_PREFIX!));
      await nc.close();
    }
    await this.dropDatabase();
  }
}

export { freePort };
