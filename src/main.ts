#!/usr/bin/env bun
import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { startSystem } from './system';

/** Entry point: reads the environment, starts the roles asked for (ROLE, default all), stops on SIGTERM/SIGINT. */
let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
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
