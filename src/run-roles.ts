import { ConfigError, loadConfig } from './config';
import { authConfigProblem } from './infra/auth';
import { redactServers } from './infra/bus/connection';
import { createLogger } from './infra/logger';
import { explainStartFailure, exposureWarning, stopOnSignals } from './startup';
import { type SystemOptions, startSystem } from './system';

/**
 * What `bun src/main.ts` does: reads the environment, starts the roles asked for (ROLE, default
 * all), stops on SIGTERM/SIGINT. `options` are for embedders (the test harness arms fault points).
 */
export async function runRoles(options: SystemOptions = {}): Promise<void> {
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
    system = await startSystem(config, log, options);
  } catch (err) {
    // one paragraph with the fix for a person; the stack only at debug level
    const failure = explainStartFailure(err, config);
    log.debug({ err }, 'start failed');
    log.fatal({ problem: failure.message }, 'could not start');
    console.error(failure.message);
    process.exit(failure.exitCode);
  }
  log.info(
    {
      role: config.ROLE,
      database: system.database.kind,
      nats: redactServers(config.NATS_URL ?? 'nats://127.0.0.1:4222'),
      replicas: config.NATS_REPLICAS,
      prefix: config.NATS_PREFIX,
    },
    'release coordinator ready',
  );
  const exposure = system.server ? exposureWarning(config.HOST, system.auth.mode) : undefined;
  if (exposure) log.warn({ host: config.HOST }, exposure);
  if (
    system.auth.mode === 'local' &&
    system.auth.mint &&
    config.NODE_ENV === 'development' &&
    system.server
  ) {
    // demo mode: no identity provider, so the coordinator verifies tokens signed with its own key
    log.warn("no AUTH_JWKS_URL: tokens are checked against the coordinator's own key (development only)");
    // the structured log never carries a token: the demo token goes to the terminal only
    if (process.stderr.isTTY) {
      const token = await system.auth.mint({ username: 'local-admin', roles: ['ADMIN'], ttl: '12h' });
      console.error(
        `\nADMIN token (12 h, development only):\n  export TOKEN=${token}\n  curl -H "Authorization: Bearer $TOKEN" ${system.config.PUBLIC_URL}/releases\n`,
      );
    } else {
      log.warn('for a development ADMIN token, run `npm run rc -- token --dev` on this machine');
    }
  }
  stopOnSignals(
    async (signal) => {
      log.info({ signal }, 'shutting down');
      await system.stop().catch((err) => log.error({ err: String(err) }, 'error during shutdown'));
    },
    (signal, ms) => log.info({ signal, ms }, 'stopped'),
  );
}
