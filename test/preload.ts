import { afterAll } from 'bun:test';
import { existsSync } from 'node:fs';
import { RUN_ID, removeLeftovers } from './support/run';
import {
  answers,
  CHROMIUM,
  DEFAULT_DATABASE_URL,
  DEFAULT_NATS_URL,
  dockerAnswers,
  MISSING_CHROMIUM,
  planServices,
  type RunningContainers,
  startContainers,
} from './support/services';

// Quiet logs in tests unless asked for; every test file builds its own database and NATS prefix,
// all named with this run's id (RUN_ID, from ./support/run).
process.env.LOG_LEVEL ??= 'silent';

/**
 * Before any test: Postgres and NATS answer (or are started in containers), else one sentence
 * says what is missing instead of every test failing with a connection error. After the last
 * test: nothing of this run is left on them. RC_TEST_SERVICES=none skips both: `npm run test:unit`
 * sets it for the tests that need no servers (see package.json, README "Tests").
 */
if (process.env.RC_TEST_SERVICES === 'none') {
  // a test that needs a server fails at once (connection refused on the discard port) instead of
  // quietly using whatever Postgres or NATS runs on this machine
  process.env.DATABASE_URL = 'postgres://postgres@127.0.0.1:9/unit-tests-have-no-postgres';
  process.env.NATS_URL = 'nats://127.0.0.1:9';
} else {
  const env = process.env;
  const facts = {
    databaseUrl: env.DATABASE_URL,
    natsUrl: env.NATS_URL,
    postgresAnswers: await answers(env.DATABASE_URL ?? DEFAULT_DATABASE_URL),
    natsAnswers: await answers(env.NATS_URL ?? DEFAULT_NATS_URL),
  };
  let plan = planServices(facts);
  if (plan.kind === 'ask-docker') plan = planServices({ ...facts, dockerAnswers: await dockerAnswers() });
  if (plan.kind === 'missing') {
    console.error(plan.message);
    process.exit(1);
  }
  let containers: RunningContainers | undefined;
  if (plan.kind === 'containers') {
    console.error(
      'Neither Postgres nor NATS answers here: starting both in Docker containers (testcontainers).',
    );
    containers = await startContainers();
    env.DATABASE_URL = containers.databaseUrl;
    env.NATS_URL = containers.natsUrl;
  }
  if (!existsSync(CHROMIUM)) console.error(MISSING_CHROMIUM);

  afterAll(async () => {
    let left: string[];
    try {
      left = await removeLeftovers(
        env.NATS_URL ?? DEFAULT_NATS_URL,
        env.DATABASE_URL ?? DEFAULT_DATABASE_URL,
      );
    } finally {
      await containers?.stop();
    }
    if (left.length > 0)
      throw new Error(
        `This test run (${RUN_ID}) left ${left.length} thing(s) behind (removed now): ${left.join(', ')}. ` +
          'A test that creates a NATS prefix or a database must remove it (see test/support/system.ts, processes.ts).',
      );
  });
}
