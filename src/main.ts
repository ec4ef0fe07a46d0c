#!/usr/bin/env bun
import { AuthConfigError, authConfigProblem } from './auth';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { startSystem } from './system';

/** Entry point: reads the environment, starts the roles asked for (ROLE, default all), stops on SIGTERM/SIGINT. */
let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
  const problem = authConfigProblem(config);
  if (problem) throw new ConfigError(problem);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
const log = await createLogger({
  level: config.LOG_LEVEL,
  format: config.LOG_FORMAT,
  production: config.NODE_ENV === 'production',
  name: 'release-coordinator',
});
let system: Awaited<ReturnType<typeof startSystem>>;
try {
  system = await startSystem(config, log);
} catch (err) {
  if (err instanceof AuthConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  log.fatal({ err: String(err) }, 'could not start');
  console.error(`release-coordinator: ${(err as Error).message}`);
  process.exit(1);
}
log.info(
  {
    role: config.ROLE,
    database: system.database.kind,
    nats: config.NATS_URL ?? 'nats://127.0.0.1:4222',
    prefix: config.NATS_PREFIX,
  },
  'release coordinator ready',
);
if (system.auth.mode === 'local' && system.auth.mint && config.NODE_ENV === 'development' && system.server) {
  // demo mode: no identity provider, so the coordinator verifies tokens signed with its own key
  const token = await system.auth.mint({ username: 'local-admin', roles: ['ADMIN'], ttl: '12h' });
  // the structured log never carries a token: the demo token goes to the terminal only
  log.warn("no AUTH_JWKS_URL: tokens are checked against the coordinator's own key (development only)");
  if (process.stderr.isTTY) {
    console.error(
      `\nADMIN token (12 h, development only):\n  export TOKEN=${token}\n  curl -H "Authorization: Bearer $TOKEN" ${config.PUBLIC_URL}/releases\n`,
    );
  } else {
    log.warn('run on a terminal to get a development ADMIN token printed, or use `npm run demo`');
  }
}
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    await system.stop().catch((err) => log.error({ err: String(err) }, 'error during shutdown'));
    process.exit(0);
  });
}
