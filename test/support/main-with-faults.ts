#!/usr/bin/env bun
import { runRoles } from '../../src/run-roles';

/**
 * `bun src/main.ts` with fault points the tests arm through the environment (never part of the
 * product's configuration):
 * - FAULT_EXIT_AFTER_COMMIT=true: the coordinator exits (137, as after kill -9) right after a
 *   commit that wrote outbox messages, before publishing them, so tests see what the outbox relay
 *   recovers after a restart.
 */
const exitAfterCommit = process.env.FAULT_EXIT_AFTER_COMMIT === 'true';

await runRoles({
  coordinatorHooks: exitAfterCommit
    ? {
        afterCommit({ published }) {
          if (published === 0) return;
          console.error('fault point FAULT_EXIT_AFTER_COMMIT: exiting after a commit, before publishing');
          process.exit(137);
        },
      }
    : undefined,
});
