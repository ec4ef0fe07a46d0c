import { type Config, ConfigError, isLoopbackHost } from './config';
import { AuthConfigError } from './infra/auth';
import { NatsUnavailable } from './infra/bus/connection';

export interface StartFailure {
  /** one paragraph for a person: what went wrong and how to fix it (never a stack trace) */
  message: string;
  /** 2 for a configuration to correct, 1 for anything else */
  exitCode: 1 | 2;
}

const POSTGRES_UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'CONNECT_TIMEOUT',
]);
/** Postgres SQLSTATEs that mean "this DATABASE_URL does not lead to a usable database" */
const POSTGRES_REFUSED = new Set(['28P01', '28000', '3D000']);

/** Why the coordinator (or the demo) could not start, in words, with the fix. */
export function explainStartFailure(
  err: unknown,
  config: Pick<Config, 'PORT' | 'HOST' | 'DATABASE_URL'>,
  command = 'npm start',
): StartFailure {
  const e = (err ?? {}) as { message?: string; code?: string; syscall?: string };
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (err instanceof ConfigError || err instanceof AuthConfigError) return { message, exitCode: 2 };
  if (err instanceof NatsUnavailable) return { message, exitCode: 1 };
  if (e.code === 'EADDRINUSE' || /Is port \d+ in use/.test(message)) {
    const other = config.PORT === 3000 ? 3100 : config.PORT + 100;
    return {
      message:
        `Port ${config.PORT} on ${config.HOST} is already in use by another program (another coordinator or demo?). ` +
        `Stop that program, or choose another port with PORT, e.g. PORT=${other} ${command} ` +
        `(the API is then at http://localhost:${other}).`,
      exitCode: 1,
    };
  }
  if (e.code === 'EACCES' && (e.syscall === 'listen' || /listen|permission/i.test(message))) {
    return {
      message: `Not allowed to listen on port ${config.PORT} (ports below 1024 need privileges). Choose another with PORT, e.g. PORT=3000 ${command}.`,
      exitCode: 1,
    };
  }
  if (config.DATABASE_URL && e.code && (POSTGRES_UNREACHABLE.has(e.code) || POSTGRES_REFUSED.has(e.code))) {
    return {
      message:
        `Cannot use the Postgres database at ${safeLocation(config.DATABASE_URL)} (DATABASE_URL): ${message}. ` +
        'Start Postgres or correct DATABASE_URL; without DATABASE_URL the coordinator keeps its data in an embedded database under DATA_DIR.',
      exitCode: 1,
    };
  }
  return {
    message: `The coordinator could not start: ${message} (LOG_LEVEL=debug logs the details).`,
    exitCode: 1,
  };
}

/** host:port/database of a connection string, without the user name or password */
function safeLocation(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'the configured address';
  }
}

/**
 * Ctrl-C, SIGTERM and SIGHUP (the terminal was closed) stop the process once, cleanly, then exit 0;
 * `stopped` hears how long stopping took, for a last line that says so.
 */
export function stopOnSignals(
  stop: (signal: NodeJS.Signals) => Promise<void>,
  stopped: (signal: NodeJS.Signals, ms: number) => void,
): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, async () => {
      if (stopping) return;
      stopping = true;
      const started = performance.now();
      await stop(signal);
      stopped(signal, Math.round(performance.now() - started));
      process.exit(0);
    });
  }
}

/**
 * The loud warning for a gateway that other machines reach while no identity provider checks
 * tokens (AUTH_JWKS_URL unset), or undefined when the listen address is this machine only.
 */
export function exposureWarning(host: string, authMode: 'jwks' | 'local' | 'disabled'): string | undefined {
  if (authMode === 'jwks' || isLoopbackHost(host)) return undefined;
  const fix = 'Unset HOST to listen on 127.0.0.1 only, or set AUTH_JWKS_URL.';
  return authMode === 'disabled'
    ? `LISTENING ON ${host} WITH AUTH DISABLED: every caller that can reach this machine is ADMIN. ${fix}`
    : `LISTENING ON ${host} WITHOUT AN IDENTITY PROVIDER: other machines reach the API, and tokens are checked against the coordinator's own key (development tokens go to callers on this machine only). ${fix}`;
}
