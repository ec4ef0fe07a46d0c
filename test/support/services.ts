import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';

/**
 * Postgres and NATS for the tests: the ones DATABASE_URL and NATS_URL name (defaults on
 * 127.0.0.1), or, when neither is set and nothing answers there but a Docker engine does,
 * containers started by testcontainers. Otherwise one sentence says what is missing.
 */

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export interface ServiceFacts {
  /** DATABASE_URL / NATS_URL as set (undefined: not set, the default is used) */
  databaseUrl?: string;
  natsUrl?: string;
  postgresAnswers: boolean;
  natsAnswers: boolean;
  /** only asked when containers are an option (neither variable set, nothing answers) */
  dockerAnswers?: boolean;
}

export type ServicePlan =
  | { kind: 'ready' }
  | { kind: 'containers' }
  /** docker must be asked before deciding */
  | { kind: 'ask-docker' }
  | { kind: 'missing'; message: string };

/** What to do before any test runs (pure: every combination is unit-tested). */
export function planServices(f: ServiceFacts): ServicePlan {
  if (f.postgresAnswers && f.natsAnswers) return { kind: 'ready' };
  const nothingConfigured = f.databaseUrl === undefined && f.natsUrl === undefined;
  const nothingAnswers = !f.postgresAnswers && !f.natsAnswers;
  if (nothingConfigured && nothingAnswers) {
    if (f.dockerAnswers === undefined) return { kind: 'ask-docker' };
    if (f.dockerAnswers) return { kind: 'containers' };
  }
  const missing = [
    f.postgresAnswers
      ? undefined
      : `Postgres at ${where(f.databaseUrl ?? DEFAULT_DATABASE_URL)} (DATABASE_URL)`,
    f.natsAnswers ? undefined : `NATS with JetStream at ${where(f.natsUrl ?? DEFAULT_NATS_URL)} (NATS_URL)`,
  ].filter(Boolean);
  const containers =
    nothingConfigured && nothingAnswers
      ? ', or run a Docker engine so the tests start both in containers'
      : nothingConfigured
        ? ''
        : ', or unset DATABASE_URL and NATS_URL with a Docker engine running so the tests start both in containers';
  const one = missing.length === 1;
  const packages = [f.postgresAnswers ? '' : 'postgresql', f.natsAnswers ? '' : 'nats-server']
    .filter(Boolean)
    .join(' ');
  return {
    kind: 'missing',
    message:
      `The tests need ${missing.join(' and ')}, which ${one ? 'does' : 'do'} not answer: ` +
      `start ${one ? 'it' : 'them'} (Debian/Ubuntu: apt-get install ${packages}; macOS: brew install ${packages}${f.natsAnswers ? '' : '; run nats-server with -js'}), ` +
      `or point ${one ? 'the variable at one that runs' : 'the variables at ones that run'}${containers}.`,
  };
}

/** host:port of a connection string (the first of a comma-separated NATS list), without credentials */
export function where(url: string): string {
  try {
    const u = new URL(url.split(',')[0]!.trim());
    const port = u.port || (u.protocol.startsWith('postgres') ? '5432' : '4222');
    return `${u.hostname}:${port}`;
  } catch {
    return url;
  }
}

/** Whether something accepts a TCP connection at the URL's host and port within the deadline. */
export function answers(url: string, timeoutMs = 1_500): Promise<boolean> {
  const [host, port] = splitHostPort(where(url));
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function splitHostPort(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i).replace(/^\[|\]$/g, ''), Number(hostPort.slice(i + 1))];
}

/** A Docker engine answers (checked only when the tests would start containers). */
export async function dockerAnswers(timeoutMs = 5_000): Promise<boolean> {
  if (!process.env.DOCKER_HOST && !existsSync('/var/run/docker.sock')) return false;
  const { getContainerRuntimeClient } = await import('testcontainers');
  const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
  return Promise.race([
    getContainerRuntimeClient().then(
      () => true,
      () => false,
    ),
    timeout,
  ]);
}

export interface RunningContainers {
  databaseUrl: string;
  natsUrl: string;
  stop(): Promise<void>;
}

/** Postgres and NATS (JetStream, no auth: NATS_URL carries no credentials) in containers. */
export async function startContainers(): Promise<RunningContainers> {
  const [{ PostgreSqlContainer }, { GenericContainer, Wait }] = await Promise.all([
    import('@testcontainers/postgresql'),
    import('testcontainers'),
  ]);
  const [postgres, nats] = await Promise.all([
    new PostgreSqlContainer('postgres:17-alpine').start(),
    new GenericContainer('nats:2.10-alpine')
      .withCommand(['-js'])
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .start(),
  ]);
  return {
    databaseUrl: postgres.getConnectionUri(),
    natsUrl: `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`,
    async stop() {
      await Promise.all([postgres.stop(), nats.stop()]);
    },
  };
}

/** The browser the dashboard tests drive (Debian's chromium unless CHROMIUM_PATH says otherwise). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const MISSING_CHROMIUM =
  `There is no Chromium at ${CHROMIUM}, so the dashboard tests (test/ui-*.test.ts) will fail: ` +
  'install it (Debian/Ubuntu: apt-get install chromium; .ci/run does) or set CHROMIUM_PATH to a Chromium or Chrome binary.';
