import { connect } from '@nats-io/transport-node';
import { loadConfig } from '../../src/config';
import { deleteStreams } from '../../src/infra/bus/streams';
import { busNames } from '../../src/infra/bus/subjects';
import { createLogger, type Logger } from '../../src/infra/logger';
import { type System, type SystemOptions, startSystem } from '../../src/system';
import { createTestDatabase } from './database';
import { testPrefix } from './run';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

export interface TestSystem {
  system: System;
  url: string;
  prefix: string;
  databaseUrl: string;
  /** requests as an ADMIN */
  api: Api;
  /** requests without a token */
  anonymous: Api;
  adminToken: string;
  mint: NonNullable<System['auth']['mint']>;
  stop(): Promise<void>;
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}
export type Api = <T = any>(
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<ApiResponse<T>>;

/** A whole coordinator (gateway, coordinator, worker) on its own database and NATS prefix. */
export async function startTestSystem(
  label: string,
  env: Record<string, string> = {},
  opts: SystemOptions = {},
  /** where the system logs (tests that read its log lines); a silent JSON logger by default */
  logger?: Logger,
): Promise<TestSystem> {
  const database = await createTestDatabase(label);
  const prefix = testPrefix('t');
  const port = 0;
  // a configuration refused at start (or a system that does not start) leaves nothing behind
  const undo = async (err: unknown): Promise<never> => {
    await database.drop();
    throw err;
  };
  const config = await loadConfigAsync({
    NODE_ENV: 'test',
    DATABASE_URL: database.url,
    NATS_URL,
    NATS_PREFIX: prefix,
    PORT: String(port),
    HOST: '127.0.0.1',
    POLL_INTERVAL_MS: '20',
    SCHEDULER_TICK_MS: '10',
    REQUEST_TIMEOUT_MS: '2000',
    // the outage tolerance (3 × 1 s): how long polls and cancels ride out a service that is away
    HEALTH_INTERVAL_MS: '1000',
    ALLOW_PRIVATE_SERVICE_URLS: 'true',
    SHUTDOWN_GRACE_MS: '500',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    ...env,
  }).catch(undo);
  const log = logger ?? (await createLogger({ level: config.LOG_LEVEL, format: 'json', production: false }));
  const system = await startSystem(config, log, opts).catch(undo);
  const url = system.server?.url ?? '';
  // every request of `api` is an ADMIN's unless a test passes its own Authorization header
  // (with AUTH_JWKS_URL there is no local key: tests then mint tokens with their own keys)
  const adminToken = system.auth.mint
    ? await system.auth.mint({ username: 'test-admin', roles: ['ADMIN'] })
    : '';
  const api = makeApi(url, adminToken);
  return {
    system,
    url,
    prefix,
    databaseUrl: database.url,
    api,
    anonymous: makeApi(url),
    adminToken,
    mint:
      system.auth.mint ??
      (() => {
        throw new Error('this system verifies tokens with AUTH_JWKS_URL: mint with the test keys');
      }),
    async stop() {
      await system.stop();
      const nc = await connect({ servers: config.NATS_URL ?? NATS_URL }).catch(() => undefined);
      if (nc) {
        await deleteStreams(nc, busNames(prefix));
        await nc.close();
      }
      await database.drop();
    },
  };
}

const loadConfigAsync = async (env: Record<string, string>) => loadConfig(env);

export function makeApi(base: string, token?: string): Api {
  return async (method, path, body, extra = {}) => {
    const headers: Record<string, string> = token
      ? { authorization: `Bearer ${token}`, ...extra }
      : { ...extra };
    if (headers.authorization === '') delete headers.authorization;
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON; keep the text
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
}
